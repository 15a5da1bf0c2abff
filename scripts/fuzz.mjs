#!/usr/bin/env node
// Long fuzz runs of the collect → apply properties (test/security/fuzz/fuzzProperties.ts), which the security
// tier runs on a fixed seed. Usage:
//   npm run fuzz -- [--runs=20000] [--seed=N] [--path=P] [--property=parse|accepted|changes|plan|apply]
//                   [--time=SECONDS] [--stats] [--shrink=false] [--no-build]
// Compiles the tests first (tsc -p test/tsconfig.json) unless --no-build. Prints the seed before it starts
// and, on failure, the counterexample, its path and the command that replays it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const compiled = path.join(root, 'out', 'test', 'security', 'fuzz', 'fuzzProperties.js');

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const match = /^--([^=]+)(?:=(.*))?$/.exec(arg);
    if (!match) {
      console.error(`Unknown argument ${arg}. Usage: npm run fuzz -- --runs=N --seed=N --path=P --property=ID --time=SECONDS --no-build`);
      process.exit(2);
    }
    return [match[1], match[2] ?? 'true'];
  }),
);

if (args['no-build'] !== 'true') {
  console.log('fuzz: compiling tests (tsc -p test/tsconfig.json)…');
  const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'test', 'tsconfig.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) {
    // Other files' type errors do not stop the emit; only go on if this harness was produced.
    if (!existsSync(compiled)) process.exit(tsc.status ?? 1);
    console.warn('fuzz: tsc reported errors (see above); running the emitted JavaScript anyway.');
  }
}

const fc = require('fast-check');
const { FUZZ_PROPERTIES } = require(compiled);

const seed = args.seed !== undefined ? Number(args.seed) : (Date.now() ^ (Math.random() * 0x100000000)) | 0;
const runs = Number(args.runs ?? 20000);
const timeLimitMs = args.time !== undefined ? Number(args.time) * 1000 : undefined;
const selected = args.property === undefined ? FUZZ_PROPERTIES : FUZZ_PROPERTIES.filter((p) => p.id === args.property);
if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(runs) || runs <= 0 || selected.length === 0) {
  console.error(`fuzz: bad arguments (seed ${args.seed}, runs ${args.runs}, property ${args.property}); properties: ${FUZZ_PROPERTIES.map((p) => p.id).join(', ')}`);
  process.exit(2);
}

console.log(`fuzz: seed ${seed}, ${runs} runs per property${timeLimitMs ? `, at most ${timeLimitMs / 1000} s each` : ''}`);
let failed = 0;
for (const fuzz of selected) {
  const started = Date.now();
  const plugins = [fc.timeout(10_000)];
  if (timeLimitMs) plugins.push(fc.interruptAfterTimeLimit(timeLimitMs));
  const details = await fc.check(fuzz.property(), { seed, numRuns: runs, path: args.path, plugins, endOnFailure: args.shrink === 'false' });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (!details.failed) {
    console.log(`  ok    ${fuzz.id}: ${details.numRuns} runs in ${seconds} s${details.interrupted ? ' (time limit reached)' : ''}`);
    continue;
  }
  failed += 1;
  console.log(`  FAIL  ${fuzz.id}: after ${details.numRuns} runs, ${details.numShrinks} shrinks, ${seconds} s`);
  console.log(`        ${fuzz.title}`);
  console.log(`  counterexample: ${fc.stringify(details.counterexample)}`);
  console.log(`  error: ${details.errorInstance instanceof Error ? details.errorInstance.stack : String(details.errorInstance)}`);
  console.log(`  replay: npm run fuzz -- --property=${fuzz.id} --seed=${details.seed} --path=${details.counterexamplePath} --runs=1 --no-build`);
}
if (args.stats === 'true') {
  const { fuzzStatistics } = require(compiled);
  console.log('fuzz: what the runs exercised (all properties together):');
  for (const [key, value] of [...fuzzStatistics.entries()].sort()) console.log(`  ${String(value).padStart(7)}  ${key}`);
}
console.log(`fuzz: seed ${seed}: ${selected.length - failed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
