import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeSet } from '../../../src/shared/protocol';
import type { RunCommandResult } from '../../../src/host/commands/runCommand';
import type { ApplyOutcome } from '../../../src/host/review/applyChanges';

const extensionId = 'agent-sandbox.agent-sandbox';

/**
 * VS Code's own apply (a WorkspaceEdit) follows symlinks when it writes, so the plan itself must never put a
 * write at or below a link out of the folder, even one the box never saw (the mirror leaves such links out).
 */
suite('Review: accepting never writes through a symlink out of the workspace (real engine)', function () {
  this.timeout(180_000);
  let folder: string;
  let outside: string;

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
    outside = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-outside-'));
    fs.writeFileSync(path.join(outside, 'keep.txt'), 'outside\n');
    fs.symlinkSync(outside, path.join(folder, 'linked'));
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    for (const rel of ['linked', 'fine.txt']) fs.rmSync(path.join(folder, rel), { force: true, recursive: rel !== 'linked' });
    fs.rmSync(outside, { recursive: true, force: true });
  });

  test('a file the box made where the workspace has a link out is a conflict; Accept All writes nothing outside and applies the rest', async () => {
    const run = (await vscode.commands.executeCommand('agentSandbox.runCommand', {
      folder,
      command: 'mkdir -p linked && echo pwned > linked/evil.txt && echo fine > fine.txt',
      decision: 'keep',
    })) as RunCommandResult;
    assert.equal(run.result.exitCode, 0, run.result.stderr);
    const pending = (await vscode.commands.executeCommand('agentSandbox.review.pending', folder)) as ChangeSet;
    assert.ok(
      pending.changes.some((c) => c.path === 'linked/evil.txt'),
      'the box proposes linked/evil.txt (it never saw the link)',
    );

    const outcome = (await vscode.commands.executeCommand('agentSandbox.review.accept', {
      folder,
      paths: pending.changes.map((c) => c.path),
    })) as ApplyOutcome;
    assert.ok(outcome.conflicts.includes('linked/evil.txt'), `linked/evil.txt is a conflict: ${JSON.stringify(outcome)}`);
    assert.ok(outcome.applied.includes('fine.txt'), `the rest is applied: ${JSON.stringify(outcome)}`);
    assert.deepEqual(fs.readdirSync(outside), ['keep.txt'], 'nothing was written outside the workspace');
    assert.equal(fs.readFileSync(path.join(outside, 'keep.txt'), 'utf8'), 'outside\n');
    assert.ok(fs.lstatSync(path.join(folder, 'linked')).isSymbolicLink(), 'the link is still a link');
    assert.equal(fs.readFileSync(path.join(folder, 'fine.txt'), 'utf8'), 'fine\n');
  });
});
