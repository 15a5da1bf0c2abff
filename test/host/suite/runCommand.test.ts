import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RunCommandResult } from '../../../src/host/commands/runCommand';
import { snapshotFiles } from './workspaceSnapshot';

const extensionId = 'agent-sandbox.agent-sandbox';

/** The box's files in the same shape as `snapshotFiles`, read by a command in the box. */
async function boxSnapshot(folder: string): Promise<Record<string, string>> {
  const run = (await vscode.commands.executeCommand('agentSandbox.runCommand', {
    folder,
    command: `find . -path ./.git -prune -o -type f -print | sort | while IFS= read -r f; do printf '\\0%s\\0' "\${f#./}"; cat "$f"; done`,
    decision: 'keep',
  })) as RunCommandResult;
  assert.equal(run.result.exitCode, 0, run.result.stderr);
  const parts = run.result.stdout.split('\0').slice(1);
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) out[parts[i]] = parts[i + 1];
  return out;
}

async function runInSandbox(args: { folder: string; command: string; decision: 'keep' | 'apply' | 'discard' }): Promise<RunCommandResult> {
  const result = (await vscode.commands.executeCommand('agentSandbox.runCommand', args)) as RunCommandResult | undefined;
  assert.ok(result, 'agentSandbox.runCommand returned nothing (see the Agent Sandbox log)');
  return result;
}

suite('Run Command in Sandbox: the first loop (real engine)', function () {
  this.timeout(180_000);
  let folder: string;
  let original: Record<string, string>;

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    const first = vscode.workspace.workspaceFolders?.[0];
    assert.ok(first, 'the rig opens a workspace folder');
    folder = first.uri.fsPath;
    original = snapshotFiles(folder);
    assert.ok(original['src/app.js'] !== undefined, 'fixture has src/app.js');
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
  });

  const mutate = ['echo "created in the box" > created.txt', 'echo "// changed in the box" >> src/app.js', 'rm README.md'].join(' && ');

  test('the workspace is untouched until the developer decides', async () => {
    const run = await runInSandbox({ folder, command: mutate, decision: 'keep' });
    assert.equal(run.result.exitCode, 0, run.result.stderr);
    const kinds = Object.fromEntries(run.changeSet.changes.map((c) => [c.path, c.kind]));
    assert.deepEqual(kinds, { 'created.txt': 'added', 'src/app.js': 'modified', 'README.md': 'deleted' });
    assert.deepEqual(snapshotFiles(folder), original);
  });

  test('Apply All makes the workspace equal the box; undo restores it', async () => {
    const run = await runInSandbox({ folder, command: 'true', decision: 'apply' });
    assert.equal(run.decision, 'applied');
    assert.deepEqual(run.applied?.applied, ['README.md', 'created.txt', 'src/app.js']);
    const workspace = snapshotFiles(folder);
    assert.equal(workspace['created.txt'], 'created in the box\n');
    assert.equal(workspace['README.md'], undefined);
    assert.equal(workspace['src/app.js'], `${original['src/app.js']}// changed in the box\n`);
    assert.deepEqual(await boxSnapshot(folder), workspace);

    // The apply is one workspace edit: one Undo reverts all three files (the edited text comes back in its
    // editor, to be saved as after any undo).
    await vscode.window.showTextDocument(vscode.Uri.file(path.join(folder, 'src', 'app.js')));
    await vscode.commands.executeCommand('undo');
    await vscode.workspace.saveAll(false);
    await waitFor(
      () => JSON.stringify(snapshotFiles(folder)) === JSON.stringify(original),
      () => `undo restores the workspace; it is ${JSON.stringify(snapshotFiles(folder))}`,
    );
  });

  test('Discard leaves the workspace untouched and reverts the box', async () => {
    const before = snapshotFiles(folder);
    const run = await runInSandbox({ folder, command: 'echo discarded > src/app.js && echo x > scratch.txt', decision: 'discard' });
    assert.equal(run.decision, 'discarded');
    assert.ok(run.changeSet.changes.some((c) => c.path === 'scratch.txt'));
    assert.deepEqual(snapshotFiles(folder), before);
    assert.deepEqual(await boxSnapshot(folder), before, 'the box equals the workspace again');
  });
});

async function waitFor(condition: () => boolean, what: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
