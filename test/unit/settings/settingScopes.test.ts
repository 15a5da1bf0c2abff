// Invariant 9: a repository cannot steer the box. The keys that decide where data goes or what host data
// enters the box are machine-scoped in the manifest and read from the user level only.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONFIRMED_WORKSPACE_KEYS, effectiveSetting, MACHINE_SCOPED_KEYS, RESTRICTED_KEYS } from '../../../src/host/settingScopes';

const manifest = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', '..', 'package.json'), 'utf8'));
const properties: Record<string, { scope?: string; type?: string; enum?: string[] }> = manifest.contributes.configuration.properties;

suite('unit: setting scopes', () => {
  test('the engine address, passed variables, runtime and agent commands are machine-scoped', () => {
    for (const key of ['dockerHost', 'envAllowlist', 'runtime', 'agentClis']) {
      assert.ok((MACHINE_SCOPED_KEYS as readonly string[]).includes(key), key);
    }
  });

  test('package.json declares "scope": "machine" for exactly the machine-scoped keys', () => {
    const machine = Object.entries(properties)
      .filter(([, p]) => p.scope === 'machine')
      .map(([key]) => key.replace(/^agentSandbox\./, ''));
    assert.deepEqual(machine.sort(), [...MACHINE_SCOPED_KEYS].sort());
  });

  test('Restricted Mode: the manifest restricts every machine-scoped key and the image; no virtual workspaces; runs where the workspace is', () => {
    const untrusted = manifest.capabilities.untrustedWorkspaces;
    assert.equal(untrusted.supported, 'limited');
    assert.ok(typeof untrusted.description === 'string' && untrusted.description.length > 20);
    assert.deepEqual([...untrusted.restrictedConfigurations].sort(), RESTRICTED_KEYS.map((key) => `agentSandbox.${key}`).sort());
    assert.ok(RESTRICTED_KEYS.includes('image'));
    assert.deepEqual(CONFIRMED_WORKSPACE_KEYS, ['image']);
    assert.equal(manifest.capabilities.virtualWorkspaces, false);
    assert.deepEqual(manifest.extensionKind, ['workspace']);
  });

  test('workspaceVolume cannot name a host path (so it need not be machine-scoped)', () => {
    assert.deepEqual(properties['agentSandbox.workspaceVolume'].enum, ['tmpfs', 'disk']);
  });

  test("a machine-scoped key ignores workspace and folder values: the user's value, else the default", () => {
    for (const key of MACHINE_SCOPED_KEYS) {
      assert.deepEqual(
        effectiveSetting(key, { defaultValue: 'd', globalValue: 'u', workspaceValue: 'w', workspaceFolderValue: 'f' }),
        { value: 'u', origin: 'user' },
        key,
      );
      assert.deepEqual(effectiveSetting(key, { defaultValue: 'd', workspaceValue: 'w', workspaceFolderValue: 'f' }), {
        value: 'd',
        origin: 'default',
      });
    }
    assert.deepEqual(effectiveSetting('dockerHost', { defaultValue: '', workspaceValue: 'tcp://attacker.example:2375' }).value, '');
    assert.deepEqual(effectiveSetting('envAllowlist', { defaultValue: [], workspaceValue: ['GITHUB_TOKEN'] }).value, []);
  });

  test("other keys keep VS Code's precedence: folder, workspace, user, default", () => {
    assert.deepEqual(effectiveSetting('memoryMiB', { defaultValue: 1, globalValue: 2, workspaceValue: 3, workspaceFolderValue: 4 }), {
      value: 4,
      origin: 'workspaceFolder',
    });
    assert.deepEqual(effectiveSetting('memoryMiB', { defaultValue: 1, globalValue: 2, workspaceValue: 3 }), { value: 3, origin: 'workspace' });
    assert.deepEqual(effectiveSetting('memoryMiB', { defaultValue: 1, globalValue: 2 }), { value: 2, origin: 'user' });
    assert.deepEqual(effectiveSetting('memoryMiB', { defaultValue: 1 }), { value: 1, origin: 'default' });
  });

  test("a workspace can add to exclude but never drop the user's patterns, nor turn off the user's useGitignore", () => {
    assert.deepEqual(effectiveSetting('exclude', { defaultValue: [], globalValue: ['secrets/**'], workspaceValue: [] }).value, ['secrets/**']);
    assert.deepEqual(effectiveSetting('exclude', { defaultValue: [], globalValue: ['secrets/**'], workspaceValue: ['dist/**'] }).value, [
      'secrets/**',
      'dist/**',
    ]);
    assert.deepEqual(effectiveSetting('exclude', { defaultValue: [], workspaceValue: ['dist/**'] }).value, ['dist/**']);
    assert.equal(effectiveSetting('useGitignore', { defaultValue: false, globalValue: true, workspaceValue: false }).value, true);
    assert.equal(effectiveSetting('useGitignore', { defaultValue: false, globalValue: false, workspaceValue: true }).value, true);
    assert.equal(effectiveSetting('useGitignore', { defaultValue: false, workspaceValue: false }).value, false);
  });
});
