// Runs the same host suite in desktop VS Code (Electron) through @vscode/test-electron, which downloads a
// VS Code build into .vscode-test/ on first use. For developer machines with internet access and a display
// (Linux CI: wrap in xvfb-run). The default host tier uses runInCodeServer.ts instead, which needs neither.
// `npm run test:electron`; AGENT_SANDBOX_VSCODE_VERSION picks the build ('stable' by default).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';

const root = path.resolve(__dirname, '..', '..', '..');

async function main(): Promise<number> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-electron-'));
  const workspace = path.join(tmp, 'workspace');
  fs.cpSync(path.join(root, 'test', 'fixtures', 'host-workspace'), workspace, { recursive: true });
  const statsFile = path.join(tmp, 'stats.json');
  try {
    const exitCode = await runTests({
      version: process.env.AGENT_SANDBOX_VSCODE_VERSION ?? 'stable',
      extensionDevelopmentPath: root,
      extensionTestsPath: path.join(root, 'out', 'test', 'host', 'suite', 'index'),
      launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', '--user-data-dir', path.join(tmp, 'user-data')],
      extensionTestsEnv: { AGENT_SANDBOX_HOST_STATS_FILE: statsFile },
    });
    return exitCode;
  } catch (error) {
    // runTests rejects when VS Code exits non-zero (a failing test) or cannot be downloaded or started.
    console.error(`[electron rig] ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    const resultFile = process.env.AGENT_SANDBOX_RESULT_FILE;
    if (resultFile) {
      const stats = fs.existsSync(statsFile) ? fs.readFileSync(statsFile, 'utf8') : JSON.stringify({ passed: 0, failed: 1, pending: 0 });
      fs.mkdirSync(path.dirname(resultFile), { recursive: true });
      fs.writeFileSync(resultFile, stats);
    }
    fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
  }
}

main().then((code) => process.exit(code));
