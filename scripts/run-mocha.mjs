#!/usr/bin/env node
// Runs one Node-side tier (unit, engine or security) of compiled tests from out/test/<tier>/ with Mocha
// (TDD interface: suite/test), and writes {passed, failed, pending} to $AGENT_SANDBOX_RESULT_FILE.
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
const runner = mocha.run((failures) => {
  const { passes = 0, failures: failed = 0, pending = 0 } = runner.stats ?? {};
  if (process.env.AGENT_SANDBOX_RESULT_FILE) {
    writeFileSync(process.env.AGENT_SANDBOX_RESULT_FILE, JSON.stringify({ passed: passes, failed, pending }));
  }
  process.exitCode = failures > 0 ? 1 : 0;
});
