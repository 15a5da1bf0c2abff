// Entry point VS Code's extension test runner loads inside the extension host (`extensionTestsPath`).
// It runs every compiled out/test/host/suite/**/*.test.js with Mocha (TDD) and reports in two ways, so the
// rig gets the numbers even if one channel fails: a stats file named by AGENT_SANDBOX_HOST_STATS_FILE (the
// extension host runs on the rig's machine and inherits its environment) and a marker line in the log.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha = require('mocha');

/** Prefix of the log line that carries the final stats as JSON; the rig parses it. */
export const statsMarker = 'AGENT_SANDBOX_HOST_STATS ';

function findTests(folder: string): string[] {
  return fs.readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) return findTests(full);
    return entry.name.endsWith('.test.js') ? [full] : [];
  });
}

export function run(): Promise<void> {
  const timeout = Number(process.env.AGENT_SANDBOX_HOST_TEST_TIMEOUT_MS ?? 120_000);
  // The extension host's console is forwarded to the workbench and on to the rig; colours would arrive as
  // escape codes mixed with the remote console's own formatting.
  const mocha = new Mocha({ ui: 'tdd', reporter: 'spec', color: false, timeout });
  if (process.env.MOCHA_GREP) mocha.grep(process.env.MOCHA_GREP);
  const files = findTests(__dirname).sort();
  for (const file of files) mocha.addFile(file);
  console.log(`[host suite] ${files.length} test file(s) in ${__dirname}; DOCKER_HOST=${process.env.DOCKER_HOST ?? '(unset)'}`);

  return new Promise<void>((resolve, reject) => {
    let runner: Mocha.Runner;
    try {
      runner = mocha.run((failures) => {
        const { passes = 0, failures: failed = 0, pending = 0 } = runner.stats ?? {};
        const stats = { passed: passes, failed, pending };
        const statsFile = process.env.AGENT_SANDBOX_HOST_STATS_FILE;
        if (statsFile) fs.writeFileSync(statsFile, JSON.stringify(stats));
        console.log(statsMarker + JSON.stringify(stats));
        if (failures > 0) reject(new Error(`${failures} host test(s) failed`));
        else resolve();
      });
    } catch (error) {
      // A test file that throws while loading never reaches the run callback.
      console.error('[host suite] could not load the tests:', error);
      reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
}
