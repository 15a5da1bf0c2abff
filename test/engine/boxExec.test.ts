// Runs in a real box: streaming, stdin, exit codes, cwd guard, output cap, timeout and cancellation that kill
// the whole process tree, archives in and out. Each behaviour is checked on busybox ash and on bash.
import * as assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { Box } from '../../src/core/box/box';
import { truncationMarker } from '../../src/core/box/boxRun';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { SandboxError } from '../../src/core/errors';
import { connectTestEngine, removeEverythingOwnedBy, sh, shOk, testOwnerId, testSettings, TEST_IMAGES } from './engineHarness';
import { suiteUnderEachRuntime } from './gvisorRuntimes';

interface Flavour {
  label: string;
  image: string;
  workspaceVolume: 'tmpfs' | 'disk';
  box?: Box;
}

const flavours: Flavour[] = [
  { label: 'busybox ash, tmpfs workspace', image: TEST_IMAGES.busybox, workspaceVolume: 'tmpfs' },
  { label: 'bash, disk workspace', image: TEST_IMAGES.node, workspaceVolume: 'disk' },
];

/** `ps` lines (busybox ps works in both images) mentioning a marker sleep duration. */
async function sleepersIn(box: Box, pattern: RegExp): Promise<string[]> {
  const ps = await shOk(box, 'ps -o pid,pgid,stat,args');
  return ps.split('\n').filter((line) => pattern.test(line) && !/\bps\b/.test(line));
}

/** Starts processes in every way a command tree can: children, orphaned grandchildren, a new session. */
const TREE_COMMAND = (base: number): string =>
  `sleep ${base}1 & (sleep ${base}2 &) ; setsid sleep ${base}3 & sh -c "sleep ${base}4 & wait" & echo started; wait`;

async function waitForTree(box: Box, base: number): Promise<void> {
  // All four sleeps exist before the run is stopped, so the test proves they were killed, not never born.
  for (let i = 0; i < 50; i++) {
    if ((await sleepersIn(box, new RegExp(`\\bsleep ${base}[1-4]$`))).length === 4) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail('the command tree did not start');
}

suiteUnderEachRuntime('engine: box exec', (runtime) => {
  const ownerId = testOwnerId(`exec${runtime.setting}`);
  let engine: DockerEngine | undefined;

  suiteSetup(async () => {
    engine = await connectTestEngine();
    await Promise.all(
      flavours.map(async (f) => {
        f.box = await Box.create(
          engine!,
          testSettings({ image: f.image, workspaceVolume: f.workspaceVolume, pidsLimit: 256, runtime: runtime.setting }),
          {
            folder: `/tmp/agent-sandbox-exec-${f.workspaceVolume}`,
            ownerId,
          },
        );
      }),
    );
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
  });

  for (const flavour of flavours) {
    suite(flavour.label, () => {
      const box = (): Box => flavour.box!;

      test('/workspace belongs to uid 1000 and is writable', async () => {
        assert.equal((await shOk(box(), 'stat -c %u:%g /workspace')).trim(), '1000:1000');
        assert.equal(await shOk(box(), 'echo ok > /workspace/probe && cat /workspace/probe && rm /workspace/probe'), 'ok\n');
        const fsType = (await shOk(box(), 'awk \'$2 == "/workspace" { print $3 }\' /proc/mounts')).trim();
        // Under gVisor every volume reaches the box through its gofer (9p), whatever backs it on the host.
        if (runtime.gvisor) assert.equal(fsType, '9p');
        else assert.equal(fsType === 'tmpfs', flavour.workspaceVolume === 'tmpfs', `file system ${fsType}`);
      });

      test('streams stdout and stderr separately while the command runs', async () => {
        const events: { stream: string; text: string; at: number }[] = [];
        const started = Date.now();
        const result = await sh(box(), 'echo out1; echo err1 >&2; sleep 1; echo out2; echo err2 >&2', {
          onOutput: (stream, text) => events.push({ stream, text, at: Date.now() - started }),
        });
        assert.equal(result.outcome, 'exited');
        assert.equal(result.exitCode, 0);
        assert.equal(result.stdout, 'out1\nout2\n');
        assert.equal(result.stderr, 'err1\nerr2\n');
        assert.equal(result.truncated, false);
        const first = events.find((e) => e.text.includes('out1'));
        assert.ok(first, 'out1 was streamed');
        assert.ok(first.at < result.durationMs - 700, `out1 arrived at ${first.at} ms of ${result.durationMs} ms: not streamed live`);
        assert.equal(
          events
            .filter((e) => e.stream === 'stdout')
            .map((e) => e.text)
            .join(''),
          'out1\nout2\n',
        );
        assert.ok(result.durationMs >= 1000);
      });

      test('stdin is written, then closed', async () => {
        const result = await sh(box(), 'cat; echo "[eof]"', { stdin: 'hello\nworld' });
        assert.equal(result.stdout, 'hello\nworld[eof]\n');
        const big = Buffer.alloc(1024 * 1024 + 7, 0x61);
        assert.equal((await shOk(box(), 'wc -c', { stdin: big })).trim(), String(big.length));
        assert.equal(await shOk(box(), 'cat; echo done', { stdin: '' }), 'done\n');
      });

      test('without stdin, a reader gets end-of-file at once', async () => {
        const result = await sh(box(), 'cat; echo done', { timeoutMs: 10_000 });
        assert.equal(result.outcome, 'exited');
        assert.equal(result.stdout, 'done\n');
      });

      test('exit codes come from the engine', async () => {
        assert.equal((await sh(box(), 'exit 3')).exitCode, 3);
        assert.equal((await sh(box(), 'false')).exitCode, 1);
        const killed = await sh(box(), 'kill -TERM $$');
        assert.equal(killed.exitCode, 143);
        assert.equal(killed.outcome, 'exited');
        const missing = await sh(box(), 'no-such-command-xyz');
        assert.equal(missing.exitCode, 127);
        assert.match(missing.stderr, /no-such-command-xyz/);
      });

      test('per-run environment and cwd inside /workspace', async () => {
        await shOk(box(), 'mkdir -p /workspace/sub/dir');
        assert.equal((await shOk(box(), 'pwd', { cwd: 'sub/dir' })).trim(), '/workspace/sub/dir');
        assert.equal((await shOk(box(), 'pwd', { cwd: '/workspace/sub' })).trim(), '/workspace/sub');
        assert.equal((await shOk(box(), 'echo "$RUN_VAR"', { env: ['RUN_VAR=x y'] })).trim(), 'x y');
        await shOk(box(), 'rm -r /workspace/sub');
      });

      test('a cwd that leaves /workspace is refused before anything runs', async () => {
        for (const cwd of ['..', '../etc', '/etc', 'a/../../x', '/workspace/../tmp']) {
          await assert.rejects(
            box().exec({ command: 'echo ran', cwd, outputLimitBytes: 1024 }),
            (error: unknown) => SandboxError.is(error, 'path-outside-workspace'),
            `cwd ${cwd} must be refused`,
          );
        }
      });

      test('output beyond the cap is cut with a visible marker; the command still completes', async () => {
        const limit = 1024;
        const seen: string[] = [];
        const result = await box().exec({
          command: 'head -c 5000 /dev/zero | tr "\\0" x; echo finished >&2',
          outputLimitBytes: limit,
          onOutput: (stream, text) => stream === 'stdout' && seen.push(text),
        });
        assert.equal(result.exitCode, 0);
        assert.equal(result.truncated, true);
        assert.equal(result.stdout, 'x'.repeat(limit) + truncationMarker(limit));
        assert.equal(result.stdout.endsWith('\n[agent-sandbox: output truncated after 1 KiB]\n'), true);
        assert.equal(seen.join(''), result.stdout, 'streamed output matches the kept output, marker included');
        assert.equal(result.stderr, 'finished\n');
        // A multi-byte character cut at the limit is dropped, not garbled.
        const utf8 = await box().exec({ command: 'i=0; while [ $i -lt 100 ]; do printf "\\303\\251"; i=$((i+1)); done', outputLimitBytes: 11 });
        assert.equal(utf8.stdout, 'é'.repeat(5) + truncationMarker(11));
      });

      test('a command that leaves a background process still returns when it exits', async () => {
        const result = await sh(box(), 'sleep 30 & echo back', { timeoutMs: 20_000 });
        assert.equal(result.outcome, 'exited');
        assert.equal(result.exitCode, 0);
        assert.equal(result.stdout, 'back\n');
        assert.ok(result.durationMs < 10_000, `took ${result.durationMs} ms`);
        await shOk(box(), `for p in $(ps -o pid,args | awk '$2 == "sleep" && $3 == "30" {print $1}'); do kill $p; done`);
        assert.deepEqual(await sleepersIn(box(), /sleep 30$/), []);
      });

      test('killing every sleep or signalling the init does not stop the box', async () => {
        const result = await sh(box(), 'killall sleep; kill -TERM 1; kill -INT 1; kill -HUP 1; sleep 1; echo survived');
        assert.equal(result.stdout, 'survived\n');
        assert.equal(await box().isRunning(), true);
        assert.equal(await shOk(box(), 'echo next'), 'next\n');
      });

      test('a timeout kills the whole process tree of that run only', async () => {
        const base = flavour.workspaceVolume === 'tmpfs' ? 110 : 120;
        // A neighbour run with the same tree shape must survive the other run's timeout.
        const neighbourControl = new AbortController();
        const neighbour = sh(box(), TREE_COMMAND(base), { timeoutMs: 60_000, signal: neighbourControl.signal });
        await waitForTree(box(), base);
        const base2 = base + 5;
        const timed = await sh(box(), TREE_COMMAND(base2), { timeoutMs: 2_000 });
        assert.equal(timed.outcome, 'timeout');
        assert.equal(timed.exitCode, null);
        assert.equal(timed.stdout, 'started\n');
        assert.ok(timed.durationMs >= 2_000 && timed.durationMs < 15_000, `took ${timed.durationMs} ms`);
        assert.deepEqual(await sleepersIn(box(), new RegExp(`\\bsleep ${base2}[1-4]$`)), [], 'no process of the timed-out run survives');
        assert.equal((await sleepersIn(box(), new RegExp(`\\bsleep ${base}[1-4]$`))).length, 4, 'the neighbour run is left alone');
        neighbourControl.abort();
        assert.equal((await neighbour).outcome, 'cancelled');
        assert.deepEqual(await sleepersIn(box(), new RegExp(`\\bsleep ${base}[1-4]$`)), []);
      });

      test('cancellation kills the whole process tree', async () => {
        const base = flavour.workspaceVolume === 'tmpfs' ? 210 : 220;
        const controller = new AbortController();
        let seenStarted = false;
        const run = box().exec({
          command: TREE_COMMAND(base),
          outputLimitBytes: 4096,
          signal: controller.signal,
          onOutput: (_stream, text) => {
            seenStarted ||= text.includes('started');
          },
        });
        await waitForTree(box(), base);
        assert.ok(seenStarted);
        controller.abort();
        const result = await run;
        assert.equal(result.outcome, 'cancelled');
        assert.equal(result.exitCode, null);
        assert.deepEqual(await sleepersIn(box(), new RegExp(`\\bsleep ${base}[1-4]$`)), []);
      });

      test('a signal already aborted runs nothing', async () => {
        const controller = new AbortController();
        controller.abort();
        const result = await box().exec({ command: 'touch /workspace/ran', outputLimitBytes: 10, signal: controller.signal });
        assert.equal(result.outcome, 'cancelled');
        assert.equal((await sh(box(), '[ -e /workspace/ran ]')).exitCode, 1);
      });

      test('archives go in and come out through the archive API', async () => {
        const pack = tarStream.pack();
        pack.entry({ name: 'dir/', type: 'directory', mode: 0o755, uid: 1000, gid: 1000 });
        pack.entry({ name: 'dir/a.txt', mode: 0o644, uid: 1000, gid: 1000 }, 'hello archive\n');
        pack.finalize();
        await box().putArchive(Readable.from(pack as unknown as AsyncIterable<Buffer>), { path: '.' });
        assert.equal(await shOk(box(), 'cat /workspace/dir/a.txt'), 'hello archive\n');
        assert.equal((await shOk(box(), 'stat -c %u /workspace/dir/a.txt')).trim(), '1000');
        await shOk(box(), 'echo changed > /workspace/dir/b.txt');
        const tar = await box().getArchive('dir');
        const files = new Map<string, string>();
        const extract = tarStream.extract();
        await new Promise<void>((resolve, reject) => {
          extract.on('entry', (header, stream, next) => {
            const chunks: Buffer[] = [];
            stream.on('data', (c: unknown) => chunks.push(c as Buffer));
            stream.on('end', () => {
              files.set(header.name, Buffer.concat(chunks).toString('utf8'));
              next();
            });
          });
          extract.on('finish', resolve);
          extract.on('error', reject);
          tar.pipe(extract);
        });
        assert.equal(files.get('dir/a.txt'), 'hello archive\n');
        assert.equal(files.get('dir/b.txt'), 'changed\n');
        await assert.rejects(box().getArchive('../etc'), (e: unknown) => SandboxError.is(e, 'path-outside-workspace'));
        await assert.rejects(box().putArchive(Readable.from([]), { path: '/etc' }), (e: unknown) => SandboxError.is(e, 'path-outside-workspace'));
        await shOk(box(), 'rm -r /workspace/dir');
      });
    });
  }
});
