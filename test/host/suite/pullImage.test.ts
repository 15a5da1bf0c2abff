import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as vscode from 'vscode';
import type { RunCommandResult } from '../../../src/host/commands/runCommand';
import type { EngineReport } from '../../../src/shared/protocol';
import { startFakeRegistry, type FakeRegistry } from '../../fakeRegistry';

const extensionId = 'agent-sandbox.agent-sandbox';

suite('a run whose image is missing pulls it and goes on (real engine, a registry on 127.0.0.1)', function () {
  this.timeout(180_000);
  let folder: string;
  let registry: FakeRegistry;
  let original: string | undefined;

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    const first = vscode.workspace.workspaceFolders?.[0];
    assert.ok(first, 'the rig opens a workspace folder');
    folder = first.uri.fsPath;
    // A copy of the busybox test image under a name the engine does not have: pulling it is a real pull.
    registry = await startFakeRegistry({ image: 'agent-sandbox-test/busybox' });
    const config = vscode.workspace.getConfiguration('agentSandbox', first.uri);
    // User level: a workspace's image would wait for the user's one-time confirmation (a modal).
    original = config.inspect<string>('image')?.globalValue;
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    await config.update('image', registry.reference, vscode.ConfigurationTarget.Global);
    // The server has the new setting once a check reports it.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const report = (await vscode.commands.executeCommand('agentSandbox.checkEngine')) as EngineReport | undefined;
      if (report?.image.reference === registry.reference) {
        assert.equal(report.image.present, false, 'the image must not be there before the test pulls it');
        break;
      }
      assert.ok(Date.now() < deadline, 'the image setting never reached the engine server');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    await vscode.workspace
      .getConfiguration('agentSandbox', vscode.workspace.workspaceFolders?.[0]?.uri)
      .update('image', original, vscode.ConfigurationTarget.Global);
    await registry?.close();
    if (registry) spawnSync('docker', ['image', 'rm', registry.reference]);
  });

  test('Run Command: image missing → pull → the same command runs in a box of the pulled image', async () => {
    const run = (await vscode.commands.executeCommand('agentSandbox.runCommand', {
      folder,
      command: 'echo ran after the pull',
      decision: 'keep',
      imageMissing: 'pull',
    })) as RunCommandResult | undefined;
    assert.ok(run, 'agentSandbox.runCommand returned nothing (see the Agent Sandbox log)');
    assert.equal(run.result.exitCode, 0, run.result.stderr);
    assert.equal(run.result.stdout, 'ran after the pull\n');
    assert.equal(run.result.image.reference, registry.reference);
    assert.ok(
      registry.requests.some((r) => r.includes('/manifests/')),
      `the registry served the pull: ${registry.requests}`,
    );
    const report = (await vscode.commands.executeCommand('agentSandbox.checkEngine')) as EngineReport;
    assert.equal(report.image.present, true);
  });
});
