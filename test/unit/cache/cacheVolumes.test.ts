import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { containerCreateOptions, DEFAULT_BOX_SETTINGS, LABEL_MANAGED, validateBoxSettings } from '../../../src/core/box/boxConfig';
import { CACHE_ROOT, CACHE_TOOLS, cacheVolumesFor, lockfileHash } from '../../../src/core/cache/cacheVolumes';
import { SandboxError } from '../../../src/core/errors';

suite('package cache volumes', () => {
  let folder: string;
  setup(() => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-cache-unit-'));
  });
  teardown(() => fs.rmSync(folder, { recursive: true, force: true }));

  const names = async (workspace: { folder: string; host: string }, image = 'sha256:img') =>
    Object.fromEntries((await cacheVolumesFor(workspace, image)).map((v) => [v.tool, v.volumeName]));

  test('keyed by workspace (host and folder), image and the tool’s own lockfile', async () => {
    const here = { folder, host: 'h1' };
    const base = await names(here);
    assert.deepEqual(
      Object.keys(base),
      CACHE_TOOLS.map((t) => t.tool),
    );
    assert.equal(new Set(Object.values(base)).size, CACHE_TOOLS.length, 'one volume per tool');
    assert.deepEqual(await names(here), base, 'stable');
    fs.writeFileSync(path.join(folder, 'package-lock.json'), '{}');
    const locked = await names(here);
    assert.notEqual(locked.npm, base.npm, 'the npm lockfile changes the npm key');
    assert.equal(locked.pip, base.pip, '…and no other tool’s');
    for (const other of [
      await names({ folder, host: 'h2' }),
      await names({ folder: `${folder}-b`, host: 'h1' }),
      await names(here, 'sha256:other'),
    ]) {
      assert.equal(Object.values(other).filter((n) => Object.values(locked).includes(n)).length, 0, 'another host, folder or image shares no volume');
    }
  });

  test('labels find and own the caches, but carry no managed label (orphan cleanup leaves them)', async () => {
    for (const volume of await cacheVolumesFor({ folder, host: 'h' }, 'sha256:img')) {
      assert.equal(volume.labels['dev.agent-sandbox.cache'], volume.tool);
      assert.equal(volume.labels['dev.agent-sandbox.folder'], folder);
      assert.equal(volume.labels[LABEL_MANAGED], undefined);
      assert.equal(volume.target, `${CACHE_ROOT}/${volume.tool}`);
    }
  });

  test('lockfileHash: "none" without a lockfile; a read error other than a missing file is not hidden', async () => {
    assert.equal(await lockfileHash(folder, ['package-lock.json']), 'none');
    fs.mkdirSync(path.join(folder, 'package-lock.json'));
    await assert.rejects(lockfileHash(folder, ['package-lock.json']), /EISDIR/);
  });

  test('the box mounts the caches as engine volumes (no copy of image content, no bind) and gets the tools’ variables', async () => {
    const volumes = await cacheVolumesFor({ folder, host: 'h' }, 'sha256:img');
    const options = containerCreateOptions(DEFAULT_BOX_SETTINGS, {
      name: 'n',
      volumeName: 'v',
      labels: {},
      env: [],
      caches: { volumes, env: ['npm_config_cache=/x'] },
    });
    const mounts = options.HostConfig!.Mounts!;
    assert.deepEqual(
      mounts.slice(1).map((m) => [m.Type, m.Source, m.Target, (m.VolumeOptions as { NoCopy?: boolean }).NoCopy]),
      volumes.map((v) => ['volume', v.volumeName, v.target, true]),
    );
    assert.ok(options.Env!.includes('npm_config_cache=/x'));
    assert.equal(containerCreateOptions(DEFAULT_BOX_SETTINGS, { name: 'n', volumeName: 'v', labels: {}, env: [] }).HostConfig!.Mounts!.length, 1);
  });

  test('settings: caches is a boolean, cacheSizeMiB a whole number within the schema', () => {
    assert.throws(
      () => validateBoxSettings({ caches: 'yes' as never }),
      (e: unknown) => SandboxError.is(e, 'invalid-setting') && /agentSandbox\.caches/.test((e as Error).message),
    );
    assert.throws(() => validateBoxSettings({ cacheSizeMiB: 8 }), /agentSandbox\.cacheSizeMiB: 8 is not valid; use a whole number from 16 to/);
    assert.equal(validateBoxSettings({ caches: false, cacheSizeMiB: 16 }).cacheSizeMiB, 16);
  });
});
