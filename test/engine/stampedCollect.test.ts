import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChangeSet } from '../../src/shared/protocol';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { BoxSession } from '../../src/core/session/boxSession';
import type { CollectInfo } from '../../src/core/session/boxTreeReader';
import { connectTestEngine, removeEverythingOwnedBy, shOk, testOwnerId, testSettings, TEST_IMAGES } from './engineHarness';
import { suiteUnderEachRuntime } from './gvisorRuntimes';

/**
 * Collect through box stamps (GNU find listing + one archive per possibly changed file) must give exactly
 * the change set the full archive gives. The same scenario runs in the node image (GNU find: stamps) and the
 * busybox image (no -printf: full archive every time), and both are checked against what the box did.
 */

/** A change set without the folder (the two runs use two folders), refusals by path and reason. */
/**
 * `withoutFifos`: under gVisor a fifo made in the box stays inside the sandbox (runsc --host-fifo=none), so the
 * engine's archive, read on the host, never holds it; the box's own listing does, and refuses it.
 */
function comparable(changeSet: ChangeSet, withoutFifos = false): unknown {
  return {
    changes: changeSet.changes,
    refused: changeSet.refused.filter((r) => !(withoutFifos && r.reason === 'fifo')).map((r) => `${r.reason} ${r.path}`),
    ignoredCount: changeSet.ignoredCount,
  };
}

function summary(changeSet: ChangeSet): string[] {
  return changeSet.changes.map((c) => `${c.kind} ${c.type} ${c.fromPath ? `${c.fromPath} -> ` : ''}${c.path}`);
}

interface ScenarioResult {
  collects: { changeSet: ChangeSet; info: CollectInfo | undefined }[];
  catchUps: { sent: string[]; conflicts: string[] }[];
}

function makeWorkspace(): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'as-stamped-'));
  const write = (rel: string, content: string | Buffer) => {
    mkdirSync(path.dirname(path.join(folder, rel)), { recursive: true });
    writeFileSync(path.join(folder, rel), content);
  };
  write('a.txt', 'alpha\n');
  write('b.txt', 'bravo\n');
  write('c.txt', 'charlie\n');
  write('same.txt', 'same size\n');
  write('later.txt', 'untouched until after the apply\n');
  write('tool.sh', '#!/bin/sh\necho hi\n');
  write('f2d.txt', 'becomes a directory\n');
  write('f2l.txt', 'becomes a symlink\n');
  write('d2f/inside.txt', 'its directory becomes a file\n');
  write('src/r.txt', 'renamed in the box\n');
  write('src/keep.txt', 'kept\n');
  write('host.txt', 'edited on the host\n');
  write('both.txt', 'edited on both sides\n');
  for (let i = 0; i < 40; i++) write(`bulk/file-${i}.txt`, `bulk ${i}\n`);
  return folder;
}

async function runScenario(
  engine: DockerEngine,
  ownerId: string,
  image: string,
  readChangedFiles?: 'box-tar' | 'archive',
  runtime = '',
): Promise<ScenarioResult> {
  const folder = makeWorkspace();
  const settings = testSettings({ image, maxFileSizeMiB: 1, idleTimeoutMinutes: 0, runtime });
  const session = await BoxSession.open({ engine, settings, folder, ownerId, env: [], log: () => undefined, readChangedFiles }, () => undefined);
  const result: ScenarioResult = { collects: [], catchUps: [] };
  const collect = async () => {
    const changeSet = await session.collect();
    // A copy: marking changes applied edits the session's change set in place.
    result.collects.push({ changeSet: structuredClone(changeSet), info: session.lastCollectInfo && { ...session.lastCollectInfo } });
    return changeSet;
  };
  try {
    const box = session.box;
    // 1. Nothing changed yet.
    await collect();
    // 2. Every kind of change at once.
    await shOk(
      box,
      [
        'cd /workspace',
        'echo more >> a.txt',
        'echo new > added.txt',
        'rm b.txt',
        'mv src/r.txt src/r2.txt',
        'chmod +x tool.sh',
        // Same size, mtime put back: only the stamp's ctime tells.
        'touch -r same.txt /tmp/ref && printf "SAME SIZE\\n" > same.txt && touch -r /tmp/ref same.txt',
        'rm f2d.txt && mkdir f2d.txt && echo x > f2d.txt/x.txt',
        'rm -r d2f && echo now-a-file > d2f',
        'rm f2l.txt && ln -s a.txt f2l.txt',
        'echo spaced > "with space.txt"',
        'printf "nl\\n" > "$(printf "new\\nline.txt")"',
        'ln c.txt c-link.txt',
        'mkfifo pipe',
        'echo s > suid && chmod 4755 suid',
        'head -c 2097152 /dev/zero > big.bin',
      ].join(' && '),
    );
    await collect();
    // 3. Apply everything that can be applied; then change things again between two collects.
    const applied = await session.apply({ approveFlagged: result.collects[1].changeSet.changes.map((c) => c.path) });
    assert.ok(applied.applied.length > 0);
    await collect();
    await shOk(
      box,
      [
        'cd /workspace',
        'echo again >> added.txt',
        'touch -r later.txt /tmp/ref2 && printf "UNTOUCHED UNTIL AFTER THE APPLY\\n" > later.txt && touch -r /tmp/ref2 later.txt',
        'echo bulk-changed > bulk/file-7.txt',
      ].join(' && '),
    );
    await collect();
    // 4. Catch-up: a host edit the box did not touch is sent; one the box changed too is a conflict.
    writeFileSync(path.join(folder, 'host.txt'), 'edited on the host, once\n');
    await shOk(box, 'echo box-side > /workspace/both.txt');
    writeFileSync(path.join(folder, 'both.txt'), 'host side\n');
    result.catchUps.push(await session.catchUp());
    await collect();
    // A later host edit of a path the catch-up just sent: its stamp was dropped, the check still answers.
    writeFileSync(path.join(folder, 'host.txt'), 'edited on the host, twice\n');
    result.catchUps.push(await session.catchUp());
    await collect();
  } finally {
    await session.remove().catch(() => undefined);
    rmSync(folder, { recursive: true, force: true });
  }
  return result;
}

suiteUnderEachRuntime('collect through box stamps (real engine, node and busybox images)', function (runtime) {
  this.timeout(300_000);
  let engine: DockerEngine;
  const ownerId = testOwnerId(`stamped-collect${runtime.setting}`);
  let stamped: ScenarioResult;
  let stampedByArchive: ScenarioResult;
  let full: ScenarioResult;

  suiteSetup(async () => {
    engine = await connectTestEngine();
    [stamped, stampedByArchive, full] = await Promise.all([
      runScenario(engine, ownerId, TEST_IMAGES.node, undefined, runtime.setting),
      runScenario(engine, ownerId, TEST_IMAGES.node, 'archive', runtime.setting),
      runScenario(engine, ownerId, TEST_IMAGES.busybox, undefined, runtime.setting),
    ]);
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
  });

  test('the node image (GNU find) collects through stamps, reading only files that may have changed; busybox reads the whole tree', () => {
    assert.deepEqual(
      stamped.collects.map((c) => c.info?.strategy),
      stamped.collects.map(() => 'stamps'),
    );
    assert.deepEqual(
      full.collects.map((c) => c.info?.strategy),
      full.collects.map(() => 'full'),
    );
    // Right after the mirror every file is stamped: the first collect reads nothing.
    assert.equal(stamped.collects[0].info?.fetched, 0);
    // After the edits: only the changed or new regular files are read (not the 40 bulk files).
    const afterEdits = stamped.collects[1].info!;
    assert.ok(afterEdits.fetched > 0 && afterEdits.fetched <= 12, `fetched ${afterEdits.fetched}`);
    // Read with one tar in the box (the image's busybox tar), names with spaces and newlines included.
    assert.equal(afterEdits.fetchedInBox, afterEdits.fetched);
    assert.ok(afterEdits.knownStamps >= 40, `known stamps ${afterEdits.knownStamps}`);
  });

  test('every collect gives the same change set with stamps (files read by the box tar, or one engine archive each) as with the whole archive', () => {
    for (const [name, run] of [
      ['box tar', stamped],
      ['one archive each', stampedByArchive],
    ] as const) {
      assert.equal(run.collects.length, full.collects.length);
      for (let i = 0; i < run.collects.length; i++) {
        const gvisor = runtime.gvisor;
        assert.deepEqual(comparable(run.collects[i].changeSet, gvisor), comparable(full.collects[i].changeSet, gvisor), `${name}: collect ${i + 1}`);
      }
      assert.deepEqual(run.catchUps, full.catchUps, name);
    }
    assert.deepEqual(
      stampedByArchive.collects.map((c) => [c.info?.strategy, c.info?.fetchedInBox ?? 0]),
      stampedByArchive.collects.map(() => ['stamps', 0]),
    );
  });

  test('edits, adds, deletes, renames, chmod +x, type changes, odd names and a same-size rewrite with its mtime put back are all found', () => {
    assert.deepEqual(stamped.collects[0].changeSet.changes, []);
    const changes = summary(stamped.collects[1].changeSet);
    for (const expected of [
      'modified file a.txt',
      'added file added.txt',
      'deleted file b.txt',
      'renamed file src/r.txt -> src/r2.txt',
      'mode file tool.sh',
      'modified file same.txt',
      'modified directory f2d.txt',
      'added file f2d.txt/x.txt',
      'modified file d2f',
      'deleted file d2f/inside.txt',
      'modified symlink f2l.txt',
      'added file with space.txt',
      'added file new\nline.txt',
    ]) {
      assert.ok(changes.includes(expected), `missing "${JSON.stringify(expected)}" in ${JSON.stringify(changes, null, 1)}`);
    }
  });

  test('a hard link, a fifo, a setuid file and an oversized file are refused', () => {
    const refused = stamped.collects[1].changeSet.refused.map((r) => `${r.reason} ${r.path}`);
    assert.ok(refused.includes('fifo pipe'), JSON.stringify(refused));
    assert.ok(refused.includes('setuid-setgid suid'), JSON.stringify(refused));
    assert.ok(refused.includes('too-large big.bin'), JSON.stringify(refused));
    assert.equal(refused.filter((r) => r.startsWith('hard-link ')).length, 1, JSON.stringify(refused));
  });

  test('after an apply, the next collect shows only what is still refused; changes made after it are found, the touch -d one too', () => {
    assert.deepEqual(stamped.collects[2].changeSet.changes, []);
    assert.deepEqual(summary(stamped.collects[3].changeSet), ['modified file added.txt', 'modified file bulk/file-7.txt', 'modified file later.txt']);
  });

  test('catch-up sends a host edit the box left alone and reports one the box changed too as a conflict', () => {
    assert.deepEqual(stamped.catchUps[0], { sent: ['host.txt'], conflicts: ['both.txt'] });
    // both.txt stays a conflict until it is settled.
    assert.deepEqual(stamped.catchUps[1], { sent: ['host.txt'], conflicts: ['both.txt'] });
    assert.deepEqual(summary(stamped.collects[4].changeSet), [
      'modified file added.txt',
      'modified file both.txt',
      'modified file bulk/file-7.txt',
      'modified file later.txt',
    ]);
  });
});

suite('collect through box stamps falls back to the whole archive when the listing cannot see everything (real engine)', function () {
  this.timeout(120_000);
  let engine: DockerEngine;
  const ownerId = testOwnerId('stamped-fallback');

  suiteSetup(async () => {
    engine = await connectTestEngine();
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
  });

  test('a directory the box made unreadable makes find fail: that collect reads the whole tree and still finds the file inside; the next, readable again, uses stamps', async () => {
    const folder = makeWorkspace();
    const session = await BoxSession.open(
      { engine, settings: testSettings({ image: TEST_IMAGES.node, idleTimeoutMinutes: 0 }), folder, ownerId, env: [], log: () => undefined },
      () => undefined,
    );
    try {
      await shOk(session.box, 'cd /workspace && mkdir locked && echo hidden > locked/inside.txt && echo more >> a.txt && chmod 000 locked');
      const locked = await session.collect();
      assert.equal(session.lastCollectInfo?.strategy, 'full');
      assert.equal(session.lastCollectInfo?.reason, 'incomplete listing');
      // The new directory's own mode (000, not the 755 that creating its file would give it) is carried.
      assert.deepEqual(summary(locked), ['modified file a.txt', 'added directory locked', 'added file locked/inside.txt']);
      await shOk(session.box, 'chmod 755 /workspace/locked');
      const open = await session.collect();
      assert.equal(session.lastCollectInfo?.strategy, 'stamps');
      assert.deepEqual(summary(open), ['modified file a.txt', 'added file locked/inside.txt']);
    } finally {
      await session.remove().catch(() => undefined);
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
