import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeSet } from '../../../src/shared/protocol';
import type { ExportHistoryResult } from '../../../src/host/history/historyFeature';
import type { SandboxPseudoterminal } from '../../../src/host/terminal/sandboxPseudoterminal';

const extensionId = 'agent-sandbox.agent-sandbox';

/** Runs the docker CLI against the rig's engine (DOCKER_HOST is inherited by the extension host). */
function docker(...args: string[]): string {
  const result = spawnSync('docker', args, { encoding: 'utf8', timeout: 30_000 });
  assert.equal(result.status, 0, `docker ${args.join(' ')}: ${result.stderr || result.error}`);
  return result.stdout;
}

function boxContainerOf(folder: string): string {
  const ids = docker('ps', '-q', '--filter', `label=dev.agent-sandbox.folder=${folder}`).trim().split('\n').filter(Boolean);
  assert.equal(ids.length, 1, `expected one running box for ${folder}, found ${ids.length}`);
  return ids[0];
}

/** Processes in the box other than its keep-alive and the `ps` itself. */
function boxProcesses(folder: string): string[] {
  return docker('exec', boxContainerOf(folder), 'ps', '-o', 'pid,args')
    .split('\n')
    .slice(1)
    .filter((line) => line.trim() && !/docker-init|while :; do sleep 86400|sleep 86400|ps -o pid,args/.test(line));
}

async function waitUntil<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function closed(terminal: vscode.Terminal): Promise<vscode.Terminal> {
  return new Promise((resolve) => {
    const sub = vscode.window.onDidCloseTerminal((t) => {
      if (t === terminal) {
        sub.dispose();
        resolve(t);
      }
    });
  });
}

function ptyOf(terminal: vscode.Terminal): SandboxPseudoterminal {
  const pty = (terminal.creationOptions as vscode.ExtensionTerminalOptions).pty as SandboxPseudoterminal | undefined;
  assert.ok(pty && typeof pty.terminalId === 'string', 'the terminal is backed by the sandbox pseudoterminal');
  return pty;
}

async function pendingNow(folder: string): Promise<ChangeSet> {
  return (await vscode.commands.executeCommand('agentSandbox.review.pending', folder)) as ChangeSet;
}

suite('Sandboxed terminal (real engine)', function () {
  this.timeout(180_000);
  let folder: string;
  let exportDir: string;
  const made = ['term.txt', 'size.txt', 'size2.txt'];

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
    exportDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-terminal-history-'));
  });

  suiteTeardown(async () => {
    for (const terminal of vscode.window.terminals) {
      if ((terminal.creationOptions as vscode.ExtensionTerminalOptions).pty) terminal.dispose();
    }
    // With a folder argument, reset removes the box and drops its pending changes without asking.
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    for (const rel of made) fs.rmSync(path.join(folder, rel), { force: true });
    fs.rmSync(exportDir, { recursive: true, force: true });
  });

  test('the "Agent Sandbox" terminal profile opens a shell in the box; what it wrote is pending, the workspace untouched, the session a run in the history', async () => {
    const opened = new Promise<vscode.Terminal>((resolve) => {
      const sub = vscode.window.onDidOpenTerminal((t) => {
        if ((t.creationOptions as vscode.ExtensionTerminalOptions).pty) {
          sub.dispose();
          resolve(t);
        }
      });
    });
    // The same path as choosing "Agent Sandbox" in the terminal "+" menu: the workbench asks the profile provider.
    await vscode.commands.executeCommand('workbench.action.terminal.newWithProfile', {
      config: { extensionIdentifier: extensionId, id: 'agentSandbox.terminal', title: 'Agent Sandbox' },
    });
    const terminal = await opened;
    const pty = ptyOf(terminal);
    const done = closed(terminal);
    terminal.sendText('echo made-in-box > term.txt && [ "$(id -u)" = 1000 ] && [ "$PWD" = /workspace ] && exit 0 || exit 9');
    await done;
    assert.equal(terminal.exitStatus?.code, 0, 'the shell exited with 0 (ran as uid 1000 in /workspace)');
    const end = await pty.ended;
    assert.equal(end.exitCode, 0);

    const pending = await pendingNow(folder);
    const change = pending?.changes.find((c) => c.path === 'term.txt');
    assert.equal(change?.kind, 'added', `term.txt pending: ${JSON.stringify(pending?.changes.map((c) => c.path))}`);
    assert.equal(fs.existsSync(path.join(folder, 'term.txt')), false, 'nothing reached the workspace');

    const target = path.join(exportDir, 'history.json');
    const history = (await vscode.commands.executeCommand('agentSandbox.history.export', { path: target })) as ExportHistoryResult;
    const record = await waitUntil(
      'the terminal run in the history',
      async () => {
        const records = ((await vscode.commands.executeCommand('agentSandbox.history.export', { path: target })) as ExportHistoryResult).records;
        return records.find((r) => r.id === pty.terminalId && r.endedAt !== undefined);
      },
      10_000,
    );
    assert.ok(history.records.length > 0);
    assert.equal(record.source, 'terminal');
    assert.match(record.command, /(^|\/)(bash|sh)$/);
    assert.equal(record.outcome, 'exited');
    assert.equal(record.exitCode, 0);
    assert.equal(record.image?.reference, 'agent-sandbox-test/node');
    assert.equal(record.policy?.network, 'none');
    assert.ok(
      record.files.some((f) => f.path === 'term.txt' && f.kind === 'added'),
      'the run lists the file it changed',
    );
  });

  test('Open Sandboxed Terminal: its size and resizes reach the TTY, and closing it leaves no process behind in the box', async () => {
    const terminal = (await vscode.commands.executeCommand('agentSandbox.openTerminal', { folder })) as vscode.Terminal;
    assert.ok(terminal, 'agentSandbox.openTerminal returned the terminal');
    const pty = ptyOf(terminal);
    await waitUntil('the terminal to get its size', () => pty.isRunning && pty.size);
    terminal.sendText('sleep 1000 & echo started');
    await waitUntil('the sleep in the box', () => boxProcesses(folder).some((l) => /sleep 1000/.test(l)));
    const boxId = boxContainerOf(folder);
    // A resize travels apart from the typed input (an engine API call), so the shell is asked until it agrees.
    const ttySizeReaches = (file: string) =>
      waitUntil(`the TTY size in ${file} to equal the terminal's`, () => {
        const want = `${pty.size!.rows} ${pty.size!.columns}`;
        const r = spawnSync('docker', ['exec', boxId, 'cat', `/workspace/${file}`], { encoding: 'utf8' });
        if (r.status === 0 && r.stdout.trim() === want) return want;
        terminal.sendText(`stty size > ${file}`);
        return false;
      });
    const size = { ...pty.size! };
    await ttySizeReaches('size.txt');

    // VS Code calls setDimensions when the panel resizes; this is that call.
    pty.setDimensions({ columns: size.columns + 7, rows: size.rows + 3 });
    assert.equal(await ttySizeReaches('size2.txt'), `${size.rows + 3} ${size.columns + 7}`);

    // The title action brings the running terminal's changes into the review without ending it.
    const collected = (await vscode.commands.executeCommand('agentSandbox.terminal.collect', folder)) as ChangeSet | undefined;
    assert.ok(
      collected?.changes.some((c) => c.path === 'size2.txt'),
      'Collect Changes returned the change set',
    );
    assert.ok(
      (await pendingNow(folder)).changes.some((c) => c.path === 'size2.txt'),
      'and the review shows it',
    );
    assert.equal(pty.isRunning, true, 'the terminal still runs');

    const shells = boxProcesses(folder).filter((l) => /bash|sleep 1000/.test(l));
    assert.ok(shells.length >= 2, `the shell and its job run: ${shells.join(' | ')}`);
    terminal.dispose();
    const end = await pty.ended;
    assert.equal(
      end.changeSet?.changes.some((c) => c.path === 'size.txt'),
      true,
      'closing collected the changes',
    );
    assert.deepEqual(boxProcesses(folder), [], 'no process is left in the box');
  });

  test('Run Agent CLI in Sandbox… with a CLI the image lacks says so and names the image setting', async () => {
    const terminal = (await vscode.commands.executeCommand('agentSandbox.runAgentCli', { folder, name: 'Claude Code' })) as vscode.Terminal;
    assert.ok(terminal, 'agentSandbox.runAgentCli returned the terminal');
    assert.match(terminal.name, /Claude Code/);
    const end = await ptyOf(terminal).ended;
    assert.match(end.error ?? '', /agent-sandbox-test\/node has no "claude".*agentSandbox\.image/);
    terminal.dispose();
    assert.deepEqual(boxProcesses(folder), [], 'nothing was started');
    // The failed launch is in the run history with its reason.
    const target = path.join(exportDir, 'history-failed-launch.json');
    const record = await waitUntil(
      'the failed launch in the history',
      async () => {
        const records = ((await vscode.commands.executeCommand('agentSandbox.history.export', { path: target })) as ExportHistoryResult).records;
        return records.find((r) => r.id === ptyOf(terminal).terminalId && r.endedAt !== undefined);
      },
      10_000,
    );
    assert.equal(record.agent, 'Claude Code');
    assert.match(record.command, /claude/);
    assert.match(record.error?.message ?? '', /has no "claude"/);
  });
});
