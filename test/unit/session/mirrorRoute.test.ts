import * as assert from 'node:assert/strict';
import { BOX_TAR_MEMORY_SHARE, mirrorRoute } from '../../../src/core/session/boxSession';

suite('mirrorRoute: which way the workspace goes into the box', () => {
  const settings = { runtime: 'runc', workspaceVolume: 'tmpfs', memoryMiB: 2048 } as const;
  const MiB = 1024 * 1024;
  const quarter = 2048 * MiB * BOX_TAR_MEMORY_SHARE;

  test("a tmpfs workspace well within a quarter of the memory limit goes through the box's own tar", () => {
    assert.deepEqual(mirrorRoute(settings, { hasShell: true, files: 1_000, bytes: 10 * MiB }), { via: 'box-tar' });
  });

  test('one over it (its bytes plus a page per file) goes through the archive API, saying why and which setting', () => {
    // Under the share by bytes alone, over it once each file takes at least a page of tmpfs.
    const route = mirrorRoute(settings, { hasShell: true, files: 50_000, bytes: quarter - 100 * MiB });
    assert.equal(route.via, 'archive');
    assert.match(route.why ?? '', /agentSandbox\.memoryMiB \(2048\)/);
    assert.equal(mirrorRoute({ ...settings, memoryMiB: 8192 }, { hasShell: true, files: 50_000, bytes: quarter - 100 * MiB }).via, 'box-tar');
  });

  test('a disk volume is not in memory: the box tar whatever its size', () => {
    assert.equal(mirrorRoute({ ...settings, workspaceVolume: 'disk' }, { hasShell: true, files: 100_000, bytes: 4096 * MiB }).via, 'box-tar');
  });

  test('no shell, or gVisor: the archive API, with the reason', () => {
    assert.match(mirrorRoute(settings, { hasShell: false, files: 1, bytes: 1 }).why ?? '', /no shell/);
    assert.match(mirrorRoute({ ...settings, runtime: 'runsc' }, { hasShell: true, files: 1, bytes: 1 }).why ?? '', /gVisor/);
  });

  test('mirrorWith forces a way (tests and the bench), except that a box without a shell has no tar to force', () => {
    assert.deepEqual(mirrorRoute(settings, { hasShell: true, files: 1, bytes: 1, mirrorWith: 'archive' }), { via: 'archive' });
    assert.equal(mirrorRoute(settings, { hasShell: true, files: 100_000, bytes: 4096 * MiB, mirrorWith: 'box-tar' }).via, 'box-tar');
    assert.equal(mirrorRoute(settings, { hasShell: false, files: 1, bytes: 1, mirrorWith: 'box-tar' }).via, 'archive');
  });
});
