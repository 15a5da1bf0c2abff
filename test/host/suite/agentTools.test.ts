import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { HistoryRecord } from '../../../src/core/history/historyRecord';
import type { CreateAgentModeResult } from '../../../src/host/tools/createAgentMode';
import { sandboxTools, sandboxToolTag } from '../../../src/host/tools/toolNames';
import { snapshotFiles } from './workspaceSnapshot';
import { invokeToolText as invoke } from './invokeTool';

const extensionId = 'agent-sandbox.agent-sandbox';

/** Asserts the tool fails with an error whose message matches (VS Code hands that message to the model). */
async function invokeFails(name: string, input: object, pattern: RegExp): Promise<void> {
  await assert.rejects(invoke(name, input), (error: unknown) => {
    assert.match(error instanceof Error ? error.message : String(error), pattern);
    return true;
  });
}

/** The content of a box file as readFile returns it, without its header line. */
async function boxFile(filePath: string): Promise<string> {
  const text = await invoke('agentSandbox_readFile', { path: filePath });
  return text.slice(text.indexOf('\n') + 1);
}

suite('Agent tools: language model tools act in the box (real engine)', function () {
  this.timeout(180_000);
  let folder: string;
  let original: Record<string, string>;

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    const first = vscode.workspace.workspaceFolders?.[0];
    assert.ok(first, 'the rig opens a workspace folder');
    folder = first.uri.fsPath;
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    original = snapshotFiles(folder, 'base64');
    assert.ok(original['src/app.js'] && original['README.md'] && original['package.json'], 'fixture files present');
  });

  suiteTeardown(async () => {
    // Pending changes outlive a reset (the review persists), so they are discarded first: later suites get a
    // box that equals the workspace. Discarding files in new directories leaves the emptied directories
    // pending, hence a second round.
    let pending = '';
    for (let round = 0; round < 3 && !/: no changes\.$/m.test(pending); round++) {
      await vscode.commands.executeCommand('agentSandbox.runCommand', { folder, command: 'true', decision: 'discard' });
      pending = await invoke('agentSandbox_pendingChanges', {});
    }
    assert.match(pending, /: no changes\.$/m, 'nothing is left pending');
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(path.join(folder, '.github'), { recursive: true, force: true });
  });

  test('vscode.lm.tools lists every sandbox tool with its tag, description and schema', () => {
    for (const { name } of sandboxTools) {
      const tool = vscode.lm.tools.find((t) => t.name === name);
      assert.ok(tool, `${name} is registered`);
      assert.ok(tool.tags.includes(sandboxToolTag), `${name} tags: ${tool.tags.join(', ')}`);
      assert.match(tool.description, /no network/, `${name} says the box has no network`);
      assert.match(tool.description, /review/, `${name} says changes await review`);
      assert.equal((tool.inputSchema as { type?: string } | undefined)?.type, 'object', `${name} has an object input schema`);
    }
    assert.deepEqual(
      vscode.lm.tools
        .filter((t) => t.tags.includes(sandboxToolTag))
        .map((t) => t.name)
        .sort(),
      sandboxTools.map((t) => t.name).sort(),
    );
  });

  test('runCommand: creates, modifies, renames, deletes and writes a binary file; the result names them; the workspace is untouched', async () => {
    const command = [
      'echo created > created.txt',
      'echo "// changed in the box" >> src/app.js',
      'mv README.md README.txt',
      'rm package.json',
      "printf '\\000\\001\\377' > bin.dat",
      'echo done',
    ].join(' && ');
    const text = await invoke('agentSandbox_runCommand', { command });
    assert.match(text, /Exited with code 0/);
    assert.match(text, /stdout:\ndone/);
    assert.match(text, /^- added created\.txt$/m);
    assert.match(text, /^- modified src\/app\.js$/m);
    assert.match(text, /^- renamed README\.md → README\.txt$/m);
    assert.match(text, /^- deleted package\.json$/m);
    assert.match(text, /^- added bin\.dat \(binary, 3 bytes\)$/m);
    assert.match(text, /developer reviews them/);
    assert.deepEqual(snapshotFiles(folder, 'base64'), original, 'the real workspace is untouched');

    // The next run reports only what it changed itself, not everything pending.
    const again = await invoke('agentSandbox_runCommand', { command: 'echo second >> created.txt; exit 3', timeoutSeconds: 60 });
    assert.match(again, /Exited with code 3/);
    assert.match(again, /Files this run changed \(1 modified\):\n- modified created\.txt$/m);
    assert.doesNotMatch(again, /bin\.dat|README|package\.json/);
    const quiet = await invoke('agentSandbox_runCommand', { command: 'pwd', cwd: 'src' });
    assert.match(quiet, /stdout:\n\/workspace\/src/);
    assert.match(quiet, /This run changed no files\./);
    const slow = await invoke('agentSandbox_runCommand', { command: 'sleep 30', timeoutSeconds: 1 });
    assert.match(slow, /^Timed out; its whole process tree was killed after \d/m);
  });

  test('readFile: whole file, a line range, a binary file', async () => {
    const boxApp = `${Buffer.from(original['src/app.js'], 'base64').toString('utf8')}// changed in the box\n`;
    assert.equal(await boxFile('src/app.js'), boxApp.replace(/\n$/, ''));
    const range = await invoke('agentSandbox_readFile', { path: 'src/app.js', startLine: 3, endLine: 4 });
    const lines = boxApp.split('\n');
    assert.equal(range, `src/app.js, lines 3-4 of ${lines.length - 1}:\n${lines[2]}\n${lines[3]}`);
    assert.match(await invoke('agentSandbox_readFile', { path: 'bin.dat' }), /bin\.dat is a binary file/);
    await invokeFails('agentSandbox_readFile', { path: 'README.md' }, /README\.md does not exist in the box/);
    await invokeFails('agentSandbox_readFile', { path: '../outside.txt' }, /outside the workspace/);
  });

  test('listDirectory: the box root after the run', async () => {
    const text = await invoke('agentSandbox_listDirectory', { path: '.' });
    const entries = text.split('\n').slice(1);
    for (const expected of ['created.txt', 'README.txt', 'bin.dat', 'src/', '.vscode/'])
      assert.ok(entries.includes(expected), `${expected} in ${entries}`);
    assert.ok(!entries.includes('README.md') && !entries.includes('package.json'), entries.join(', '));
    assert.match(await invoke('agentSandbox_listDirectory', { path: 'src' }), /\napp\.js$/);
  });

  test('writeFile and editFile: one match edits; zero or two matches fail clearly and change nothing', async () => {
    assert.match(await invoke('agentSandbox_writeFile', { path: 'notes/todo.txt', content: 'alpha\nbeta\nalpha\n' }), /Wrote notes\/todo\.txt/);
    assert.equal(await boxFile('notes/todo.txt'), 'alpha\nbeta\nalpha');

    assert.match(await invoke('agentSandbox_editFile', { path: 'notes/todo.txt', oldString: 'beta', newString: 'BETA' }), /1 replacement/);
    await invokeFails('agentSandbox_editFile', { path: 'notes/todo.txt', oldString: 'gamma', newString: 'x' }, /not found in notes\/todo\.txt/);
    await invokeFails('agentSandbox_editFile', { path: 'notes/todo.txt', oldString: 'alpha', newString: 'x' }, /occurs 2 times/);
    assert.equal(await boxFile('notes/todo.txt'), 'alpha\nBETA\nalpha', 'the failed edits changed nothing');
    assert.match(
      await invoke('agentSandbox_editFile', { path: 'notes/todo.txt', oldString: 'alpha', newString: 'ALPHA', replaceAll: true }),
      /2 replacement/,
    );
    assert.equal(await boxFile('notes/todo.txt'), 'ALPHA\nBETA\nALPHA');
    assert.deepEqual(snapshotFiles(folder, 'base64'), original, 'the real workspace is untouched');
  });

  test('applyPatch: a two-file patch applies; malformed and non-applying patches fail and change nothing', async () => {
    const twoFiles = [
      'diff --git a/notes/todo.txt b/notes/todo.txt',
      '--- a/notes/todo.txt',
      '+++ b/notes/todo.txt',
      '@@ -1,3 +1,3 @@',
      ' ALPHA',
      '-BETA',
      '+beta, patched',
      ' ALPHA',
      'diff --git a/docs/guide.md b/docs/guide.md',
      'new file mode 100644',
      '--- /dev/null',
      '+++ b/docs/guide.md',
      '@@ -0,0 +1,2 @@',
      '+# Guide',
      '+written by a patch',
      '',
    ].join('\n');
    const applied = await invoke('agentSandbox_applyPatch', { patch: twoFiles });
    assert.match(applied, /Applied the patch to 2 file\(s\)/);
    assert.match(applied, /- modified notes\/todo\.txt\n- added docs\/guide\.md/);
    assert.equal(await boxFile('notes/todo.txt'), 'ALPHA\nbeta, patched\nALPHA');
    assert.equal(await boxFile('docs/guide.md'), '# Guide\nwritten by a patch');

    await invokeFails('agentSandbox_applyPatch', { patch: 'Please change BETA to beta.\n' }, /No file sections.*Nothing was changed/s);
    await invokeFails(
      'agentSandbox_applyPatch',
      { patch: '--- a/notes/todo.txt\n+++ b/notes/todo.txt\n@@ -1,3 +1,3 @@\n-ALPHA\n' },
      /could not be parsed/,
    );
    // The first file would apply; the second does not, so neither changes.
    const halfStale = [
      '--- a/docs/guide.md',
      '+++ b/docs/guide.md',
      '@@ -1,2 +1,2 @@',
      '-# Guide',
      '+# Handbook',
      ' written by a patch',
      '--- a/notes/todo.txt',
      '+++ b/notes/todo.txt',
      '@@ -1,2 +1,2 @@',
      ' ALPHA',
      '-text that is not there',
      '+x',
      '',
    ].join('\n');
    await invokeFails('agentSandbox_applyPatch', { patch: halfStale }, /does not apply to notes\/todo\.txt: hunk 1 of 1/);
    assert.equal(await boxFile('docs/guide.md'), '# Guide\nwritten by a patch', 'the applicable file of the failed patch is unchanged');
    assert.equal(await boxFile('notes/todo.txt'), 'ALPHA\nbeta, patched\nALPHA');
    await invokeFails(
      'agentSandbox_applyPatch',
      { patch: '--- a/../escape.txt\n+++ b/../escape.txt\n@@ -1 +1 @@\n-a\n+b\n' },
      /outside the workspace/,
    );
    assert.deepEqual(snapshotFiles(folder, 'base64'), original, 'the real workspace is untouched');
  });

  test('deleteFile: removes a box file; a missing one is a clear error', async () => {
    assert.match(await invoke('agentSandbox_deleteFile', { path: 'created.txt' }), /Deleted created\.txt/);
    assert.ok(!(await invoke('agentSandbox_listDirectory', { path: '.' })).split('\n').includes('created.txt'));
    await invokeFails('agentSandbox_deleteFile', { path: 'created.txt' }, /created\.txt does not exist in the box/);
    assert.deepEqual(snapshotFiles(folder, 'base64'), original);
  });

  test('pendingChanges: counts by kind, paths, binary and flagged entries', async () => {
    await invoke('agentSandbox_writeFile', { path: '.vscode/tasks.json', content: '{ "version": "2.0.0", "tasks": [] }\n' });
    const text = await invoke('agentSandbox_pendingChanges', {});
    assert.match(text, /awaiting the developer's review\): 4 added, 1 modified, 1 deleted, 1 renamed\./);
    for (const line of [
      '- added .vscode/tasks.json (needs a deliberate approval: host-executed)',
      '- added bin.dat (binary, 3 bytes)',
      '- added docs/guide.md',
      '- added notes/todo.txt',
      '- modified src/app.js',
      '- deleted package.json',
      '- renamed README.md → README.txt',
    ]) {
      assert.ok(text.split('\n').includes(line), `"${line}" in:\n${text}`);
    }
    assert.match(text, /1 of them can run code on the developer's machine/);
    assert.doesNotMatch(text, /created\.txt/, 'a file created and deleted in the box is not pending');
    assert.deepEqual(snapshotFiles(folder, 'base64'), original);
  });

  test('every tool call is a run in the history: source tool, agent = tool name, errors kept', async () => {
    const exportPath = path.join(os.tmpdir(), `agent-sandbox-tools-history-${process.pid}.json`);
    let records: HistoryRecord[] = [];
    const deadline = Date.now() + 15_000;
    const wanted = ['agentSandbox_runCommand', 'agentSandbox_editFile', 'agentSandbox_applyPatch', 'agentSandbox_pendingChanges'];
    while (Date.now() < deadline) {
      const result = (await vscode.commands.executeCommand('agentSandbox.history.export', { path: exportPath })) as { records: HistoryRecord[] };
      records = result.records.filter((r) => r.folder === folder && r.source === 'tool');
      if (wanted.every((agent) => records.some((r) => r.agent === agent && r.endedAt !== undefined))) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    fs.rmSync(exportPath, { force: true });
    const run = records.find((r) => r.agent === 'agentSandbox_runCommand' && r.command.startsWith('echo created > created.txt'));
    assert.ok(run, `the first runCommand is recorded; tool records: ${JSON.stringify(records.map((r) => [r.agent, r.command]))}`);
    assert.equal(run.exitCode, 0);
    assert.deepEqual(run.files.map((f) => f.path).sort(), ['README.txt', 'bin.dat', 'created.txt', 'package.json', 'src/app.js']);
    const ambiguous = records.find((r) => r.agent === 'agentSandbox_editFile' && r.error?.reason === 'edit-ambiguous');
    assert.ok(ambiguous, 'the failed edit is recorded with its reason');
    assert.equal(ambiguous.command, 'edit notes/todo.txt');
    assert.ok(records.some((r) => r.agent === 'agentSandbox_applyPatch' && r.error?.reason === 'patch-malformed'));
  });

  test('Create Sandboxed Agent Mode writes an agent file whose tools are only the sandbox tools; an existing file is kept unless replaced', async () => {
    const created = (await vscode.commands.executeCommand('agentSandbox.createAgentMode', { folder })) as CreateAgentModeResult;
    // VS Code 1.139 (the rig) reads custom agents from .github/agents/*.agent.md.
    assert.equal(path.relative(folder, created.uri.fsPath).split(path.sep).join('/'), '.github/agents/Agent Sandbox.agent.md');
    assert.equal(created.written, true);
    const content = fs.readFileSync(created.uri.fsPath, 'utf8');
    const tools = /^tools: \[(.*)\]$/m
      .exec(content)?.[1]
      .split(', ')
      .map((t) => t.replace(/'/g, ''));
    assert.deepEqual(
      tools,
      sandboxTools.map((t) => `${extensionId}/${t.referenceName}`),
    );
    assert.match(content, /^name: Agent Sandbox$/m);
    assert.equal(vscode.window.activeTextEditor?.document.uri.fsPath, created.uri.fsPath, 'the file is opened');
    // VS Code's own prompt-file validator knows every tool name in the file: a probe naming an unknown tool gets
    // its diagnostic (so the validator runs), the generated file gets none.
    const probe = vscode.Uri.joinPath(created.uri, '..', 'probe.agent.md');
    fs.writeFileSync(probe.fsPath, content.replace('tools: [', "tools: ['no.such-ext/nothing', "));
    try {
      await vscode.window.showTextDocument(probe);
      const probeDiagnostics = await waitForDiagnostics(probe);
      assert.ok(
        probeDiagnostics.some((d) => /no\.such-ext\/nothing/.test(d.message)),
        JSON.stringify(probeDiagnostics.map((d) => d.message)),
      );
      assert.deepEqual(probeDiagnostics.length, 1, JSON.stringify(probeDiagnostics.map((d) => d.message)));
      assert.deepEqual(
        vscode.languages.getDiagnostics(created.uri).map((d) => d.message),
        [],
      );
    } finally {
      await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
      fs.rmSync(probe.fsPath, { force: true });
    }

    fs.writeFileSync(created.uri.fsPath, 'my own agent\n');
    const kept = (await vscode.commands.executeCommand('agentSandbox.createAgentMode', { folder, overwrite: false })) as CreateAgentModeResult;
    assert.equal(kept.written, false);
    assert.equal(fs.readFileSync(created.uri.fsPath, 'utf8'), 'my own agent\n');
    const replaced = (await vscode.commands.executeCommand('agentSandbox.createAgentMode', { folder, overwrite: true })) as CreateAgentModeResult;
    assert.equal(replaced.written, true);
    assert.equal(fs.readFileSync(created.uri.fsPath, 'utf8'), content);
  });
});

async function waitForDiagnostics(uri: vscode.Uri, timeoutMs = 15_000): Promise<vscode.Diagnostic[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const diagnostics = vscode.languages.getDiagnostics(uri);
    if (diagnostics.length > 0 || Date.now() > deadline) return diagnostics;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
