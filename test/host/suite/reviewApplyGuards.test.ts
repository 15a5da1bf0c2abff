import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeSet } from '../../../src/shared/protocol';
import type { RunCommandResult } from '../../../src/host/commands/runCommand';
import type { ApplyOutcome } from '../../../src/host/review/applyChanges';

const extensionId = 'agent-sandbox.agent-sandbox';

/** What VS Code's own apply (a WorkspaceEdit after `sandbox/planApply`) must get right, against a real engine. */
suite('Review: the WorkspaceEdit path never overwrites by stat, and replaces a link by a directory (real engine)', function () {
  this.timeout(180_000);
  let folder: string;
  let scratch: string;
  const read = (rel: string) => fs.readFileSync(path.join(folder, rel), 'utf8');
  const run = async (command: string) => {
    const result = (await vscode.commands.executeCommand('agentSandbox.runCommand', { folder, command, decision: 'keep' })) as RunCommandResult;
    assert.equal(result.result.exitCode, 0, result.result.stderr);
  };

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-scratch-'));
    fs.writeFileSync(path.join(folder, 'quiet.txt'), 'base\n');
    fs.mkdirSync(path.join(folder, 'real'));
    fs.writeFileSync(path.join(folder, 'real', 'keep.txt'), 'keep\n');
    fs.symlinkSync('real', path.join(folder, 'ldir'));
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    for (const rel of ['quiet.txt', 'real', 'ldir', 'other.txt']) fs.rmSync(path.join(folder, rel), { force: true, recursive: true });
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  test('a same-size edit with its mtime put back (touch -r) after the run is a conflict, not overwritten', async () => {
    await run('echo box! > quiet.txt && echo other > other.txt');
    const file = path.join(folder, 'quiet.txt');
    execFileSync('cp', ['-p', file, path.join(scratch, 'ref')]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    fs.writeFileSync(file, 'BASE\n');
    execFileSync('touch', ['-r', path.join(scratch, 'ref'), file]);
    const outcome = (await vscode.commands.executeCommand('agentSandbox.review.accept', {
      folder,
      paths: ['quiet.txt', 'other.txt'],
    })) as ApplyOutcome;
    assert.deepEqual(outcome.conflicts, ['quiet.txt'], JSON.stringify(outcome));
    assert.deepEqual(outcome.applied, ['other.txt']);
    assert.equal(read('quiet.txt'), 'BASE\n', 'the developer edit stays');
    assert.equal(read('other.txt'), 'other\n');
  });

  test('a link to a directory that the box replaced by a directory with files is applied, nothing through the link', async () => {
    await run('rm ldir && mkdir ldir && echo f > ldir/f.txt');
    const pending = (await vscode.commands.executeCommand('agentSandbox.review.pending', folder)) as ChangeSet;
    const paths = pending.changes.map((c) => c.path).filter((p) => p === 'ldir' || p.startsWith('ldir/'));
    assert.deepEqual(paths.sort(), ['ldir', 'ldir/f.txt']);
    const outcome = (await vscode.commands.executeCommand('agentSandbox.review.accept', { folder, paths })) as ApplyOutcome;
    assert.deepEqual(outcome.applied.sort(), ['ldir', 'ldir/f.txt'], JSON.stringify(outcome));
    assert.ok(fs.lstatSync(path.join(folder, 'ldir')).isDirectory(), 'ldir is a real directory now');
    assert.equal(read('ldir/f.txt'), 'f\n');
    assert.deepEqual(fs.readdirSync(path.join(folder, 'real')), ['keep.txt'], 'nothing was written through the old link');
  });
});
