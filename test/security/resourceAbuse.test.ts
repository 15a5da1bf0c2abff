// Issue 7, "resource abuse": a fork bomb, a memory hog, a full /workspace, an output flood, an endless loop
// and cancellation of a process tree that tries to get away — each real, in boxes created as the product
// creates them. The fork bomb and the memory hog get their own small boxes; the rest share one.
import * as assert from 'node:assert/strict';
import { BoxTerminal, findTerminalShell } from '../../src/core/box/boxTerminal';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Box } from '../../src/core/box/box';
import { truncationMarker } from '../../src/core/box/boxRun';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { formatRunResult, workspaceFullNote } from '../../src/core/tools/toolText';
import { EnsureBoxRequest, ExecRequest, ResetRequest } from '../../src/shared/protocol';
import { connectTestEngine, removeEverythingOwnedBy, sh, shOk, testOwnerId, testSettings, TEST_IMAGES } from '../engine/engineHarness';
import { startEngineServer, type EngineServerProcess } from '../builders/engineServer';

/** The pids cgroup's `max` event count (forks refused at the limit) and current count, v1 or v2. */
const PIDS_STATE =
  'd=/sys/fs/cgroup/pids; [ -r $d/pids.events ] || d=/sys/fs/cgroup; ' +
  'while read -r k v; do [ "$k" = max ] && echo "events=$v"; done < $d/pids.events; echo "current=$(cat $d/pids.current)"';

/** Every process's command line in the box, one per line. */
const COMMANDS = 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f" 2>/dev/null; echo; done';

async function pidsState(box: Box): Promise<{ events: number; current: number }> {
  const out = await shOk(box, PIDS_STATE, { timeoutMs: 30_000 });
  return { events: Number(out.match(/events=(\d+)/)?.[1]), current: Number(out.match(/current=(\d+)/)?.[1]) };
}

/**
 * The pids state once the count has come down to `atMost` (killed processes are reaped by the box's init,
 * which takes a moment on a loaded machine; until then an exec may fail to start). Gives up after 40 tries.
 */
async function pidsSettled(box: Box, atMost: number): Promise<{ events: number; current: number }> {
  let last: { events: number; current: number } | undefined;
  for (let i = 0; i < 40; i++) {
    last = await pidsState(box).catch(() => undefined);
    if (last && last.current <= atMost) return last;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return last ?? pidsState(box);
}

/** Retries a trivial command: right after a fork bomb a fork may still have to wait for a free pid. */
async function answers(box: Box): Promise<string> {
  let last = '';
  for (let i = 0; i < 10; i++) {
    const r = await sh(box, 'echo alive', { timeoutMs: 30_000 });
    if (r.outcome === 'exited' && r.exitCode === 0) return r.stdout;
    last = `${r.outcome} ${r.exitCode} ${r.stderr}`;
  }
  return last;
}

suite('security: resource abuse is contained (real engine)', () => {
  const ownerId = testOwnerId('resource-abuse');
  const folder = '/tmp/agent-sandbox-resource-abuse';
  let engine: DockerEngine | undefined;

  suiteSetup(async () => {
    engine = await connectTestEngine();
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
  });

  suite('fork bomb (own box, pidsLimit 64)', () => {
    let bombBox: Box;

    suiteSetup(async () => {
      bombBox = await Box.create(engine!, testSettings({ image: TEST_IMAGES.node, pidsLimit: 64, cpus: 1 }), { folder: `${folder}-bomb`, ownerId });
    });

    test('a fork bomb stops at the pids limit, the run timeout kills all of it, and the box answers afterwards', async () => {
      const before = await pidsState(bombBox);
      const result = await sh(bombBox, 'bomb() { bomb | bomb & }; bomb; sleep 1000', { timeoutMs: 6_000 });
      assert.equal(result.outcome, 'timeout', `${result.outcome} ${result.exitCode} ${result.stderr.slice(0, 300)}`);
      assert.match(result.stderr, /Resource temporarily unavailable/, 'forks were refused at the limit');
      const after = await pidsSettled(bombBox, before.current + 1);
      assert.equal(await answers(bombBox), 'alive\n');
      assert.ok(after.events > before.events, `the pids limit was hit: ${before.events} → ${after.events}`);
      // Everything the bomb made is gone: only init, the keep-alive loop, its sleep and this probe remain.
      assert.ok(after.current <= before.current + 1, `pids back to normal: ${before.current} → ${after.current}`);
      const again = await pidsState(bombBox);
      assert.equal(again.events, after.events, 'nothing forks at the limit any more');
    });

    test('a fork bomb whose own process exits at once is killed when its run ends (it filled the pids limit), and the result says so; the box answers', async () => {
      const before = await pidsSettled(bombBox, 5);
      // A bomb whose processes stay (each sleeps after forking), started in the background of a run that exits.
      const result = await sh(bombBox, 'bomb() { bomb | bomb & sleep 600; }; bomb & exit 0', { timeoutMs: 60_000 });
      assert.equal(result.outcome, 'exited', 'the run ends with its own process, like a shell');
      assert.equal(result.leftoversKilled, true, 'the processes it left filled the pids limit and were killed');
      const after = await pidsSettled(bombBox, 5);
      assert.ok(after.current <= before.current + 1, `pids back to normal: ${before.current} → ${after.current}`);
      assert.equal(await answers(bombBox), 'alive\n');
    });

    test('a fork bomb typed into a sandboxed terminal is killed whole when the terminal closes; the box answers', async () => {
      const before = await pidsSettled(bombBox, 5);
      let output = '';
      const terminal = await BoxTerminal.start(engine!, bombBox.containerId, {
        cols: 80,
        rows: 24,
        shell: await findTerminalShell(engine!, bombBox.containerId),
        onData: (data) => (output += data),
        onExit: () => undefined,
      });
      terminal.write('bomb() { bomb | bomb & sleep 600; }; bomb & echo bomb-started\r');
      for (const until = Date.now() + 20_000; !/bomb-started/.test(output) && Date.now() < until;) await new Promise((r) => setTimeout(r, 100));
      assert.match(output, /bomb-started/);
      // The bomb fills the limit (a probe may not even start then: that counts as full too).
      let filled = false;
      for (let i = 0; i < 60 && !filled; i++) {
        const now = await pidsState(bombBox).catch(() => undefined);
        filled = now === undefined || now.events > before.events;
        if (!filled) await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(filled, 'the bomb reached the pids limit');
      await terminal.close();
      const after = await pidsSettled(bombBox, 5);
      assert.ok(after.current <= before.current + 1, `pids back to normal after the close: ${before.current} → ${after.current}`);
      assert.equal(await answers(bombBox), 'alive\n');
    });

    test('control: a background process that stays within the limit outlives its run and is not killed', async () => {
      const result = await sh(bombBox, '(sleep 300 &) ; echo started', { timeoutMs: 30_000 });
      assert.equal(result.outcome, 'exited');
      assert.equal(result.leftoversKilled, undefined);
      const ps = await sh(bombBox, 'ps -o args', { timeoutMs: 30_000 });
      assert.match(ps.stdout, /sleep 300/);
      await sh(bombBox, 'pkill -f "sleep 300" || killall sleep; true', { timeoutMs: 30_000 });
    });
  });

  test('a memory hog is OOM-killed at the memory limit and reported as outcome oom; the box answers afterwards', async () => {
    const hogBox = await Box.create(engine!, testSettings({ image: TEST_IMAGES.node, memoryMiB: 96 }), { folder: `${folder}-hog`, ownerId });
    // Buffers live outside the V8 heap, so the cgroup limit, not V8's, is what stops this.
    const result = await sh(hogBox, 'node -e "const a = []; for (;;) a.push(Buffer.alloc(8 << 20, 1))"', { timeoutMs: 60_000 });
    assert.equal(result.outcome, 'oom', `outcome ${result.outcome}, exit ${result.exitCode}, stderr ${result.stderr.slice(0, 300)}`);
    assert.equal(result.exitCode, 137);
    assert.equal(await answers(hogBox), 'alive\n');
    const peak = await shOk(hogBox, 'cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.peak');
    assert.ok(Number(peak) <= 96 * 1024 * 1024, `peak ${peak} within the limit`);
  });

  test('filling /workspace stops at the volume size with ENOSPC, and the run result says /workspace is full and names agentSandbox.workspaceSizeMiB', async () => {
    const serverFolder = mkdtempSync(path.join(os.tmpdir(), 'as-abuse-full-'));
    let server: EngineServerProcess | undefined;
    try {
      server = await startEngineServer({ box: { image: TEST_IMAGES.busybox, memoryMiB: 128, workspaceSizeMiB: 16, idleTimeoutMinutes: 0 } });
      const { connection } = server;
      await connection.sendRequest(EnsureBoxRequest.type, { folder: serverFolder });
      const full = await connection.sendRequest(ExecRequest.type, { folder: serverFolder, command: 'dd if=/dev/zero of=big bs=1M count=40' });
      assert.equal(full.outcome, 'exited');
      assert.notEqual(full.exitCode, 0);
      assert.match(full.stderr, /No space left on device/);
      assert.ok(full.workspaceFull, 'the result reports the full workspace');
      assert.equal(full.workspaceFull.volume, 'tmpfs');
      assert.equal(full.workspaceFull.sizeKiB, 16 * 1024);
      assert.ok(full.workspaceFull.availableKiB < 1024, `free: ${full.workspaceFull.availableKiB} KiB`);
      const size = await connection.sendRequest(ExecRequest.type, { folder: serverFolder, command: 'stat -c %s big' });
      assert.ok(Number(size.stdout) <= 16 * 1024 * 1024, `the file stopped at the volume size: ${size.stdout}`);
      const note = workspaceFullNote(full) ?? '';
      assert.match(note, /\/workspace in the box is full/);
      assert.match(note, /No space left on device/);
      assert.match(note, /agentSandbox\.workspaceSizeMiB/);
      assert.ok(formatRunResult('dd', full, { changed: [], settled: [] }, []).includes(note), 'the agent tool result carries the note');
      // Control: a failure with space left carries no such note.
      const other = await connection.sendRequest(ExecRequest.type, { folder: serverFolder, command: 'rm big; exit 3' });
      assert.equal(other.exitCode, 3);
      assert.equal(other.workspaceFull, undefined);
    } finally {
      await server?.connection.sendRequest(ResetRequest.type, {}).catch(() => undefined);
      server?.connection.dispose();
      server?.process.kill();
      rmSync(serverFolder, { recursive: true, force: true });
    }
  });

  suite('shared box (node image)', () => {
    let box: Box;
    const limitBytes = 64 * 1024;

    suiteSetup(async () => {
      box = await Box.create(engine!, testSettings({ image: TEST_IMAGES.node }), { folder: `${folder}-shared`, ownerId });
    });

    test('an output flood on stdout and stderr is capped at outputLimitKiB with the marker, and the timeout ends the run', async () => {
      const result = await box.exec({ command: 'yes >&2 & yes', outputLimitBytes: limitBytes, timeoutMs: 5_000 });
      assert.equal(result.outcome, 'timeout');
      assert.equal(result.truncated, true);
      const capped = 'y\n'.repeat(limitBytes / 2) + truncationMarker(limitBytes);
      assert.equal(result.stdout, capped);
      assert.equal(result.stderr, capped);
      assert.equal(await shOk(box, `${COMMANDS} | grep -c "^yes" || true`), '0\n', 'no yes process is left');
    });

    test('an output flood that ends by itself is capped with the marker, and the run ends with it (stderr after the flood still arrives)', async () => {
      const result = await box.exec({ command: 'yes | head -c 50000000; echo flood-done >&2', outputLimitBytes: limitBytes, timeoutMs: 120_000 });
      assert.equal(result.outcome, 'exited');
      assert.equal(result.exitCode, 0);
      assert.equal(result.stdout, 'y\n'.repeat(limitBytes / 2) + truncationMarker(limitBytes));
      assert.equal(result.stderr, 'flood-done\n');
    });

    test('an endless loop that ignores signals hits the timeout (outcome timeout) and is gone afterwards', async () => {
      const result = await sh(box, 'echo "$$"; trap "" TERM INT HUP QUIT; while :; do :; done', { timeoutMs: 3_000 });
      assert.equal(result.outcome, 'timeout');
      assert.equal(result.exitCode, null);
      const pid = result.stdout.trim();
      assert.match(pid, /^\d+$/);
      assert.equal((await sh(box, `[ -e /proc/${pid} ]`)).exitCode, 1, `process ${pid} must be gone`);
    });

    test('cancellation kills the whole process tree: children, grandchildren, setsid and nohup ones, double-forked orphans and a detached Node child', async () => {
      const command = [
        'sleep 1001 &',
        'sh -c "sleep 1002 & wait" &',
        'setsid sh -c "sleep 1003 & wait" &',
        '(setsid sleep 1004 &)',
        "node -e \"require('child_process').spawn('sleep', ['1005'], { detached: true, stdio: 'ignore' }).unref()\"",
        // nohup, as busybox has none: ignores HUP and leaves the terminal's session.
        'sh -c \'trap "" HUP; exec setsid sleep 1006\' >/dev/null 2>&1 &',
        'sh -c \'trap "" TERM HUP INT; sleep 1007 & wait\' &',
        'echo ready',
        'sleep 1000',
      ].join('\n');
      const sleeps = `${COMMANDS} | grep -o "^sleep 100[0-7]" | sort`;
      const all = ['sleep 1000', 'sleep 1001', 'sleep 1002', 'sleep 1003', 'sleep 1004', 'sleep 1005', 'sleep 1006', 'sleep 1007'];
      const controller = new AbortController();
      let seenBeforeCancel = '';
      let ready: () => void = () => undefined;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      const run = box.exec({
        command,
        outputLimitBytes: limitBytes,
        timeoutMs: 120_000,
        signal: controller.signal,
        onOutput: (_stream, text) => {
          if (text.includes('ready')) ready();
        },
      });
      await isReady;
      // Control: every one of them is running before the cancel.
      for (let i = 0; i < 50 && seenBeforeCancel.split('\n').filter(Boolean).length < all.length; i++) {
        seenBeforeCancel = await shOk(box, sleeps);
      }
      assert.deepEqual(seenBeforeCancel.split('\n').filter(Boolean), all);
      controller.abort();
      const result = await run;
      assert.equal(result.outcome, 'cancelled');
      assert.equal(await shOk(box, sleeps), '', 'no process of the run survives');
    });
  });
});
