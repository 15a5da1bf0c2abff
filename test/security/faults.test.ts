// Real faults, not simulated ones: a Docker daemon stopped mid-run (a private second engine, never the shared
// one), a box killed and removed from outside, the engine server SIGKILLed mid-run, and the host disk filling up
// during apply (a real tmpfs). Each case asserts what the client sees, that the workspace is untouched, and that
// the pending review survives. No timing thresholds: every wait is on a condition, with a generous limit.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, promises as fs, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ResponseError } from 'vscode-languageserver-protocol/node';
import {
  ApplyRequest,
  CheckEngineRequest,
  CollectRequest,
  EnsureBoxRequest,
  ExecRequest,
  OrphansRemovedNotification,
  OutputNotification,
  PendingChangesRequest,
  ReadProposalRequest,
  ResetRequest,
  type ChangeSet,
  type ErrorData,
  type ExecResult,
} from '../../src/shared/protocol';
import { LABEL_FOLDER, LABEL_OWNER_PID } from '../../src/core/box/boxConfig';
import { DockerEngine, engineStatusOf } from '../../src/core/docker/dockerEngine';
import { resolveEngineLocation } from '../../src/core/docker/engineLocation';
import { HistoryStore } from '../../src/core/history/historyStore';
import { endedRecord, startedRecord } from '../../src/core/history/runRecords';
import { ReviewStore } from '../../src/core/review/reviewStore';
import { processIsAlive } from '../../src/core/box/orphans';
import { connectTestEngine, TEST_IMAGES } from '../engine/engineHarness';
import { startEngineServer, type EngineServerProcess } from '../builders/engineServer';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const BOX = { image: TEST_IMAGES.busybox, idleTimeoutMinutes: 0 } as const;
/** A run that keeps printing for a minute: long enough to be interrupted, short enough never to matter. */
const LONG_RUN = 'i=0; while [ $i -lt 600 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done';

// ------------------------------------------------------------------------------------------------------------
// Helpers.

interface Server extends EngineServerProcess {
  output: string[];
  orphansRemoved: { containers: string[]; volumes: string[] }[];
  exited: Promise<void>;
}

async function startServer(options: { storagePath: string; env?: NodeJS.ProcessEnv }): Promise<Server> {
  const output: string[] = [];
  const orphansRemoved: Server['orphansRemoved'] = [];
  const started = await startEngineServer({
    box: BOX,
    storagePath: options.storagePath,
    env: options.env,
    beforeListen: (connection) => {
      connection.onNotification(OutputNotification.type, (p: OutputNotification.Params) => {
        output.push(p.text);
      });
      connection.onNotification(OrphansRemovedNotification.type, (p: OrphansRemovedNotification.Params) => {
        orphansRemoved.push(p);
      });
    },
  });
  const exited = new Promise<void>((resolve) => {
    if (started.process.exitCode !== null || started.process.signalCode !== null) resolve();
    else started.process.once('exit', () => resolve());
  });
  return { ...started, output, orphansRemoved, exited };
}

/** SIGKILLs a server and waits until it is reaped (a zombie would still count as alive for orphan removal). */
async function killServer(server: Server | undefined): Promise<void> {
  if (!server) return;
  server.connection.dispose();
  if (server.process.exitCode === null && server.process.signalCode === null) server.process.kill('SIGKILL');
  await withLimit(server.exited, 30_000, 'the killed engine server did not exit');
}

/** Resets (removing its boxes) and stops a server; never throws. */
async function stopServer(server: Server | undefined): Promise<void> {
  if (!server) return;
  if (server.process.exitCode === null && server.process.signalCode === null) {
    try {
      await withLimit(server.connection.sendRequest(ResetRequest.type, {}), 60_000, 'reset');
    } catch {
      // Teardown must not hide the test's own failure; the kill below still runs.
    }
  }
  await killServer(server).catch(() => undefined);
}

function withLimit<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} (no answer within ${ms / 1000} s)`)), ms)));
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function waitFor(condition: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`${what} (waited ${ms / 1000} s)`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Every entry below `root`: files by content hash and mode, directories and links by what they are. */
function snapshot(root: string): Map<string, string> {
  const result = new Map<string, string>();
  const walk = (dir: string, prefix: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const rel = prefix + entry.name;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        result.set(rel, 'dir');
        walk(full, `${rel}/`);
      } else if (entry.isSymbolicLink()) {
        result.set(rel, 'link');
      } else {
        result.set(rel, `file ${sha256(readFileSync(full))}`);
      }
    }
  };
  walk(root, '');
  return result;
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The JSON-RPC error a request failed with, or a failure when it succeeded. */
async function rejection(promise: Promise<unknown>, what: string): Promise<ResponseError<ErrorData>> {
  try {
    const value = await promise;
    assert.fail(`${what} succeeded: ${JSON.stringify(value).slice(0, 300)}`);
  } catch (error) {
    if (error instanceof ResponseError) return error as ResponseError<ErrorData>;
    throw error;
  }
}

function changePaths(changeSet: ChangeSet): string[] {
  return changeSet.changes.map((c) => c.path).sort();
}

function makeWorkspace(prefix: string): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), prefix));
  return folder;
}

async function writeFiles(root: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await fs.writeFile(path.join(root, rel), content);
  }
}

async function containerExists(engine: DockerEngine, id: string): Promise<boolean> {
  try {
    await engine.call('inspecting a test box', (d) => d.getContainer(id).inspect());
    return true;
  } catch (error) {
    if (engineStatusOf(error) === 404) return false;
    throw error;
  }
}

async function volumeExists(engine: DockerEngine, name: string): Promise<boolean> {
  try {
    await engine.call('inspecting a test volume', (d) => d.getVolume(name).inspect());
    return true;
  } catch (error) {
    if (engineStatusOf(error) === 404) return false;
    throw error;
  }
}

// ------------------------------------------------------------------------------------------------------------
// A private second Docker engine, started with scripts/start-docker-engine.sh under its own directory.

interface PrivateEngine {
  dir: string;
  dockerHost: string;
}

function startPrivateEngine(dir: string): PrivateEngine {
  const started = spawnSync('bash', [path.join(repoRoot, 'scripts', 'start-docker-engine.sh')], {
    env: { ...process.env, AGENT_SANDBOX_ENGINE_DIR: dir },
    encoding: 'utf8',
  });
  const match = /export DOCKER_HOST=(\S+)/.exec(started.stdout ?? '');
  if (started.status !== 0 || !match) {
    throw new Error(`Could not start a second Docker engine in ${dir} (exit ${started.status}): ${started.stderr}${started.error ?? ''}`);
  }
  if (match[1] === `unix://${path.join('/tmp', 'agent-sandbox-engine', 'docker.sock')}`) {
    throw new Error('start-docker-engine.sh returned the shared engine instead of a private one');
  }
  return { dir, dockerHost: match[1] };
}

function dockerdPid(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dir, 'docker.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/** Processes whose command line names this engine's directory: its dockerd, containerd and shims, nothing else. */
function processesOf(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmdline.includes(`${dir}/`)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** SIGTERMs the engine's dockerd (what `systemctl stop docker` does) and waits until it has exited. */
async function stopDockerd(dir: string): Promise<void> {
  const pid = dockerdPid(dir);
  if (pid === undefined) throw new Error(`no dockerd pid file in ${dir}`);
  process.kill(pid, 'SIGTERM');
  await waitFor(() => !processIsAlive(pid), 90_000, `dockerd ${pid} did not exit after SIGTERM`);
}

/** Stops everything of a private engine (gently, then by force), unmounts what it left and removes its directory. */
async function destroyPrivateEngine(dir: string): Promise<void> {
  const pid = dockerdPid(dir);
  if (pid !== undefined && processIsAlive(pid)) {
    signal(pid, 'SIGTERM');
    await waitFor(() => !processIsAlive(pid), 60_000, 'dockerd exit').catch(() => signal(pid, 'SIGKILL'));
  }
  for (const other of processesOf(dir)) signal(other, 'SIGKILL');
  await waitFor(() => processesOf(dir).length === 0, 30_000, 'engine processes exit').catch(() => undefined);
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((mountPoint): mountPoint is string => !!mountPoint && (mountPoint === dir || mountPoint.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mounts) spawnSync('umount', ['-l', mountPoint]);
  rmSync(dir, { recursive: true, force: true });
}

// ------------------------------------------------------------------------------------------------------------

// Both cases run on a private second engine: stopping a daemon must never touch the shared one, and no other
// suite's server can remove this suite's orphan box before the server under test does.
suite('faults on a private second Docker engine: the daemon stopped, the engine server killed', function () {
  let engineDir: string;
  let engine: PrivateEngine;
  const servers: Server[] = [];
  const temporaryDirs: string[] = [];
  const tempDir = (prefix: string): string => {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    temporaryDirs.push(dir);
    return dir;
  };

  suiteSetup(function () {
    this.timeout(300_000);
    // A short path: the engine's sockets live under it, and unix socket paths are limited to 108 bytes.
    engineDir = mkdtempSync('/tmp/as-fault-engine-');
    engine = startPrivateEngine(engineDir);
    const images = spawnSync('bash', [path.join(repoRoot, 'scripts', 'build-test-images.sh')], {
      env: { ...process.env, DOCKER_HOST: engine.dockerHost },
      encoding: 'utf8',
    });
    if (images.status !== 0) throw new Error(`Could not build the test images into the second engine: ${images.stderr}`);
  });

  suiteTeardown(async function () {
    this.timeout(300_000);
    for (const server of servers) await stopServer(server);
    if (engineDir) await destroyPrivateEngine(engineDir);
    for (const dir of temporaryDirs) rmSync(dir, { recursive: true, force: true });
  });

  test('a run when the daemon stops ends with an engine error naming the engine, is recorded as failed, leaves the workspace untouched, and keeps the pending review for the next server', async function () {
    this.timeout(600_000);
    const folder = tempDir('as-fault-daemon-');
    const storage = tempDir('as-fault-daemon-storage-');
    await writeFiles(folder, { 'a.txt': 'alpha\n', 'sub/b.txt': 'beta\n' });
    const env = { ...process.env, DOCKER_HOST: engine.dockerHost };
    const first = await startServer({ storagePath: storage, env });
    servers.push(first);

    // A pending change, collected (and so persisted) before the fault.
    const setupRun = await first.connection.sendRequest(ExecRequest.type, { folder, command: 'echo proposed > new.txt && echo more >> a.txt' });
    assert.equal(setupRun.exitCode, 0, setupRun.stderr);
    const collected = await first.connection.sendRequest(CollectRequest.type, { folder });
    assert.deepEqual(changePaths(collected), ['a.txt', 'new.txt']);
    const before = snapshot(folder);

    // A long run, seen running, then the daemon stops under it.
    const startedAt = Date.now();
    const running = first.connection.sendRequest(ExecRequest.type, { folder, command: LONG_RUN, runId: 'run-daemon-stops' });
    const settled = running.then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    await waitFor(() => first.output.some((text) => text.includes('tick')), 60_000, 'the long run printed nothing');
    await stopDockerd(engineDir);

    const ended = await withLimit(settled, 180_000, 'the run request hung after the daemon stopped');
    const socket = engine.dockerHost;
    let historyEnd: { result?: ExecResult; error?: { reason?: string; message: string } };
    if ('result' in ended) {
      const result = ended.result as ExecResult;
      assert.equal(result.outcome, 'engine-error', `outcome ${result.outcome}, exit ${result.exitCode}, error ${result.error}`);
      assert.ok(result.error?.includes(socket), `the error names the engine at ${socket}: ${result.error}`);
      assert.match(result.error ?? '', /is Docker running/);
      assert.match(result.stdout, /tick/, 'the output up to the fault is kept');
      historyEnd = { result };
    } else {
      const error = ended.error as ResponseError<ErrorData>;
      assert.ok(error instanceof ResponseError, `a typed error, got ${String(error)}`);
      assert.ok(['engine-unreachable', 'engine-error'].includes(error.data?.reason ?? ''), `reason ${error.data?.reason}: ${error.message}`);
      assert.ok(error.message.includes(socket), `the error names the engine at ${socket}: ${error.message}`);
      historyEnd = { error: { reason: error.data?.reason, message: error.message } };
    }

    // The run history records it as failed: the host's recorder turns this end into a record through these steps.
    const historyDir = path.join(storage, 'history');
    const history = await HistoryStore.open({ dir: historyDir, maxSizeBytes: 1024 * 1024, maxAgeMs: 86_400_000 });
    const record = startedRecord({ runId: 'run-daemon-stops', folder, source: 'command', command: LONG_RUN, startedAt }, (t) => t);
    await history.put(record);
    await history.put(endedRecord(record, { endedAt: Date.now(), ...historyEnd }, (t) => t));
    await history.flush();
    history.dispose();
    const reopened = await HistoryStore.open({ dir: historyDir, maxSizeBytes: 1024 * 1024, maxAgeMs: 86_400_000 });
    const stored = reopened.get('run-daemon-stops');
    reopened.dispose();
    assert.equal(stored?.outcome, 'engine-error', 'recorded as failed with an engine error');
    assert.ok(stored?.error?.message.includes(socket), `the record keeps the message naming the engine: ${stored?.error?.message}`);

    assert.deepEqual(snapshot(folder), before, 'the workspace is byte-for-byte untouched');

    // The review is on disk and still listed without an engine.
    const onDisk = await new ReviewStore(path.join(storage, 'reviews')).load(folder);
    assert.deepEqual(onDisk && changePaths(onDisk.changeSet), ['a.txt', 'new.txt'], 'the pending review is still on disk');
    const listedWithoutEngine = await first.connection.sendRequest(PendingChangesRequest.type, { folder });
    assert.deepEqual(changePaths(listedWithoutEngine), ['a.txt', 'new.txt']);

    // The developer restarts Docker and VS Code restarts the server: the review comes back and can be applied.
    await killServer(first);
    startPrivateEngine(engineDir);
    const second = await startServer({ storagePath: storage, env });
    servers.push(second);
    const listed = await second.connection.sendRequest(PendingChangesRequest.type, { folder });
    assert.deepEqual(listed.changes, collected.changes, 'the same pending changes are listed again');
    const proposal = await second.connection.sendRequest(ReadProposalRequest.type, { folder, path: 'new.txt' });
    assert.equal(Buffer.from(proposal.base64, 'base64').toString(), 'proposed\n');
    assert.deepEqual(snapshot(folder), before, 'listing the review wrote nothing');
    const applied = await withLimit(second.connection.sendRequest(ApplyRequest.type, { folder }), 180_000, 'apply after the restart hung');
    assert.deepEqual(applied.conflicts, []);
    assert.deepEqual([...applied.applied].sort(), ['a.txt', 'new.txt']);
    assert.equal(readFileSync(path.join(folder, 'a.txt'), 'utf8'), 'alpha\nmore\n');
    assert.equal(readFileSync(path.join(folder, 'new.txt'), 'utf8'), 'proposed\n');
  });
  test("an engine server SIGKILLed during a run: the next server removes the dead one's box and volume as orphans and restores the pending review", async function () {
    this.timeout(300_000);
    // The daemon case above restarts the engine; should it have failed half-way, this starts it again.
    startPrivateEngine(engineDir);
    const env = { ...process.env, DOCKER_HOST: engine.dockerHost };
    const docker = new DockerEngine(resolveEngineLocation({ env, homeDir: os.homedir(), platform: process.platform }), { defaultTimeoutMs: 60_000 });
    const folder = tempDir('as-fault-server-');
    const storage = tempDir('as-fault-server-storage-');
    await writeFiles(folder, { 'a.txt': 'alpha\n' });

    const first = await startServer({ storagePath: storage, env });
    servers.push(first);
    const run = await first.connection.sendRequest(ExecRequest.type, { folder, command: 'echo proposed > new.txt' });
    assert.equal(run.exitCode, 0, run.stderr);
    const collected = await first.connection.sendRequest(CollectRequest.type, { folder });
    assert.deepEqual(changePaths(collected), ['new.txt']);
    const box = await first.connection.sendRequest(EnsureBoxRequest.type, { folder });
    const before = snapshot(folder);

    const running = first.connection.sendRequest(ExecRequest.type, { folder, command: LONG_RUN }).catch(() => undefined);
    await waitFor(() => first.output.some((text) => text.includes('tick')), 60_000, 'the long run printed nothing');
    await killServer(first);
    await running;

    // The dead server's box is still there, labelled with its pid, the run still going inside.
    const left = await docker.call('inspecting the orphan', (d) => d.getContainer(box.containerId).inspect());
    assert.equal(left.Config.Labels?.[LABEL_OWNER_PID], String(first.process.pid));
    assert.equal(left.Config.Labels?.[LABEL_FOLDER], folder);
    assert.equal(left.State.Running, true, 'the orphan box outlived its server');
    const top = await docker.call("listing the orphan's processes", (d) => d.getContainer(box.containerId).top({ ps_args: '-o pid,args' }));
    assert.ok(JSON.stringify(top.Processes).includes('tick'), `the run still goes on in the orphan: ${JSON.stringify(top.Processes)}`);

    const second = await startServer({ storagePath: storage, env });
    servers.push(second);
    await second.connection.sendRequest(CheckEngineRequest.type);
    assert.equal(await containerExists(docker, box.containerId), false, 'the orphan box is removed');
    assert.equal(await volumeExists(docker, box.volumeName), false, 'its workspace volume is removed');
    assert.ok(
      second.orphansRemoved.some((removed) => removed.volumes.includes(box.volumeName)),
      `sandbox/orphansRemoved names the volume: ${JSON.stringify(second.orphansRemoved)}`,
    );

    const listed = await second.connection.sendRequest(PendingChangesRequest.type, { folder });
    assert.deepEqual(listed.changes, collected.changes, 'the pending review is restored');
    const proposal = await second.connection.sendRequest(ReadProposalRequest.type, { folder, path: 'new.txt' });
    assert.equal(Buffer.from(proposal.base64, 'base64').toString(), 'proposed\n');
    assert.deepEqual(snapshot(folder), before, 'the workspace is untouched');
    // The next run gets a new box with the pending change written back into it.
    const again = await second.connection.sendRequest(ExecRequest.type, { folder, command: 'cat new.txt' });
    assert.equal(again.stdout, 'proposed\n');
    assert.notEqual((await second.connection.sendRequest(EnsureBoxRequest.type, { folder })).containerId, box.containerId);
  });
});

suite('faults: the box is killed or removed from outside (shared engine)', () => {
  let engine: DockerEngine;
  let folder: string;
  let storage: string;
  let server: Server | undefined;

  suiteSetup(async () => {
    engine = await connectTestEngine();
    folder = makeWorkspace('as-fault-box-');
    storage = mkdtempSync(path.join(os.tmpdir(), 'as-fault-box-storage-'));
    await writeFiles(folder, { 'a.txt': 'alpha\n', 'keep/b.txt': 'beta\n' });
    server = await startServer({ storagePath: storage });
  });

  suiteTeardown(async () => {
    await stopServer(server);
    if (folder) rmSync(folder, { recursive: true, force: true });
    if (storage) rmSync(storage, { recursive: true, force: true });
  });

  for (const fault of ['killed (docker kill)', 'removed (docker rm -f)'] as const) {
    test(`a box ${fault} from outside: the next run fails with a clear no-box error, the run after it gets a fresh box with the pending review back, the workspace never changes`, async () => {
      const s = server!;
      const run = await s.connection.sendRequest(ExecRequest.type, { folder, command: `echo "${fault}" > proposed.txt` });
      assert.equal(run.exitCode, 0, run.stderr);
      const collected = await s.connection.sendRequest(CollectRequest.type, { folder });
      assert.deepEqual(changePaths(collected), ['proposed.txt']);
      const before = snapshot(folder);
      const box = await s.connection.sendRequest(EnsureBoxRequest.type, { folder });

      if (fault === 'killed (docker kill)') {
        await engine.call('killing the test box', (d) => d.getContainer(box.containerId).kill());
        await waitFor(
          async () => {
            const info = await engine.call('inspecting the test box', (d) => d.getContainer(box.containerId).inspect());
            return !info.State.Running;
          },
          60_000,
          'the killed box still runs',
        );
      } else {
        await engine.call('removing the test box', (d) => d.getContainer(box.containerId).remove({ force: true }));
        assert.equal(await containerExists(engine, box.containerId), false);
      }

      const error = await rejection(
        s.connection.sendRequest(ExecRequest.type, { folder, command: 'echo after > after.txt' }),
        'a run in the dead box',
      );
      assert.equal(error.data?.reason, 'no-box', error.message);
      assert.match(error.message, /box/i);
      assert.match(error.message, /next run starts a fresh box/i, error.message);
      assert.match(error.message, /pending review .*kept/i, `the message says the review is kept: ${error.message}`);
      assert.deepEqual(snapshot(folder), before, 'the workspace is untouched');

      const listed = await s.connection.sendRequest(PendingChangesRequest.type, { folder });
      assert.deepEqual(changePaths(listed), ['proposed.txt'], 'the pending review survives');

      const again = await s.connection.sendRequest(ExecRequest.type, { folder, command: 'cat proposed.txt' });
      assert.equal(again.exitCode, 0, again.stderr);
      assert.equal(again.stdout, `${fault}\n`, 'the fresh box holds the pending change again');
      const fresh = await s.connection.sendRequest(EnsureBoxRequest.type, { folder });
      assert.notEqual(fresh.containerId, box.containerId, 'a new box');
      const recollected = await s.connection.sendRequest(CollectRequest.type, { folder });
      assert.deepEqual(recollected.changes, collected.changes, 'the same pending change, collected from the new box');
      assert.deepEqual(snapshot(folder), before, 'the workspace never changed');

      // Leave nothing pending for the next case.
      await s.connection.sendRequest(ResetRequest.type, { folder, discardPending: true });
    });
  }
});

suite('faults: the host disk fills up during apply (a real 4 MiB tmpfs)', function () {
  let mountPoint: string;
  let mounted = false;
  let storage: string;
  let server: Server | undefined;

  suiteSetup(function () {
    mountPoint = mkdtempSync(path.join(os.tmpdir(), 'as-fault-disk-'));
    if (process.getuid?.() !== 0) throw new Error(`The disk-full case mounts a tmpfs and needs root; running as uid ${process.getuid?.()}.`);
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'tmpfs', mountPoint], { encoding: 'utf8' });
    if (mount.status !== 0) throw new Error(`Could not mount a 4 MiB tmpfs at ${mountPoint}: ${mount.stderr}${mount.error ?? ''}`);
    mounted = true;
    storage = mkdtempSync(path.join(os.tmpdir(), 'as-fault-disk-storage-'));
  });

  suiteTeardown(async () => {
    await stopServer(server);
    if (mounted) {
      const unmount = spawnSync('umount', [mountPoint], { encoding: 'utf8' });
      if (unmount.status !== 0) spawnSync('umount', ['-l', mountPoint]);
    }
    if (mountPoint && existsSync(mountPoint)) rmSync(mountPoint, { recursive: true, force: true });
    if (storage) rmSync(storage, { recursive: true, force: true });
  });

  test('apply onto a full disk fails with disk-full naming the folder, writes no file in part, leaves no temp file, keeps the review; after freeing space it applies', async () => {
    const folder = mountPoint;
    const filler = Buffer.alloc(2 * 1024 * 1024, 0x2e);
    await writeFiles(folder, { 'a.txt': 'alpha\n', 'b.txt': 'beta\n', 'keep.txt': 'keep\n', 'filler.bin': filler });
    await connectTestEngine();
    server = await startServer({ storagePath: storage });
    const s = server;

    // 3 MiB of new content where about 2 MiB are free, plus small edits around it.
    const run = await s.connection.sendRequest(ExecRequest.type, {
      folder,
      command: 'head -c 3145728 /dev/urandom > big.bin && echo ALPHA > a.txt && rm b.txt && echo small > small.txt',
    });
    assert.equal(run.exitCode, 0, run.stderr);
    const collected = await s.connection.sendRequest(CollectRequest.type, { folder });
    assert.deepEqual(changePaths(collected), ['a.txt', 'b.txt', 'big.bin', 'small.txt']);
    const proposals = new Map<string, Buffer>();
    for (const p of ['a.txt', 'big.bin', 'small.txt']) {
      proposals.set(p, Buffer.from((await s.connection.sendRequest(ReadProposalRequest.type, { folder, path: p })).base64, 'base64'));
    }
    assert.equal(proposals.get('big.bin')?.length, 3 * 1024 * 1024);
    const free = await fs.statfs(folder);
    assert.ok(free.bavail * free.bsize < 3 * 1024 * 1024, `the control: big.bin cannot fit (${free.bavail * free.bsize} bytes free)`);
    const before = snapshot(folder);

    const error = await rejection(s.connection.sendRequest(ApplyRequest.type, { folder }), 'apply onto a full disk');
    assert.equal(error.data?.reason, 'disk-full', `${error.data?.reason}: ${error.message}`);
    assert.ok(error.message.includes(folder), `the message names the folder: ${error.message}`);
    assert.match(error.message, /free space/i);

    // Every file is its old content or its whole new content; here the apply stopped before changing any.
    const after = snapshot(folder);
    for (const [rel, state] of after) {
      const proposal = proposals.get(rel);
      const allowed = [before.get(rel), proposal && `file ${sha256(proposal)}`];
      assert.ok(allowed.includes(state), `${rel} is neither its old nor its new content (${state})`);
    }
    assert.deepEqual(
      [...after.keys()].filter((rel) => /agent-sandbox|\.tmp$/.test(rel)),
      [],
      'no temporary file is left in the folder',
    );
    assert.deepEqual(after, before, 'nothing in the workspace changed');

    const pending = await s.connection.sendRequest(PendingChangesRequest.type, { folder });
    assert.deepEqual(pending.changes, collected.changes, 'every change is still pending');

    // The developer frees space; the same review applies in full.
    await fs.rm(path.join(folder, 'filler.bin'));
    const applied = await s.connection.sendRequest(ApplyRequest.type, { folder });
    assert.deepEqual(applied.conflicts, []);
    assert.deepEqual([...applied.applied].sort(), ['a.txt', 'b.txt', 'big.bin', 'small.txt']);
    for (const [rel, content] of proposals) assert.ok(readFileSync(path.join(folder, rel)).equals(content), `${rel} is the box's version`);
    assert.equal(existsSync(path.join(folder, 'b.txt')), false);
    assert.equal(readFileSync(path.join(folder, 'keep.txt'), 'utf8'), 'keep\n');
    assert.deepEqual(readdirSync(folder).sort(), ['a.txt', 'big.bin', 'keep.txt', 'small.txt']);
    const done = await s.connection.sendRequest(PendingChangesRequest.type, { folder });
    assert.deepEqual(done.changes, []);
  });
});
