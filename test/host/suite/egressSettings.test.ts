import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { SandboxSettings } from '../../../src/host/settings';

suite('Egress settings are machine-scoped', () => {
  const keys = ['network', 'allowedHosts', 'networkPresets'] as const;
  teardown(async () => {
    const config = vscode.workspace.getConfiguration('agentSandbox');
    for (const key of keys) await config.update(key, undefined, vscode.ConfigurationTarget.Global);
  });

  test("the user's values reach the accessor; a workspace cannot set them (VS Code refuses, and the accessor reads only user values)", async () => {
    const config = vscode.workspace.getConfiguration('agentSandbox');
    await config.update('network', 'allowlist', vscode.ConfigurationTarget.Global);
    await config.update('allowedHosts', ['api.example.com'], vscode.ConfigurationTarget.Global);
    await config.update('networkPresets', ['npm'], vscode.ConfigurationTarget.Global);
    const settings = new SandboxSettings();
    try {
      assert.deepEqual(settings.egress(), { network: 'allowlist', allowedHosts: ['api.example.com'], networkPresets: ['npm'] });
      for (const target of [vscode.ConfigurationTarget.Workspace, vscode.ConfigurationTarget.WorkspaceFolder]) {
        await assert.rejects(
          Promise.resolve(
            vscode.workspace
              .getConfiguration('agentSandbox', vscode.workspace.workspaceFolders?.[0]?.uri)
              .update('allowedHosts', ['evil.example'], target),
          ),
          /user settings|machine|Unable to write/i,
        );
      }
      assert.deepEqual(settings.egress().allowedHosts, ['api.example.com']);
    } finally {
      settings.dispose();
    }
  });
});
