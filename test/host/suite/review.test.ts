import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeSet } from '../../../src/shared/protocol';
import type { RunCommandResult } from '../../../src/host/commands/runCommand';
import type { ApplyOutcome } from '../../../src/host/review/applyChanges';

const extensionId = 'agent-sandbox.agent-sandbox';
const twoHunks = 'line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\nline 8\nline 9\n';

async function run(folder: string, command: string): Promise<RunCommandResult> {
  const result = (await vscode.commands.executeCommand('agentSandbox.runCommand', { folder, command, decision: 'keep' })) as RunCommandResult;
  assert.ok(result, 'runCommand returned nothing');
  assert.equal(result.result.exitCode, 0, result.result.stderr);
  return result;
}

async function boxFile(folder: string, relPath: string): Promise<string> {
  const r = await run(folder, `cat "${relPath}" 2>/dev/null || echo '<absent>'`);
  return r.result.stdout;
}

async function pendingNow(folder: string): Promise<ChangeSet> {
  return (await vscode.commands.executeCommand('agentSandbox.review.pending', folder)) as ChangeSet;
}

function proposalUriOf(folder: string, relPath: string): vscode.Uri {
  // The proposal's path is the workspace file's: both sides of a diff are one file to VS Code.
  return vscode.Uri.from({
    scheme: 'agent-sandbox-proposal',
    path: vscode.Uri.file(path.join(folder, relPath)).path,
    query: new URLSearchParams({ folder, v: '0' }).toString(),
  });
}

suite('Review: accept and reject per file and per hunk (real engine)', function () {
  this.timeout(180_000);
  let folder: string;
  const read = (rel: string) => fs.readFileSync(path.join(folder, rel), 'utf8');
  const exists = (rel: string) => fs.existsSync(path.join(folder, rel));

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
    fs.writeFileSync(path.join(folder, 'hunks.txt'), twoHunks);
    fs.writeFileSync(path.join(folder, 'old-name.txt'), 'moving\n');
    fs.writeFileSync(path.join(folder, 'doomed.txt'), 'keep me\n');
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    for (const rel of ['hunks.txt', 'old-name.txt', 'new-name.txt', 'doomed.txt', 'added.txt', 'bin.dat', 'conflict.txt']) {
      fs.rmSync(path.join(folder, rel), { force: true });
    }
  });

  test('an agent tool run lists every kind of change as pending and touches nothing', async () => {
    // Produced the way an agent would: through the language model tool, not a command.
    const toolResult = await vscode.lm.invokeTool('agentSandbox_runCommand', {
      toolInvocationToken: undefined,
      input: {
        command: [
          'echo added > added.txt',
          "sed -i 's/line 2/LINE 2/; s/line 8/LINE 8/' hunks.txt",
          'mv old-name.txt new-name.txt',
          'rm doomed.txt',
          "printf '\\000\\001\\377' > bin.dat",
        ].join(' && '),
      },
    });
    const text = toolResult.content.map((part) => (part instanceof vscode.LanguageModelTextPart ? part.value : '')).join('');
    assert.match(text, /added\.txt/);
    const changes = Object.fromEntries((await pendingNow(folder)).changes.map((c) => [c.path, c]));
    assert.equal(changes['added.txt']?.kind, 'added');
    assert.equal(changes['hunks.txt']?.kind, 'modified');
    assert.equal(changes['new-name.txt']?.kind, 'renamed');
    assert.equal(changes['doomed.txt']?.kind, 'deleted');
    assert.equal(changes['bin.dat']?.binary, true);
    assert.equal(read('hunks.txt'), twoHunks);
    assert.ok(exists('doomed.txt') && !exists('added.txt') && !exists('bin.dat'));
  });

  test('accept one file, reject another: the workspace takes one, the box gives the other back', async () => {
    const accepted = (await vscode.commands.executeCommand('agentSandbox.review.accept', {
      folder,
      paths: ['added.txt', 'bin.dat', 'new-name.txt'],
    })) as ApplyOutcome;
    assert.deepEqual(accepted.applied, ['added.txt', 'bin.dat', 'new-name.txt']);
    assert.equal(read('added.txt'), 'added\n');
    assert.deepEqual([...fs.readFileSync(path.join(folder, 'bin.dat'))], [0, 1, 255]);
    assert.ok(exists('new-name.txt') && !exists('old-name.txt'));

    // One Undo takes the accepted changes back out of the workspace (the next run sends that to the box).
    await vscode.window.showTextDocument(vscode.Uri.file(path.join(folder, 'added.txt')));
    await vscode.commands.executeCommand('undo');
    await waitUntil(
      () => !exists('added.txt') && !exists('bin.dat') && exists('old-name.txt') && !exists('new-name.txt'),
      'undo reverts the accepted files',
    );
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');

    await vscode.commands.executeCommand('agentSandbox.review.reject', { folder, paths: ['doomed.txt'] });
    assert.equal(read('doomed.txt'), 'keep me\n');
    assert.equal(await boxFile(folder, 'doomed.txt'), 'keep me\n', 'the box has the rejected file back');
    const left = (await pendingNow(folder)).changes.map((c) => c.path);
    assert.deepEqual(left, ['hunks.txt']);
  });

  test('accept one hunk of a two-hunk file and reject the other', async () => {
    const uri = proposalUriOf(folder, 'hunks.txt');
    const doc = await vscode.workspace.openTextDocument(uri);
    // What a person sees drawn (the hint and title actions with default settings) is proven by the UI tier;
    // here: hovering a hunk's line offers both decisions, with links to the commands the hint names.
    const hovers = (await vscode.commands.executeCommand('vscode.executeHoverProvider', uri, new vscode.Position(1, 0))) as vscode.Hover[];
    const hoverText = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
    assert.match(hoverText, /hunk 1 of 2/, `hover on ${doc.uri}`);
    assert.match(hoverText, /command:agentSandbox\.review\.acceptHunk/);
    assert.match(hoverText, /command:agentSandbox\.review\.rejectHunk/);

    await vscode.commands.executeCommand('agentSandbox.review.acceptHunk', uri, 0);
    assert.equal(read('hunks.txt'), twoHunks.replace('line 2', 'LINE 2'));
    const stillPending = (await pendingNow(folder)).changes.find((c) => c.path === 'hunks.txt');
    assert.equal(stillPending?.kind, 'modified', 'the second hunk is still pending');

    await vscode.commands.executeCommand('agentSandbox.review.rejectHunk', uri, 0);
    assert.equal(read('hunks.txt'), twoHunks.replace('line 2', 'LINE 2'));
    assert.equal(await boxFile(folder, 'hunks.txt'), twoHunks.replace('line 2', 'LINE 2'), 'the box lost the rejected hunk');
    assert.deepEqual((await pendingNow(folder)).changes, [], 'nothing is left pending');
  });

  test('a file the developer changed after the run is a conflict and is never overwritten', async () => {
    fs.writeFileSync(path.join(folder, 'conflict.txt'), 'base\n');
    await run(folder, 'true'); // the box gets conflict.txt
    await run(folder, 'echo box > conflict.txt');
    fs.writeFileSync(path.join(folder, 'conflict.txt'), 'mine\n');
    const refreshed = (await vscode.commands.executeCommand('agentSandbox.review.refresh', folder)) as ChangeSet;
    assert.ok(refreshed.changes.some((c) => c.path === 'conflict.txt'));
    const outcome = (await vscode.commands.executeCommand('agentSandbox.review.accept', { folder, paths: ['conflict.txt'] })) as ApplyOutcome;
    assert.deepEqual(outcome.applied, []);
    assert.deepEqual(outcome.conflicts, ['conflict.txt']);
    assert.equal(read('conflict.txt'), 'mine\n');

    // The conflict opens base ↔ yours and base ↔ box; the base is what both started from.
    await vscode.commands.executeCommand('agentSandbox.review.openDiff', folder, 'conflict.txt');
    const baseUri = vscode.Uri.from({
      scheme: 'agent-sandbox-proposal',
      path: vscode.Uri.file(path.join(folder, 'conflict.txt')).path,
      query: new URLSearchParams({ folder, base: '1', v: '0' }).toString(),
    });
    assert.equal((await vscode.workspace.openTextDocument(baseUri)).getText(), 'base\n');
    const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs.map((t) => t.label));
    assert.ok(tabs.includes('conflict.txt (base ↔ yours)') && tabs.includes('conflict.txt (base ↔ box)'), `tabs: ${tabs.join(' | ')}`);

    // Once decided, no tab is left that shows the old base next to the (editable) workspace file: in such a
    // stale tab VS Code's own "revert block" wrote the placeholder text into the real file.
    const taken = (await vscode.commands.executeCommand('agentSandbox.review.takeBoxVersion', {
      folder,
      paths: ['conflict.txt'],
      approveFlagged: true,
    })) as ApplyOutcome;
    assert.deepEqual(taken.applied, ['conflict.txt']);
    assert.equal(read('conflict.txt'), 'box\n');
    const left = vscode.window.tabGroups.all.flatMap((g) => g.tabs.map((t) => t.label)).filter((label) => label.startsWith('conflict.txt'));
    assert.deepEqual(left, [], "the decided conflict's tabs are closed");
  });

  test('Merge by Hand, then Keep Mine: the merge goes into the box and the history says "merged"', async () => {
    fs.writeFileSync(path.join(folder, 'merge.txt'), 'a\nb\n');
    await run(folder, 'true');
    const boxRun = await run(folder, 'printf "a from the box\\nb\\n" > merge.txt');
    fs.writeFileSync(path.join(folder, 'merge.txt'), 'a\nb mine\n');
    await vscode.commands.executeCommand('agentSandbox.review.refresh', folder);
    await vscode.commands.executeCommand('agentSandbox.review.mergeByHand', {
      folder,
      path: 'merge.txt',
      change: { path: 'merge.txt' },
      group: 'conflicts',
    });
    fs.writeFileSync(path.join(folder, 'merge.txt'), 'a from the box\nb mine\n');
    await vscode.commands.executeCommand('agentSandbox.review.keepMine', { folder, paths: ['merge.txt'] });
    assert.equal(await boxFile(folder, 'merge.txt'), 'a from the box\nb mine\n', 'the box has the merged file');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    const target = path.join(folder, '..', 'merge-history.json');
    for (const deadline = Date.now() + 10_000; ;) {
      const records = (
        (await vscode.commands.executeCommand('agentSandbox.history.export', { path: target })) as {
          records: { id: string; files: { path: string; decisions: { decision: string }[] }[] }[];
        }
      ).records;
      const decisions = records
        .find((r) => r.id === boxRun.result.runId)
        ?.files.find((f) => f.path === 'merge.txt')
        ?.decisions.map((d) => d.decision);
      if (decisions?.at(-1) === 'merged') break;
      if (Date.now() > deadline) assert.fail(`the history did not record the merge: ${JSON.stringify(decisions)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });

  test('a .vscode/tasks.json change needs a deliberate approval; a git hook is never applied', async () => {
    await run(folder, 'mkdir -p .git/hooks && echo "echo pwned" > .git/hooks/pre-commit && echo "{}" > .vscode/tasks.json && echo fine > plain.txt');
    const pending = await pendingNow(folder);
    const flaggedChange = pending.changes.find((c) => c.path === '.vscode/tasks.json');
    assert.ok(flaggedChange?.flags.includes('host-executed'), JSON.stringify(flaggedChange));
    // agentSandbox.gitHistory "fresh" (default): the box's .git is its own, never a pending change.
    assert.ok(!pending.changes.some((c) => c.path.startsWith('.git/')), JSON.stringify(pending.changes.map((c) => c.path)));

    const withoutApproval = (await vscode.commands.executeCommand('agentSandbox.review.accept', {
      folder,
      paths: ['.vscode/tasks.json', 'plain.txt'],
      approveFlagged: false,
    })) as ApplyOutcome;
    assert.deepEqual(withoutApproval.applied, ['plain.txt']);
    assert.equal(exists('.vscode/tasks.json'), false);

    const approved = (await vscode.commands.executeCommand('agentSandbox.review.accept', {
      folder,
      paths: ['.vscode/tasks.json', '.git/hooks/pre-commit'],
      approveFlagged: true,
    })) as ApplyOutcome;
    assert.deepEqual(approved.applied, ['.vscode/tasks.json']);
    assert.equal(exists('.git/hooks/pre-commit'), false, 'git internals are never written');
    fs.rmSync(path.join(folder, '.vscode', 'tasks.json'), { force: true });
    fs.rmSync(path.join(folder, 'plain.txt'), { force: true });
  });

  test('after the engine server restarts, the pending changes are listed again and can be accepted', async () => {
    await run(folder, 'echo survivor > survivor.txt');
    const owner = spawnSync(
      'docker',
      ['ps', '--filter', `label=dev.agent-sandbox.folder=${folder}`, '--format', '{{.Label "dev.agent-sandbox.owner-pid"}}'],
      { encoding: 'utf8' },
    );
    const pid = Number(owner.stdout.trim().split('\n')[0]);
    assert.ok(pid > 0, `owner pid of the box: ${owner.stdout} ${owner.stderr}`);
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 60_000;
    let listed: ChangeSet | undefined;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      listed = (await vscode.commands.executeCommand('agentSandbox.review.refresh', folder)) as ChangeSet | undefined;
      if (listed?.changes.some((c) => c.path === 'survivor.txt')) break;
    }
    assert.ok(
      listed?.changes.some((c) => c.path === 'survivor.txt'),
      'the pending change is listed after the restart',
    );
    const outcome = (await vscode.commands.executeCommand('agentSandbox.review.accept', { folder, paths: ['survivor.txt'] })) as ApplyOutcome;
    assert.deepEqual(outcome.applied, ['survivor.txt']);
    assert.equal(read('survivor.txt'), 'survivor\n');
    fs.rmSync(path.join(folder, 'survivor.txt'));
  });
});

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
