import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { EngineReport } from '../../../src/shared/protocol';
import { summarizeImageReport } from '../../../src/core/docker/imageReportText';

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

  test('every command package.json contributes is registered, and every registered agentSandbox command is contributed', async () => {
    const ext = vscode.extensions.getExtension(extensionId);
    assert.ok(ext);
    await ext.activate();
    const contributed = ((ext.packageJSON as { contributes: { commands: { command: string }[] } }).contributes.commands ?? [])
      .map((c) => c.command)
      .sort();
    const registered = (await vscode.commands.getCommands(true)).filter((c) => c.startsWith('agentSandbox.')).sort();
    assert.ok(contributed.length > 20, `only ${contributed.length} contributed commands`);
    assert.deepEqual(
      contributed.filter((c) => !registered.includes(c)),
      [],
      'contributed but not registered: the palette and menus would show commands that fail with "command not found"',
    );
    assert.deepEqual(
      registered.filter(
        (c) =>
          !contributed.includes(c) &&
          !c.endsWith('.focus') &&
          !c.endsWith('.resetViewLocation') &&
          !c.endsWith('.toggleVisibility') &&
          !c.endsWith('.removeView') &&
          !c.endsWith('.open'),
      ),
      [],
      'registered but not contributed (views add their own .focus/.open commands)',
    );
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
      { version: string; host: string; source: string; runtimes: string[]; image: { reference: string; present: boolean } } | undefined;
    assert.ok(report, 'checkEngine returned nothing (see the Agent Sandbox log)');
    assert.match(report.version, /^\d+\.\d+/);
    assert.equal(report.host, process.env.DOCKER_HOST, 'the engine is found through DOCKER_HOST');
    assert.equal(report.source, 'DOCKER_HOST');
    assert.ok(report.runtimes.includes('runc'));
    assert.deepEqual(report.image, { ...report.image, reference: 'agent-sandbox-test/node', present: true });
  });

  test('shows the image report: verified from the image (shell, GNU find, the setuid file), and says what the log got', async () => {
    const report = (await vscode.commands.executeCommand('agentSandbox.checkEngine')) as EngineReport | undefined;
    assert.ok(report?.image.report, 'checkEngine returned no image report (see the Agent Sandbox log)');
    const image = report.image.report;
    assert.equal(image.id, report.image.id);
    assert.deepEqual([image.hasShell, image.find, image.tar], [true, 'gnu', 'busybox']);
    assert.deepEqual(image.setuidFiles, ['/usr/local/bin/node-setuid 4755 0:0']);
    assert.equal(image.pinnedByDigest, false);
    assert.match(summarizeImageReport(image), /\/bin\/sh, find gnu, tar busybox, 1 setuid\/setgid file\(s\), reference is a tag/);
  });
});
