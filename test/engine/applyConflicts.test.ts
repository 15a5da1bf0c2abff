import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { BoxSession } from '../../src/core/session/boxSession';
import { connectTestEngine, removeEverythingOwnedBy, testOwnerId, testSettings } from './engineHarness';

/** Design.md invariant 6 against a real box: a host edit is never overwritten, even when its stat looks unchanged. */
suite('engine: apply never overwrites a host edit whose mtime was put back (real box)', function () {
  this.timeout(120_000);
  let engine: DockerEngine | undefined;
  const ownerId = testOwnerId('apply-conflicts');
  let folder: string;
  let scratch: string;
  let session: BoxSession;

  const run = async (command: string) => {
    const result = await session.exec({ command, runId: `r${Date.now()}` }, () => undefined);
    assert.equal(result.exitCode, 0, result.stderr);
    return result;
  };
  /** A same-size edit with the old mtime put back, as `touch -r` / `cp -p` / `rsync -t` leave it. */
  const editKeepingMtime = async (relPath: string, content: string) => {
    const absolute = path.join(folder, relPath);
    execFileSync('cp', ['-p', absolute, path.join(scratch, 'ref')]);
    // A later ctime tick than the scan saw.
    await new Promise((resolve) => setTimeout(resolve, 20));
    writeFileSync(absolute, content);
    execFileSync('touch', ['-r', path.join(scratch, 'ref'), absolute]);
  };

  suiteSetup(async () => {
    engine = await connectTestEngine();
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-apply-conflicts-'));
    scratch = mkdtempSync(path.join(os.tmpdir(), 'as-apply-scratch-'));
    writeFileSync(path.join(folder, 'caught.txt'), 'host one\n');
    writeFileSync(path.join(folder, 'late.txt'), 'host two\n');
    writeFileSync(path.join(folder, 'free.txt'), 'free\n');
    session = await BoxSession.open({ engine, settings: testSettings(), folder, ownerId, env: [], log: () => undefined }, () => undefined);
  });

  suiteTeardown(async () => {
    await session?.remove().catch(() => undefined);
    await removeEverythingOwnedBy(engine, ownerId);
    rmSync(folder, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  test('the catch-up sends such an edit; one made after collect is a conflict and stays', async () => {
    await run('true');
    await editKeepingMtime('caught.txt', 'HOST ONE\n');
    const caught = await run('cat caught.txt');
    assert.equal(caught.stdout, 'HOST ONE\n', 'the box sees the developer edit');
    assert.deepEqual(caught.caughtUp, ['caught.txt']);

    await run('echo box > late.txt && echo box > free.txt');
    const changeSet = await session.collect();
    assert.deepEqual(
      changeSet.changes.map((c) => c.path),
      ['free.txt', 'late.txt'],
    );
    await editKeepingMtime('late.txt', 'HOST TWO\n');

    const plan = await session.planApply({});
    assert.deepEqual(
      plan.conflicts.map((c) => c.path),
      ['late.txt'],
    );
    const result = await session.apply({});
    assert.deepEqual(result.applied, ['free.txt']);
    assert.deepEqual(result.conflicts, ['late.txt']);
    assert.equal(readFileSync(path.join(folder, 'late.txt'), 'utf8'), 'HOST TWO\n', 'the developer edit is not overwritten');
    assert.equal(readFileSync(path.join(folder, 'free.txt'), 'utf8'), 'box\n');

    // Taking the box's version replaces the developer's file on purpose.
    const taken = await session.apply({ paths: ['late.txt'], takeBoxVersion: ['late.txt'] });
    assert.deepEqual(taken.applied, ['late.txt']);
    assert.equal(readFileSync(path.join(folder, 'late.txt'), 'utf8'), 'box\n');
  });

  test('hard link: a box mode change of a file hard-linked to an outside file is a conflict, and the outside file keeps 600', async () => {
    writeFileSync(path.join(scratch, 'victim.txt'), 'outside\n', { mode: 0o600 });
    chmodSync(path.join(scratch, 'victim.txt'), 0o600);
    linkSync(path.join(scratch, 'victim.txt'), path.join(folder, 'linked.txt'));
    await run('chmod 666 linked.txt');
    const changeSet = await session.collect();
    const change = changeSet.changes.find((c) => c.path === 'linked.txt');
    assert.equal(change?.kind, 'mode');
    assert.deepEqual(change?.flags, ['others-writable']);
    const result = await session.apply({ paths: ['linked.txt'], approveFlagged: ['linked.txt'] });
    assert.deepEqual(result.conflicts, ['linked.txt']);
    assert.deepEqual(result.applied, []);
    assert.equal(statSync(path.join(scratch, 'victim.txt')).mode & 0o777, 0o600);
  });
});
