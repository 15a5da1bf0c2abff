// A folder VS Code had never opened: the rig ran `agent-sandbox run` on the fixture workspace before starting VS
// Code (runInCodeServer.ts), so its review sits in the command line's own storage. Opening the folder brings it
// into the window's review, where it is listed and accepted like any other.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeSet } from '../../../src/shared/protocol';
import type { ApplyOutcome } from '../../../src/host/review/applyChanges';
import { ownFolderStorage } from '../../../src/cli/folderStorage';
import { COMMAND_LINE_REVIEW } from '../rigEnvironment';
import { until } from './polling';

const extensionId = 'agent-sandbox.agent-sandbox';

suite(COMMAND_LINE_REVIEW.suite, function () {
  this.timeout(120_000);
  let folder: string;

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    fs.rmSync(path.join(folder, COMMAND_LINE_REVIEW.file), { force: true });
  });

  test('the window lists the pending change the command line left, with its run in the history; accepting it writes the workspace', async () => {
    const target = path.join(folder, COMMAND_LINE_REVIEW.file);
    assert.ok(!fs.existsSync(target), 'the command line applied nothing');
    const pending = await until(
      "the command line's change in the review",
      async () => {
        const set = (await vscode.commands.executeCommand('agentSandbox.review.pending', folder)) as ChangeSet | undefined;
        return set?.changes.some((c) => c.path === COMMAND_LINE_REVIEW.file) ? set : undefined;
      },
      30_000,
    );
    assert.deepEqual(
      pending.changes.map((c) => [c.path, c.kind]),
      [[COMMAND_LINE_REVIEW.file, 'added']],
    );
    // It moved: the command line's own storage of the folder (in the rig's XDG_STATE_HOME) is gone.
    assert.ok(process.env.XDG_STATE_HOME, 'the rig gives the extension host a state directory of its own');
    assert.ok(!fs.existsSync(ownFolderStorage(folder)), `${ownFolderStorage(folder)} was left behind`);

    // The command line's run came along into the window's history.
    const exportTo = path.join(folder, '..', 'cli-history.json');
    const exported = (await vscode.commands.executeCommand('agentSandbox.history.export', { path: exportTo })) as {
      records: { source: string; command: string; files: { path: string }[] }[];
    };
    fs.rmSync(exportTo, { force: true });
    const run = exported.records.find((r) => r.command.includes(COMMAND_LINE_REVIEW.file));
    assert.ok(run, JSON.stringify(exported.records.map((r) => r.command)));
    assert.equal(run.source, 'command');
    assert.deepEqual(
      run.files.map((f) => f.path),
      [COMMAND_LINE_REVIEW.file],
    );

    const outcome = (await vscode.commands.executeCommand('agentSandbox.review.accept', {
      folder,
      paths: [COMMAND_LINE_REVIEW.file],
    })) as ApplyOutcome;
    assert.ok(outcome, 'accept returned nothing');
    assert.equal(fs.readFileSync(target, 'utf8'), COMMAND_LINE_REVIEW.content);
    const after = (await vscode.commands.executeCommand('agentSandbox.review.pending', folder)) as ChangeSet | undefined;
    assert.deepEqual(after?.changes ?? [], []);
  });
});
