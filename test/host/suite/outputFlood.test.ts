import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { invokeToolText as invoke } from './invokeTool';

const extensionId = 'agent-sandbox.agent-sandbox';

suite('Output flood: VS Code stays responsive while a run floods its output (real engine)', function () {
  this.timeout(180_000);
  let folder: vscode.Uri;

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    const first = vscode.workspace.workspaceFolders?.[0];
    assert.ok(first, 'the rig opens a workspace folder');
    folder = first.uri;
    // A ready box, so the flood starts as soon as the tool is called.
    assert.match(await invoke('agentSandbox_runCommand', { command: 'true' }), /Exited with code 0/);
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('setContext', 'agentSandbox.test.flood', undefined);
    await vscode.commands.executeCommand('agentSandbox.reset', folder.fsPath);
  });

  test('a command flooding stdout and stderr (yes until the timeout) is capped with the marker while commands and file system calls keep answering', async () => {
    const startedAt = Date.now();
    let settledAt: number | undefined;
    const run = invoke('agentSandbox_runCommand', { command: 'yes >&2 & yes', timeoutSeconds: 15 }).finally(() => (settledAt = Date.now()));
    // Round trips through the extension host and the workbench, one after another, for as long as the run floods.
    const completedAt: number[] = [];
    while (settledAt === undefined) {
      await vscode.commands.executeCommand('setContext', 'agentSandbox.test.flood', completedAt.length);
      const stat = await vscode.workspace.fs.stat(folder);
      assert.equal(stat.type & vscode.FileType.Directory, vscode.FileType.Directory);
      if (settledAt === undefined) completedAt.push(Date.now());
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const text = await run;
    assert.match(text, /^Timed out; its whole process tree was killed/m);
    assert.match(text, /Output beyond the box's limit \(agentSandbox\.outputLimitKiB\) was dropped\./);
    assert.match(text, /stdout \(last \d+ characters\):[\s\S]*\[agent-sandbox: output truncated after \d+ KiB\]/);
    assert.match(text, /stderr \(last \d+ characters\):[\s\S]*\[agent-sandbox: output truncated after \d+ KiB\]/);
    assert.match(text, /This run changed no files\./);
    // The flood ran for the whole timeout (the box was ready, so it started at once): a round that completed in
    // the second half of the tool call completed while output was flooding in, not before it began.
    const midpoint = (startedAt + settledAt!) / 2;
    assert.ok(
      completedAt.some((t) => t >= midpoint),
      `no command + stat round completed during the second half of the flood (${completedAt.length} round(s) in all)`,
    );
  });
});
