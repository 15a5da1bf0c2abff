import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as vscode from 'vscode';

const extensionId = 'agent-sandbox.agent-sandbox';

/** The cache volumes of a folder, as the engine lists them (the docker CLI, not the extension). */
function cachesOf(folder: string): string[] {
  const r = spawnSync(
    'docker',
    ['volume', 'ls', '-q', '--filter', 'label=dev.agent-sandbox.cache', '--filter', `label=dev.agent-sandbox.folder=${folder}`],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).sort();
}

suite('Agent Sandbox: Clear Caches (real engine)', function () {
  this.timeout(120_000);

  test('a run leaves the folder’s package caches; Clear Caches keeps them while the box mounts them and removes them after a reset', async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    const folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    await vscode.commands.executeCommand('agentSandbox.runCommand', { folder, command: 'echo x > "$npm_config_cache/marker"', decision: 'discard' });
    const caches = cachesOf(folder);
    assert.ok(caches.length >= 8, `caches of ${folder}: ${caches.join(', ')}`);
    const inUse = (await vscode.commands.executeCommand('agentSandbox.clearCaches', { volumeNames: caches })) as {
      removed: string[];
      inUse: string[];
    };
    assert.deepEqual({ removed: inUse.removed, inUse: [...inUse.inUse].sort() }, { removed: [], inUse: caches });
    assert.deepEqual(cachesOf(folder), caches);

    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    const cleared = (await vscode.commands.executeCommand('agentSandbox.clearCaches', { volumeNames: caches })) as {
      removed: string[];
      inUse: string[];
    };
    assert.deepEqual([...cleared.removed].sort(), caches);
    assert.deepEqual(cachesOf(folder), []);
  });
});
