#!/usr/bin/env node
// Runs one Node-side tier (unit, engine or security) of compiled tests from out/test/<tier>/ with Mocha
// (TDD interface: suite/test), and writes {passed, failed, pending, tests} to $AGENT_SANDBOX_RESULT_FILE, where
// `tests` lists each test's suite path, title, state and duration (docs/security.md is made from it).
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const Mocha = require('mocha');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tier = process.argv[2];
const dir = path.join(root, 'out', 'test', tier);

function findTests(folder) {
  return readdirSync(folder).flatMap((name) => {
    const full = path.join(folder, name);
    return statSync(full).isDirectory() ? findTests(full) : name.endsWith('.test.js') ? [full] : [];
  });
}

const timeouts = { unit: 20_000, engine: 120_000, security: 180_000 };
const mocha = new Mocha({ ui: 'tdd', reporter: 'spec', timeout: timeouts[tier] ?? 60_000, color: true });
const grep = process.env.MOCHA_GREP;
if (grep) mocha.grep(grep);
for (const file of findTests(dir).sort()) mocha.addFile(file);
const tests = [];
const suitePath = (test) => {
  const titles = [];
  for (let s = test.parent; s && !s.root; s = s.parent) titles.unshift(s.title);
  return titles;
};
const record = (state) => (test, error) =>
  tests.push({ suite: suitePath(test), title: test.title, state, durationMs: test.duration ?? 0, ...(error ? { error: String(error.message ?? error).slice(0, 500) } : {}) });
const runner = mocha.run((failures) => {
  const { passes = 0, failures: failed = 0, pending = 0 } = runner.stats ?? {};
  if (process.env.AGENT_SANDBOX_RESULT_FILE) {
    writeFileSync(process.env.AGENT_SANDBOX_RESULT_FILE, JSON.stringify({ passed: passes, failed, pending, tests }, null, 1));
  }
  process.exitCode = failures > 0 ? 1 : 0;
});
runner.on('pass', record('passed'));
runner.on('fail', record('failed'));
runner.on('pending', record('pending'));
