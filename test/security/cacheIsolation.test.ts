// Package caches outlive the box, so they are a channel from one box to the next: that channel must stay inside one
// workspace. A box of workspace B looks for workspace A's cache everywhere it can and tries to write into the caches
// it has; A's next box must see none of it. The control is a box of A itself, which does find the marker (so the
// search would have found it in B).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Box } from '../../src/core/box/box';
import { CACHE_ROOT } from '../../src/core/cache/cacheVolumes';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { connectTestEngine, removeEverythingOwnedBy, shOk, testOwnerId, testSettings } from '../engine/engineHarness';
import { removeCachesOf } from '../engine/cacheHarness';

/** Every file in the box holding `marker`, outside /proc and /sys (the caches, /workspace, $HOME, /tmp, the image). */
const SEARCH = (marker: string): string => `grep -rlsF ${marker} $(ls -d /* | grep -vE '^/(proc|sys|dev)$'); true`;

suite('security: package caches stay inside their workspace', function () {
  this.timeout(120_000);
  const ownerId = testOwnerId('cache-isolation');
  let engine: DockerEngine | undefined;
  const folders: string[] = [];
  const boxes: Box[] = [];
  const create = async (folder: string): Promise<Box> => {
    const box = await Box.create(engine!, testSettings({ caches: true }), { folder, ownerId, env: [] });
    boxes.push(box);
    return box;
  };

  suiteSetup(async () => {
    engine = await connectTestEngine();
  });
  suiteTeardown(async () => {
    for (const box of boxes) await box.remove().catch(() => undefined);
    await removeEverythingOwnedBy(engine, ownerId);
    await removeCachesOf(engine, folders);
    for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true });
  });

  test('a box of workspace B cannot find, read or write workspace A’s cache (same lockfile, same image); control: A’s next box finds it', async () => {
    const lock = '{"lockfileVersion":3,"name":"same"}';
    const [folderA, folderB] = ['a', 'b'].map((name) => {
      const folder = fs.mkdtempSync(path.join(os.tmpdir(), `agent-sandbox-cache-sec-${name}-`));
      fs.writeFileSync(path.join(folder, 'package-lock.json'), lock);
      folders.push(folder);
      return folder;
    }) as [string, string];
    const secret = `cache-secret-${process.pid}-${Date.now().toString(36)}`;
    const boxA = await create(folderA);
    await shOk(boxA, `for d in ${CACHE_ROOT}/*; do echo ${secret} > $d/secret; done`);
    await boxA.remove();

    const boxB = await create(folderB);
    assert.equal(await shOk(boxB, SEARCH(secret)), '', 'B finds nothing of A');
    // B poisons what it can reach: its own caches, and any path under the cache root it can create.
    await shOk(boxB, `for d in ${CACHE_ROOT}/*; do echo poisoned-by-B > $d/secret; done; mkdir -p ${CACHE_ROOT}/../x 2>/dev/null; true`);
    await boxB.remove();

    // Control: the search finds the secret in A's own next box, and B's writes are not there.
    const nextA = await create(folderA);
    const found = (await shOk(nextA, SEARCH(secret))).trim().split('\n').sort();
    assert.ok(found.length >= 8 && found.every((f) => f.startsWith(`${CACHE_ROOT}/`) && f.endsWith('/secret')), found.join('\n'));
    assert.equal(await shOk(nextA, `cat ${CACHE_ROOT}/npm/secret`), `${secret}\n`);
    assert.equal(await shOk(nextA, SEARCH('poisoned-by-B')), '');
  });
});
