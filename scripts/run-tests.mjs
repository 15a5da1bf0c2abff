#!/usr/bin/env node
// Runs test tiers (unit, engine, host, security, ui) and prints one summary line: "N passed, N failed".
// Provisions what a tier needs on a fresh machine: a private Docker engine and the test images for engine,
// host and security; VS Code's server build and Chromium for host. A tier that cannot get what it needs
// fails; nothing is skipped silently. Each tier runs in its own process and writes test-results/<tier>.json.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tiers = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const known = ['unit', 'engine', 'host', 'security', 'ui'];
for (const tier of tiers) {
  if (!known.includes(tier)) {
    console.error(`unknown tier "${tier}"; known: ${known.join(', ')}`);
    process.exit(2);
  }
}
const resultsDir = path.join(root, 'test-results');
mkdirSync(resultsDir, { recursive: true });

function sh(script, options = {}) {
  const r = spawnSync('bash', [path.join(root, 'scripts', script)], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options });
  if (r.status !== 0) {
    throw new Error(`scripts/${script} failed with exit code ${r.status}`);
  }
  return r.stdout;
}

function engineAnswers() {
  const r = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', env: process.env });
  return r.status === 0;
}

function ensureEngine() {
  if (process.env.DOCKER_HOST && engineAnswers()) {
    return;
  }
  if (process.platform === 'linux' && process.getuid?.() === 0) {
    const out = sh('start-docker-engine.sh');
    const match = /export DOCKER_HOST=(\S+)/.exec(out);
    if (!match) throw new Error('start-docker-engine.sh printed no DOCKER_HOST');
    process.env.DOCKER_HOST = match[1];
  } else if (!engineAnswers()) {
    throw new Error('No Docker engine answers. Start Docker (or set DOCKER_HOST) and run the tests again.');
  }
  sh('build-test-images.sh');
}

/** Installs (or finds) the VS Code test host; the rig reads its folder from AGENT_SANDBOX_TEST_HOST. */
function ensureTestHost() {
  if (process.env.AGENT_SANDBOX_TEST_HOST) return;
  const match = /^AGENT_SANDBOX_TEST_HOST=(.+)$/m.exec(sh('setup-test-host.sh'));
  if (!match) throw new Error('setup-test-host.sh printed no AGENT_SANDBOX_TEST_HOST');
  process.env.AGENT_SANDBOX_TEST_HOST = match[1];
}

function runTier(tier) {
  const resultFile = path.join(resultsDir, `${tier}.json`);
  rmSync(resultFile, { force: true });
  const entry = tier === 'host' ? ['out/test/host/runInCodeServer.js'] : ['scripts/run-mocha.mjs', tier];
  console.log(`\n=== ${tier} tier ===`);
  const r = spawnSync(process.execPath, entry, { cwd: root, stdio: 'inherit', env: { ...process.env, AGENT_SANDBOX_RESULT_FILE: resultFile } });
  if (!existsSync(resultFile)) {
    return { tier, passed: 0, failed: 1, pending: 0, note: `tier crashed (exit ${r.status ?? r.signal}) before reporting results` };
  }
  const stats = JSON.parse(readFileSync(resultFile, 'utf8'));
  const result = { tier, passed: stats.passed, failed: stats.failed, pending: stats.pending ?? 0 };
  if (r.status !== 0 && result.failed === 0) {
    result.failed = 1;
    result.note = `exited with ${r.status ?? r.signal}`;
  }
  if (result.passed + result.failed === 0) {
    result.failed = 1;
    result.note = 'ran no test';
  }
  return result;
}

const results = [];
for (const tier of tiers) {
  try {
    if (tier !== 'unit') ensureEngine();
    if (tier === 'host' || tier === 'ui') ensureTestHost();
    if (tier === 'engine') sh('setup-ssh-test.sh');
    results.push(runTier(tier));
  } catch (error) {
    console.error(`[${tier}] ${error instanceof Error ? error.message : error}`);
    results.push({ tier, passed: 0, failed: 1, pending: 0, note: 'could not be provisioned' });
  }
}

console.log('\n=== summary ===');
for (const r of results) {
  console.log(`${r.tier.padEnd(9)} ${r.passed} passed, ${r.failed} failed${r.pending ? `, ${r.pending} pending` : ''}${r.note ? `  (${r.note})` : ''}`);
}
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
