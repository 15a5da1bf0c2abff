// Package caches that outlive the box: real volumes on the test engine, mounted into real boxes. Keyed by workspace,
// image and lockfile; kept through a reset and orphan cleanup; used by npm for real (a warm cache makes npm ci go
// without the registry); emptied over the size bound; listed and removed by the server's requests.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Box } from '../../src/core/box/box';
import { LABEL_MANAGED } from '../../src/core/box/boxConfig';
import { CACHE_ROOT, CACHE_TOOLS, listCaches } from '../../src/core/cache/cacheVolumes';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { EnsureBoxRequest, ListCachesRequest, ClearCachesRequest, ResetRequest, type BoxSettings } from '../../src/shared/protocol';
import { removeCachesOf } from './cacheHarness';
import { createTestInternet, type TestInternet } from './egressInternet';
import { startEngineServer, stopEngineServer, type EngineServerProcess } from '../builders/engineServer';
import { connectTestEngine, removeEverythingOwnedBy, sh, shOk, testOwnerId, testSettings, TEST_IMAGES } from './engineHarness';

/** A workspace folder on this machine with the given npm lockfile content (or none). */
function workspaceWithLock(lock?: string): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-cache-'));
  if (lock !== undefined) fs.writeFileSync(path.join(folder, 'package-lock.json'), lock);
  return folder;
}

async function containerMounts(engine: DockerEngine, box: Box): Promise<string[]> {
  const info = await engine.call('inspecting the box', (d) => d.getContainer(box.containerId).inspect());
  return info.Mounts.filter((m) => m.Type === 'volume').map((m) => m.Name ?? '');
}

suite('engine: package caches', function () {
  this.timeout(180_000);
  const ownerId = testOwnerId('caches');
  let engine: DockerEngine | undefined;
  const folders: string[] = [];
  const boxes: Box[] = [];
  const settings = (overrides: Partial<BoxSettings> = {}): BoxSettings => testSettings({ caches: true, ...overrides });
  const create = async (folder: string, overrides: Partial<BoxSettings> = {}, extra: Partial<Parameters<typeof Box.create>[2]> = {}) => {
    const box = await Box.create(engine!, settings(overrides), { folder, ownerId, env: [], ...extra });
    boxes.push(box);
    return box;
  };
  const remove = async (box: Box) => {
    await box.remove();
    boxes.splice(boxes.indexOf(box), 1);
  };
  const npmCache = (names: readonly string[]) => names.find((name) => name.startsWith('agent-sandbox-cache-npm-'))!;

  suiteSetup(async () => {
    engine = await connectTestEngine();
  });

  suiteTeardown(async () => {
    for (const box of boxes) await box.remove().catch(() => undefined);
    await removeEverythingOwnedBy(engine, ownerId);
    await removeCachesOf(engine, folders);
    for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true });
  });

  test('a box mounts one cache per tool, writable by the box user, and the tools are pointed at them', async () => {
    const folder = workspaceWithLock('{"lockfileVersion":3}');
    folders.push(folder);
    const box = await create(folder);
    assert.equal(box.cacheVolumes.length, CACHE_TOOLS.length);
    assert.deepEqual((await containerMounts(engine!, box)).filter((n) => n.startsWith('agent-sandbox-cache-')).sort(), [...box.cacheVolumes].sort());
    const info = await engine!.call('inspecting the box', (d) => d.getContainer(box.containerId).inspect());
    assert.deepEqual(
      info.Mounts.filter((m) => m.Type !== 'volume').map((m) => m.Type),
      [],
      'engine volumes only, no host bind',
    );
    const env = await shOk(box, 'env');
    for (const { tool, variable } of CACHE_TOOLS) assert.ok(env.includes(`${variable}=${CACHE_ROOT}/${tool}\n`), `${variable} in ${env}`);
    // Each cache belongs to the box user; $HOME stays the box user's (no root-owned parents made inside it).
    const owners = await shOk(
      box,
      `for t in ${CACHE_TOOLS.map((t) => t.tool).join(' ')}; do touch ${CACHE_ROOT}/$t/w && stat -c %u ${CACHE_ROOT}/$t; done; stat -c %u "$HOME"; ls -A "$HOME"`,
    );
    assert.deepEqual(owners.trim().split('\n'), [...CACHE_TOOLS.map(() => '1000'), '1000']);
    await remove(box);
  });

  test('a cache survives a reset and is not one orphan cleanup takes; another lockfile or another workspace gets another volume that cannot read the first', async () => {
    const folderA = workspaceWithLock('{"lockfileVersion":3,"name":"a"}');
    const folderB = workspaceWithLock('{"lockfileVersion":3,"name":"a"}'); // the same lockfile: only the workspace differs
    folders.push(folderA, folderB);
    const first = await create(folderA);
    await shOk(first, `echo from-A > ${CACHE_ROOT}/npm/marker && echo pip-A > ${CACHE_ROOT}/pip/marker`);
    const firstNames = [...first.cacheVolumes];
    // Orphan cleanup only ever takes volumes with the managed label (it is not run here: it would sweep other suites'
    // boxes on this shared engine). The box's workspace volume carries it (the control); its caches do not.
    const managed = await engine!.call('listing managed volumes', (d) => d.listVolumes({ filters: { label: [`${LABEL_MANAGED}=true`] } }));
    const managedNames = (managed.Volumes ?? []).map((v) => v.Name);
    assert.ok(managedNames.includes(first.volumeName), 'the workspace volume is one orphan cleanup would find');
    assert.deepEqual(
      firstNames.filter((n) => managedNames.includes(n)),
      [],
    );
    await remove(first); // what Reset Sandbox does to the box

    const again = await create(folderA);
    assert.deepEqual(again.cacheVolumes, firstNames, 'the same key mounts the same volumes');
    assert.equal(await shOk(again, `cat ${CACHE_ROOT}/npm/marker`), 'from-A\n');
    await remove(again);

    // Another lockfile: the npm cache is another volume (empty), the superseded one is gone; pip's key did not change.
    fs.writeFileSync(path.join(folderA, 'package-lock.json'), '{"lockfileVersion":3,"name":"a","changed":true}');
    const relocked = await create(folderA);
    assert.notEqual(npmCache(relocked.cacheVolumes), npmCache(firstNames));
    assert.equal((await sh(relocked, `cat ${CACHE_ROOT}/npm/marker`)).exitCode, 1);
    assert.equal(await shOk(relocked, `cat ${CACHE_ROOT}/pip/marker`), 'pip-A\n');
    const names = (await listCaches(engine!, new Map())).map((c) => c.volumeName);
    assert.ok(!names.includes(npmCache(firstNames)), 'the superseded npm cache was removed');

    // Another workspace with the very same lockfile and image: its own volumes, none of A's contents.
    const other = await create(folderB);
    assert.equal(other.cacheVolumes.filter((n) => relocked.cacheVolumes.includes(n)).length, 0, 'no volume is shared between workspaces');
    assert.equal((await containerMounts(engine!, other)).filter((n) => relocked.cacheVolumes.includes(n)).length, 0);
    assert.equal((await sh(other, `cat ${CACHE_ROOT}/pip/marker`)).exitCode, 1);
    await remove(other);
    await remove(relocked);
  });

  test('the size bound: caches over it are emptied before the next box mounts them; under it they stay', async () => {
    const folder = workspaceWithLock();
    folders.push(folder);
    const filler = await create(folder);
    await shOk(filler, `dd if=/dev/zero of=${CACHE_ROOT}/npm/big bs=1M count=24 2>/dev/null && echo kept > ${CACHE_ROOT}/uv/marker`);
    await remove(filler);
    // Control: a bound above the content keeps it.
    const roomy = await create(folder, { cacheSizeMiB: 64 });
    assert.equal(await shOk(roomy, `cat ${CACHE_ROOT}/uv/marker`), 'kept\n');
    await remove(roomy);
    const tight = await create(folder, { cacheSizeMiB: 16 });
    assert.equal((await sh(tight, `ls ${CACHE_ROOT}/npm/big ${CACHE_ROOT}/uv/marker`)).exitCode, 1, 'over the bound: emptied');
    assert.equal(await shOk(tight, `touch ${CACHE_ROOT}/npm/w && echo ok`), 'ok\n', 'and writable again');
    await remove(tight);
  });

  test('caches off: no cache volume is made or mounted', async () => {
    const folder = workspaceWithLock('{}');
    folders.push(folder);
    const box = await create(folder, { caches: false });
    assert.deepEqual(box.cacheVolumes, []);
    assert.deepEqual(
      (await containerMounts(engine!, box)).filter((n) => n.startsWith('agent-sandbox-cache-')),
      [],
    );
    assert.equal((await listCaches(engine!, new Map())).filter((c) => c.folder === folder).length, 0);
    await remove(box);
  });

  suite('npm uses the mounted cache', () => {
    let internet: TestInternet | undefined;
    const lockFor = async (): Promise<string> => {
      const document = await internet!.execIn(internet!.upstreamContainerId, ['cat', '/tmp/npm/egress-tiny/index.json']);
      const integrity = (JSON.parse(document.stdout) as { versions: Record<string, { dist: { integrity: string } }> }).versions['1.0.0']!.dist
        .integrity;
      return JSON.stringify({
        name: 'cached',
        version: '1.0.0',
        lockfileVersion: 3,
        requires: true,
        packages: {
          '': { name: 'cached', version: '1.0.0', dependencies: { 'egress-tiny': '1.0.0' } },
          'node_modules/egress-tiny': { version: '1.0.0', resolved: 'https://registry.test/npm/egress-tiny/-/egress-tiny-1.0.0.tgz', integrity },
        },
      });
    };

    suiteSetup(async () => {
      internet = await createTestInternet(engine!, ownerId);
    });
    suiteTeardown(async () => {
      await internet?.remove();
    });

    test('a second npm ci in a new box of the same workspace fetches nothing from the registry (the first did)', async () => {
      const lock = await lockFor();
      const folder = workspaceWithLock(lock);
      folders.push(folder);
      const manifest = JSON.stringify({ name: 'cached', version: '1.0.0', dependencies: { 'egress-tiny': '1.0.0' } });
      const npmCi = async (box: Box): Promise<number> => {
        await shOk(box, 'cat > /tmp/ca.pem', { stdin: internet!.caPem });
        await shOk(box, 'cat > package.json', { stdin: manifest });
        await shOk(box, 'cat > package-lock.json', { stdin: lock });
        const before = box.egress!.attempts.length;
        const out = await shOk(box, 'npm ci --no-audit --no-fund --cafile /tmp/ca.pem >/dev/null && node -p "require(\'egress-tiny\')"', {
          timeoutMs: 120_000,
        });
        assert.equal(out, 'installed through the egress gateway\n');
        return box.egress!.attempts.slice(before).filter((a) => a.host === 'registry.test').length;
      };
      const options = { image: TEST_IMAGES.net };
      const cold = await create(folder, options, { egress: internet!.egress(['registry.test']) });
      assert.ok((await npmCi(cold)) > 0, 'the cold cache had to ask the registry');
      await remove(cold);
      const warm = await create(folder, options, { egress: internet!.egress(['registry.test']) });
      assert.equal(await npmCi(warm), 0, 'the warm cache answered everything');
      await remove(warm);
    });
  });

  suite('server requests', () => {
    let server: Partial<EngineServerProcess> = {};
    suiteTeardown(async () => stopEngineServer(server));

    test('sandbox/listCaches lists a workspace’s caches with size and last use; sandbox/clearCaches removes the named ones, keeps one in use, refuses a non-cache volume', async () => {
      const folder = workspaceWithLock('{"lockfileVersion":3}');
      folders.push(folder);
      server = await startEngineServer({ box: { image: TEST_IMAGES.busybox, memoryMiB: 128, idleTimeoutMinutes: 0, caches: true } });
      const connection = server.connection!;
      const info = await connection.sendRequest(EnsureBoxRequest.type, { folder });
      const ours = (await connection.sendRequest(ListCachesRequest.type)).caches.filter((c) => c.folder === folder);
      assert.deepEqual(ours.map((c) => c.tool).sort(), CACHE_TOOLS.map((t) => t.tool).sort());
      for (const cache of ours) {
        assert.equal(cache.inUse, true);
        assert.equal(typeof cache.sizeBytes, 'number');
        assert.ok(cache.lastUsed && Date.now() - Date.parse(cache.lastUsed) < 120_000, JSON.stringify(cache));
      }
      // In use by the running box: stays.
      const inUse = await connection.sendRequest(ClearCachesRequest.type, { volumeNames: [ours[0]!.volumeName] });
      assert.deepEqual(inUse, { removed: [], inUse: [ours[0]!.volumeName] });
      // Not a cache (the box's workspace volume): refused, and it is still there.
      await assert.rejects(connection.sendRequest(ClearCachesRequest.type, { volumeNames: [info.volumeName] }), /No cache volume named/);
      await engine!.call('inspecting the workspace volume', (d) => d.getVolume(info.volumeName).inspect());

      await connection.sendRequest(ResetRequest.type, { folder });
      const cleared = await connection.sendRequest(ClearCachesRequest.type, { volumeNames: ours.map((c) => c.volumeName) });
      assert.deepEqual(cleared.removed.sort(), ours.map((c) => c.volumeName).sort());
      assert.deepEqual(cleared.inUse, []);
      const left = (await connection.sendRequest(ListCachesRequest.type)).caches.filter((c) => c.folder === folder);
      assert.deepEqual(left, []);
    });
  });
});
