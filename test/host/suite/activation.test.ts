import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

const extensionId = 'agent-sandbox.agent-sandbox';

suite('Activation', () => {
  test('the extension under development is installed', () => {
    const ext = vscode.extensions.getExtension(extensionId);
    assert.ok(ext, `${extensionId} is not among ${vscode.extensions.all.map((e) => e.id).join(', ')}`);
  });

  test('it activates without throwing', async () => {
    const ext = vscode.extensions.getExtension(extensionId);
    assert.ok(ext);
    await ext.activate();
    assert.equal(ext.isActive, true);
  });

  test('it registers agentSandbox.checkEngine', async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('agentSandbox.checkEngine'), 'agentSandbox.checkEngine is not registered');
  });

  test('the window opened a fresh copy of the fixture workspace', async () => {
    const folders = vscode.workspace.workspaceFolders ?? [];
    assert.equal(folders.length, 1);
    const readme = await vscode.workspace.fs.readFile(vscode.Uri.joinPath(folders[0].uri, 'README.md'));
    assert.match(Buffer.from(readme).toString('utf8'), /host-tier fixture/);
    const image = vscode.workspace.getConfiguration('agentSandbox', folders[0].uri).get<string>('image');
    assert.equal(image, 'agent-sandbox-test/node');
  });
});

suite('Check Docker Engine', () => {
  test('reports the real engine and the configured image', async () => {
    const report = (await vscode.commands.executeCommand('agentSandbox.checkEngine')) as
      | { version: string; host: string; source: string; runtimes: string[]; image: { reference: string; present: boolean } }
      | undefined;
    assert.ok(report, 'checkEngine returned nothing (see the Agent Sandbox log)');
    assert.match(report.version, /^\d+\.\d+/);
    assert.equal(report.host, process.env.DOCKER_HOST, 'the engine is found through DOCKER_HOST');
    assert.equal(report.source, 'DOCKER_HOST');
    assert.ok(report.runtimes.includes('runc'));
    assert.deepEqual(report.image, { ...report.image, reference: 'agent-sandbox-test/node', present: true });
  });
});
