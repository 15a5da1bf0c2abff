// Issue 11, "apply changes more than it should": entries the developer locked to mode 000 must come back as
// 000, not as a "mode change" to 644/755 that an apply would widen. Only a server running as root can read such
// entries to send them (an unprivileged one leaves them out as unreadable), so this runs in the security tier,
// which runs as root.
import * as assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { BoxSession } from '../../src/core/session/boxSession';
import { connectTestEngine, removeEverythingOwnedBy, testOwnerId, testSettings } from '../engine/engineHarness';

/** Entries with no permission bits (the server runs as root, so it can read them) round-trip as 000. */
suite('security: mode 000 survives the mirror and the catch-up (real box)', function () {
  this.timeout(120_000);
  let engine: DockerEngine | undefined;
  const ownerId = testOwnerId('mode-000');
  let folder: string;
  let session: BoxSession;

  suiteSetup(async function () {
    assert.equal(process.getuid?.(), 0, 'the security tier runs as root, as a server that can read mode-000 entries does');
    engine = await connectTestEngine();
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-mode-000-'));
    writeFileSync(path.join(folder, 'locked.txt'), 'locked\n');
    chmodSync(path.join(folder, 'locked.txt'), 0);
    mkdirSync(path.join(folder, 'vault'));
    writeFileSync(path.join(folder, 'vault', 'in.txt'), 'in\n');
    chmodSync(path.join(folder, 'vault'), 0);
    writeFileSync(path.join(folder, 'open.txt'), 'open\n');
    session = await BoxSession.open({ engine, settings: testSettings(), folder, ownerId, env: [], log: () => undefined }, () => undefined);
  });

  suiteTeardown(async () => {
    await session?.remove().catch(() => undefined);
    await removeEverythingOwnedBy(engine, ownerId);
    if (folder) chmodSync(path.join(folder, 'vault'), 0o700);
    rmSync(folder, { recursive: true, force: true });
  });

  test('a run that changes nothing proposes no mode change, after the mirror and after a catch-up', async () => {
    const result = await session.exec({ command: 'stat -c "%a %n" locked.txt vault open.txt', runId: 'r-000' }, () => undefined);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout, '0 locked.txt\n0 vault\n644 open.txt\n');
    assert.deepEqual((await session.collect()).changes, []);

    writeFileSync(path.join(folder, 'late.txt'), 'late\n');
    chmodSync(path.join(folder, 'late.txt'), 0);
    const caught = await session.exec({ command: 'stat -c "%a %n" late.txt', runId: 'r-000b' }, () => undefined);
    assert.deepEqual(caught.caughtUp, ['late.txt']);
    assert.equal(caught.stdout, '0 late.txt\n');
    assert.deepEqual((await session.collect()).changes, []);
  });
});
