// Orphaned boxes (their server process is gone) are found by label and removed with their volumes;
// boxes of live owners, of this server and of other machines stay.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import { Box } from '../../src/core/box/box';
import { boxLabels } from '../../src/core/box/boxConfig';
import { findBoxes, processIsAlive, removeOrphans } from '../../src/core/box/orphans';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { connectTestEngine, removeEverythingOwnedBy, testOwnerId, testSettings } from './engineHarness';

suite('engine: orphans', () => {
  const prefix = testOwnerId('orphans');
  const owners = {
    dead: `${prefix}-dead`,
    alive: `${prefix}-alive`,
    current: `${prefix}-current`,
    otherHost: `${prefix}-other-host`,
    deadVolumeOnly: `${prefix}-dead-volume`,
  };
  let engine: DockerEngine | undefined;
  let deadPid: number;
  const boxes: Record<string, Box> = {};
  let lonelyVolume: string;

  suiteSetup(async () => {
    engine = await connectTestEngine();
    // A pid that just existed and is gone now.
    deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
    assert.equal(processIsAlive(deadPid), false);
    assert.equal(processIsAlive(process.pid), true);
    const settings = testSettings();
    const make = (key: string, ownerId: string, ownerPid: number, ownerHost?: string): Promise<void> =>
      Box.create(engine!, settings, { folder: `/tmp/orphans/${key}`, ownerId, ownerPid, ownerHost }).then((box) => {
        boxes[key] = box;
      });
    await Promise.all([
      make('dead', owners.dead, deadPid),
      make('alive', owners.alive, process.pid),
      make('current', owners.current, deadPid),
      make('otherHost', owners.otherHost, deadPid, 'some-other-machine'),
    ]);
    lonelyVolume = `${prefix}-lonely-volume`;
    await engine.call('creating a lonely volume', (d) =>
      d.createVolume({
        Name: lonelyVolume,
        Labels: boxLabels({ folder: '/tmp/orphans/lonely', ownerId: owners.deadVolumeOnly, ownerPid: deadPid, ownerHost: os.hostname() }),
      }),
    );
  });

  suiteTeardown(async () => {
    for (const ownerId of Object.values(owners)) {
      await removeEverythingOwnedBy(engine, ownerId);
    }
  });

  test('findBoxes lists managed boxes with their owner labels, filtered by folder and owner', async () => {
    const all = await findBoxes(engine!);
    const dead = all.find((b) => b.containerId === boxes.dead.containerId);
    assert.ok(dead);
    assert.equal(dead.folder, '/tmp/orphans/dead');
    assert.equal(dead.ownerId, owners.dead);
    assert.equal(dead.ownerPid, deadPid);
    assert.equal(dead.ownerHost, os.hostname());
    assert.equal(dead.volumeName, boxes.dead.volumeName);
    assert.equal(dead.state, 'running');
    const byFolder = await findBoxes(engine!, { folder: '/tmp/orphans/alive' });
    assert.deepEqual(
      byFolder.map((b) => b.containerId),
      [boxes.alive.containerId],
    );
    const byOwner = await findBoxes(engine!, { ownerId: owners.otherHost });
    assert.deepEqual(
      byOwner.map((b) => b.containerId),
      [boxes.otherHost.containerId],
    );
  });

  test('removeOrphans removes boxes and volumes of dead owners only', async () => {
    const removed = await removeOrphans(engine!, { isAlive: processIsAlive, currentOwnerId: owners.current });
    assert.ok(removed.containers.includes(boxes.dead.containerName), JSON.stringify(removed));
    assert.ok(removed.volumes.includes(boxes.dead.volumeName), JSON.stringify(removed));
    assert.ok(removed.volumes.includes(lonelyVolume), 'a volume left without its container is removed too');
    for (const key of ['alive', 'current', 'otherHost']) {
      assert.ok(!removed.containers.includes(boxes[key].containerName), `${key} must stay`);
      assert.ok(!removed.volumes.includes(boxes[key].volumeName), `${key}'s volume must stay`);
      assert.equal(await boxes[key].isRunning(), true, `${key} still runs`);
    }
    assert.equal(await boxes.dead.isRunning(), false);
    const volumes = await engine!.call('list volumes', (d) => d.listVolumes());
    const names = new Set((volumes.Volumes ?? []).map((v) => v.Name));
    assert.equal(names.has(boxes.dead.volumeName), false);
    assert.equal(names.has(lonelyVolume), false);
    assert.equal(names.has(boxes.alive.volumeName), true);
    // Running it again finds nothing more of ours.
    const again = await removeOrphans(engine!, { isAlive: processIsAlive, currentOwnerId: owners.current });
    for (const key of ['alive', 'current', 'otherHost']) {
      assert.ok(!again.containers.includes(boxes[key].containerName));
    }
  });

  test('Box.remove deletes the container and its volume', async () => {
    await boxes.alive.remove();
    assert.equal(await boxes.alive.isRunning(), false);
    const volumes = await engine!.call('list volumes', (d) => d.listVolumes());
    assert.equal(
      (volumes.Volumes ?? []).some((v) => v.Name === boxes.alive.volumeName),
      false,
    );
    await boxes.alive.remove(); // twice is fine
  });
});
