import * as assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { BoxSession } from '../../src/core/session/boxSession';
import { connectTestEngine, removeEverythingOwnedBy, testOwnerId, testSettings } from './engineHarness';
import { suiteUnderEachRuntime } from './gvisorRuntimes';

/** Catch-up before each run skips the workspace rescan when no file event came since the last one. */
suiteUnderEachRuntime('engine: catch-up skips the rescan while the workspace is unchanged (real file events, real box)', function (runtime) {
  this.timeout(120_000);
  let engine: DockerEngine | undefined;
  const ownerId = testOwnerId(`catchup-watch${runtime.setting}`);
  let folder: string;
  let session: BoxSession;

  const run = async (command: string) => {
    const result = await session.exec({ command, runId: `r${Date.now()}` }, () => undefined);
    assert.equal(result.exitCode, 0, result.stderr);
    return result;
  };
  /** File events arrive asynchronously: once one has come, the next catch-up rescans. */
  const eventually = async (check: () => Promise<boolean>) => {
    for (let i = 0; i < 50; i++) {
      if (await check()) return true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  };

  suiteSetup(async () => {
    engine = await connectTestEngine();
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-watch-'));
    mkdirSync(path.join(folder, 'src'));
    writeFileSync(path.join(folder, 'src', 'a.txt'), 'one\n');
    session = await BoxSession.open(
      { engine, settings: testSettings({ runtime: runtime.setting }), folder, ownerId, env: [], log: () => undefined },
      () => undefined,
    );
  });

  suiteTeardown(async () => {
    await session?.remove().catch(() => undefined);
    await removeEverythingOwnedBy(engine, ownerId);
    rmSync(folder, { recursive: true, force: true });
  });

  test('runs with no host change in between do not rescan; a host edit is rescanned and reaches the box', async () => {
    await run('true');
    const afterFirst = session.hostScans;
    await run('true');
    await run('true');
    assert.equal(session.hostScans, afterFirst, 'unchanged workspace: no rescan');

    appendFileSync(path.join(folder, 'src', 'a.txt'), 'two\n');
    // The edit must be seen by the very next run even if its event has not been handled yet.
    const result = await run('cat src/a.txt');
    assert.equal(result.stdout, 'one\ntwo\n');
    assert.equal(result.caughtUp.join(), 'src/a.txt');
    assert.ok(session.hostScans > afterFirst, 'the edit caused a rescan');

    // A new directory with a file in it, then nothing: rescanned once, then skipped again.
    mkdirSync(path.join(folder, 'fresh'));
    writeFileSync(path.join(folder, 'fresh', 'b.txt'), 'bee\n');
    assert.equal((await run('cat fresh/b.txt')).stdout, 'bee\n');
    const settled = session.hostScans;
    assert.ok(await eventually(async () => (await run('true'), session.hostScans === settled)), 'no rescan once nothing changes');
    writeFileSync(path.join(folder, 'fresh', 'b.txt'), 'bee 2\n');
    assert.equal((await run('cat fresh/b.txt')).stdout, 'bee 2\n', 'a change inside the new directory is seen');
  });

  test('catch-up lists again only what fired: an edit deep down and a directory replaced on the host reach the box exactly', async () => {
    const listing = 'find nest -type f | LC_ALL=C sort | while read -r f; do printf "%s=%s\\n" "$f" "$(cat "$f")"; done';
    writeFileSync(path.join(folder, 'top.txt'), 'top\n');
    mkdirSync(path.join(folder, 'nest', 'a', 'b'), { recursive: true });
    mkdirSync(path.join(folder, 'nest', 'gone', 'deep'), { recursive: true });
    writeFileSync(path.join(folder, 'nest', 'a', 'b', 'c.txt'), 'c1');
    writeFileSync(path.join(folder, 'nest', 'gone', 'deep', 'old.txt'), 'old');
    await run('true');
    // Settle: once no event comes, catch-ups reuse the last scan (a closed watcher costs one full scan first).
    let settled = session.hostScans;
    assert.ok(await eventually(async () => (await run('true'), session.hostScans === settled || ((settled = session.hostScans), false))));

    const partial = session.partialHostScans;
    appendFileSync(path.join(folder, 'nest', 'a', 'b', 'c.txt'), '+edit');
    renameSync(path.join(folder, 'nest', 'gone'), path.join(folder, 'nest', 'gone.old'));
    mkdirSync(path.join(folder, 'nest', 'gone', 'deep'), { recursive: true });
    writeFileSync(path.join(folder, 'nest', 'gone', 'deep', 'new.txt'), 'new');
    const result = await run(listing);
    assert.equal(result.stdout, 'nest/a/b/c.txt=c1+edit\nnest/gone.old/deep/old.txt=old\nnest/gone/deep/new.txt=new\n');
    assert.equal(session.partialHostScans, partial + 1, 'the catch-up listed only the directories that fired');

    // rm -rf and recreate under the same name, with other contents: the box holds exactly the new ones.
    rmSync(path.join(folder, 'nest', 'gone'), { recursive: true });
    mkdirSync(path.join(folder, 'nest', 'gone'));
    writeFileSync(path.join(folder, 'nest', 'gone', 'again.txt'), 'again');
    const again = await run(listing);
    assert.equal(again.stdout, 'nest/a/b/c.txt=c1+edit\nnest/gone.old/deep/old.txt=old\nnest/gone/again.txt=again\n');
  });
});
