// `npm run bench [-- --quick]`: the engine against the tools a user could use instead, in the same run on the
// same engine. Prints a table, writes bench/results/*.json and (full runs) regenerates docs/benchmarks.md.
// Every box, volume, server process and temp dir it creates is removed at the end, also on failure.
// `--report-from <results.json>` only regenerates docs/benchmarks.md from saved results.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, cpSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Dockerode = require('dockerode');
import { EnsureBoxRequest, ExecRequest, type BoxSettings } from '../src/shared/protocol';
import { Box } from '../src/core/box/box';
import { readOomKillCount } from '../src/core/box/boxExec';
import { runInBox } from '../src/core/box/boxRun';
import { DEFAULT_BOX_SETTINGS, LABEL_FOLDER, LABEL_MANAGED, LABEL_OWNER, LABEL_OWNER_HOST, LABEL_OWNER_PID } from '../src/core/box/boxConfig';
import { DockerEngine } from '../src/core/docker/dockerEngine';
import { dockerodeOptions, resolveEngineLocation } from '../src/core/docker/engineLocation';
import { BOX_TAR_MEMORY_SHARE, BoxSession, mirrorRoute } from '../src/core/session/boxSession';
import { ancestorsOf } from '../src/core/workspace/pathGuard';
import { SyncFilter } from '../src/core/workspace/syncFilter';
import { startEngineServer, stopEngineServer, type EngineServerProcess } from '../test/builders/engineServer';
import { WorkspaceWatch } from '../src/core/workspace/workspaceWatch';
import { bash, dockerSync, median, memoryOf, q, timed } from './benchUtil';
import { writeReport, type BenchResults, type Row } from './report';
import { generateTree } from './trees';
import { npmCacheRows } from './cacheBench';
import { gvisorRows } from './gvisorRows';

const repoRoot = path.resolve(__dirname, '..', '..');
const quick = process.argv.includes('--quick');
/**
 * `--image=<ref>`: the box image. The default has GNU find and tar like the product's default image
 * (node:22-bookworm), so collect uses box stamps; `agent-sandbox-test/busybox` measures the whole-archive path.
 */
const DEFAULT_IMAGE = 'agent-sandbox-test/node';
const IMAGE = process.argv.find((a) => a.startsWith('--image='))?.slice('--image='.length) || DEFAULT_IMAGE;
/** `--only=trees,exec,...`: run only these sections (cold, trees, exec, activation, memory, caches, gvisor, parallel); results are a subset. */
const ONLY = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',')
  .filter(Boolean);
const runs = (section: 'cold' | 'trees' | 'exec' | 'activation' | 'memory' | 'caches' | 'gvisor' | 'parallel'): boolean =>
  !ONLY || ONLY.includes(section);
const REPS = quick ? 1 : 3;
const EXEC_REPS = quick ? 10 : 40;

interface Workspace {
  name: string;
  root: string;
  /** Regular files, workspace-relative. */
  files: string[];
  bytes: number;
  /** Largest tree: catch-up/collect targets and the server's RSS are measured on it. */
  largest?: boolean;
}

const ownerId = `bench-${process.pid}-${Date.now().toString(36)}`;
const settings: BoxSettings = {
  ...DEFAULT_BOX_SETTINGS,
  image: IMAGE,
  cpus: 2,
  workspaceSizeMiB: 2048,
  idleTimeoutMinutes: 0,
  // The baselines have no package caches; the `caches` section (bench/cacheBench.ts) measures them on their own.
  caches: false,
};
const logLines: string[] = [];
const log = (line: string): void => {
  logLines.push(line);
  // `BENCH_LOG=1`: the engine's log lines as they come (the mirror's phases are among them).
  if (process.env.BENCH_LOG) process.stderr.write(`${line}\n`);
};
const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);

/**
 * The engine the docker CLI would use; on a fresh Linux machine as root (CI), the private engine and the test
 * images, provisioned by the same scripts as `npm test`.
 */
function ensureEngine(): void {
  const answers = () => spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8' }).status === 0;
  if (answers()) return;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    throw new Error('No Docker engine answers. Start Docker (or set DOCKER_HOST) and run the benchmark again.');
  }
  const script = (name: string) => {
    const r = spawnSync('bash', [path.join(repoRoot, 'scripts', name)], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`scripts/${name} failed with exit code ${r.status}`);
    return r.stdout;
  };
  const match = /export DOCKER_HOST=(\S+)/.exec(script('start-docker-engine.sh'));
  if (!match) throw new Error('scripts/start-docker-engine.sh printed no DOCKER_HOST');
  process.env.DOCKER_HOST = match[1];
  script('build-test-images.sh');
}

async function main(): Promise<void> {
  const reportFrom = process.argv.indexOf('--report-from');
  if (reportFrom > 0) {
    // Regenerates docs/benchmarks.md from saved results (after editing bench/analysis.md), measuring nothing.
    const saved = JSON.parse(readFileSync(path.resolve(process.argv[reportFrom + 1] ?? ''), 'utf8')) as BenchResults;
    writeReport(saved, { repoRoot, writeDocs: saved.mode === 'full', writeResults: false });
    return;
  }
  const started = Date.now();
  ensureEngine();
  const loadAtStart = os.loadavg()[0];
  const location = resolveEngineLocation({ env: process.env, homeDir: os.homedir(), platform: process.platform });
  const engine = new DockerEngine(location, { defaultTimeoutMs: 60_000 });
  const version = await engine.version({ timeoutMs: 10_000 });
  if (!(await engine.inspectImage(IMAGE))) {
    throw new Error(`The benchmark needs the image ${IMAGE}: run \`bash scripts/build-test-images.sh\`.`);
  }
  const docker = new Dockerode(dockerodeOptions(location));
  const temp = mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-bench-'));
  const servers: ChildProcess[] = [];
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  try {
    const workspaces = prepareWorkspaces(temp);
    for (const ws of workspaces) {
      say(`${ws.name}: ${ws.files.length} files, ${(ws.bytes / 1e6).toFixed(0)} MB`);
    }

    // 1. Cold box, on the smallest tree.
    if (workspaces.length === 0) throw new Error('--trees selected no workspace');
    if (runs('cold')) rows.push(...(await coldBox(engine, workspaces[0])));

    // 2–4, 6: per tree, mirror in with its baselines, then catch-up, collect and apply on the mirrored box.
    for (const ws of runs('trees') ? workspaces : []) {
      rows.push(...(await treeScenarios(engine, ws, temp, details)));
    }

    // 5. Warm exec.
    if (runs('exec')) rows.push(...(await warmExec(engine, docker, workspaces[0], servers)));

    // gVisor: cold start and file-system speed under runsc as ratios to runc (bench/gvisorRows.ts).
    if (runs('gvisor')) rows.push(...(await gvisorRows({ engine, settings, ownerId, reps: REPS, log, say }, workspaces[0])));

    // 7. Activation and bundles.
    if (runs('activation')) rows.push(...(await activation(temp, details)));

    // 8. Server peak RSS while mirroring the largest tree.
    const largest = workspaces.find((w) => w.largest) ?? workspaces[workspaces.length - 1];
    if (runs('memory')) rows.push(...(await serverMemory(largest, servers)));

    // 9. npm ci with a warm package cache in a new box, against the first (cold) one.
    if (runs('caches')) rows.push(...(await npmCacheRows(engine, { temp, ownerId, reps: REPS, packages: quick ? 100 : 300, settings, say })));
    // 10. Eight boxes at once, one server: time and memory against one box, in the same run.
    if (runs('parallel')) rows.push(...(await parallelBoxes(temp, servers)));

    const results: BenchResults = {
      mode: quick ? 'quick' : treesWanted() || ONLY || IMAGE !== DEFAULT_IMAGE ? 'subset' : 'full',
      date: new Date().toISOString(),
      durationSeconds: Math.round((Date.now() - started) / 1000),
      repetitions: REPS,
      machine: {
        cpu: os.cpus()[0]?.model ?? 'unknown',
        cores: os.cpus().length,
        memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
        os: `${os.type()} ${os.release()} ${os.arch()}`,
        node: process.version,
        loadAverage: { start: loadAtStart, end: os.loadavg()[0] },
      },
      engine: { version: version.Version, apiVersion: version.ApiVersion, storageDriver: String((await engine.info()).Driver ?? '') },
      image: IMAGE,
      workspaces: workspaces.map((w) => ({ name: w.name, files: w.files.length, bytes: w.bytes })),
      rows,
      details,
    };
    // A --trees subset is for comparisons: its results are kept apart and never become the published page.
    writeReport(results, { repoRoot, writeDocs: results.mode === 'full', writeResults: true });
  } finally {
    for (const server of servers) server.kill();
    await removeOwned(engine, temp);
    rmSync(temp, { recursive: true, force: true });
  }
}

/** `--trees=1000,50000,node_modules` limits a run to those workspaces (for before/after comparisons); any file count works. */
function treesWanted(): string[] | undefined {
  const option = process.argv.find((a) => a.startsWith('--trees='));
  return option?.slice('--trees='.length).split(',').filter(Boolean);
}

function prepareWorkspaces(temp: string): Workspace[] {
  const wanted = treesWanted();
  // Sizes beyond the published ones (e.g. `--trees=100000`) are measured only when asked for by number.
  const asked = (wanted ?? []).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  const sizes = wanted ? asked : quick ? [1_000] : [1_000, 10_000, 50_000];
  const workspaces: Workspace[] = [];
  for (const count of sizes) {
    const name = `generated ${count / 1000}k`;
    say(`generating ${name}`);
    const tree = generateTree(path.join(temp, `tree-${count}`), count);
    workspaces.push({ name, root: tree.root, files: tree.files, bytes: tree.bytes });
  }
  if (workspaces.length > 0) workspaces[workspaces.length - 1].largest = true;
  if (!quick && (!wanted || wanted.includes('node_modules'))) {
    // A real tree nobody here wrote, copied so the host edits of the scenarios never touch the installed one.
    // The source is resolved first: were node_modules a symlink, copying it verbatim would make the "copy" a
    // link to the real tree, and the scenarios' edits would land there.
    say('copying node_modules');
    const root = path.join(temp, 'node_modules-copy');
    cpSync(realpathSync(path.join(repoRoot, 'node_modules')), root, { recursive: true, verbatimSymlinks: true });
    if (!lstatSync(root).isDirectory()) throw new Error(`${root} is not a real directory; refusing to edit through it`);
    const listed = spawnSync('find', ['.', '-type', 'f', '-printf', '%P\\t%s\\n'], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28 });
    const files: string[] = [];
    let bytes = 0;
    for (const line of listed.stdout.split('\n')) {
      if (!line) continue;
      const [p, size] = line.split('\t');
      files.push(p);
      bytes += Number(size);
    }
    workspaces.push({ name: 'node_modules (real)', root, files, bytes });
  }
  return workspaces;
}

async function openSession(
  engine: DockerEngine,
  ws: Workspace,
  options: { watch?: boolean } = {},
): Promise<{ session: BoxSession; totalMs: number; createMs: number; mirrorMs: number }> {
  const start = performance.now();
  // `watch`: from before the scan, as the engine server opens boxes (the first catch-up then needs no rescan).
  const watch = options.watch ? new WorkspaceWatch(ws.root) : undefined;
  const session = await BoxSession.open({ engine, settings, folder: ws.root, ownerId, env: [], log, watch }, () => undefined);
  const end = performance.now();
  // The box is created and started alongside the scan: the mirror is what open took beyond that (the scan
  // counts where it outlasted the box's start).
  const createMs = session.openedIn.boxMs;
  return { session, totalMs: end - start, createMs, mirrorMs: end - start - createMs };
}

async function coldBox(engine: DockerEngine, ws: Workspace): Promise<Row[]> {
  const ours: number[] = [];
  const cli: number[] = [];
  for (let i = 0; i < REPS; i++) {
    // Up to the first exec's result, as the CLI baseline (whose removal is not timed either).
    const { ms, value: session } = await timed(async () => {
      const { session } = await openSession(engine, ws, { watch: true });
      const r = await session.exec({ command: 'true', runId: 'cold' }, () => undefined);
      if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
      return session;
    });
    await session.remove();
    ours.push(ms);
    const name = `${ownerId}-cold-${i}`;
    // The owner pid and host labels tell other engine servers' orphan cleanup that this box's owner is alive.
    const labels = `--label ${LABEL_MANAGED}=true --label ${LABEL_OWNER}=${ownerId} --label ${LABEL_OWNER_PID}=${process.pid} --label ${LABEL_OWNER_HOST}=${q(os.hostname())}`;
    const { ms: cliMs } = await timed(() =>
      bash(
        `set -e
docker volume create ${labels} --driver local --opt type=tmpfs --opt device=tmpfs --opt o=size=2048m,uid=1000,gid=1000 ${name} >/dev/null
docker run -d --name ${name} ${labels} --network none --read-only --user 1000:1000 --cap-drop ALL --security-opt no-new-privileges --init -v ${name}:/workspace ${IMAGE} sleep 86400 >/dev/null
docker cp ${q(ws.root)}/. ${name}:/workspace
docker exec ${name} true`,
      ),
    );
    cli.push(cliMs);
    dockerSync(['rm', '-f', name]);
    dockerSync(['volume', 'rm', name]);
  }
  const m = median(ours);
  const b = median(cli);
  return [
    {
      scenario: 'cold box: create + start + mirror + exec true',
      workspace: ws.name,
      ms: m,
      baselines: { 'docker run + cp + exec': b },
      ratio: m / b,
      ratioOf: 'docker run + cp + exec',
      target: 1.0,
    },
  ];
}

/** Edits files in the box through one exec: names on stdin, a line appended to each. */
async function editInBox(session: BoxSession, files: string[]): Promise<void> {
  const r = await session.box.exec({
    command: `cd /workspace && xargs -0 sh -c 'for f; do echo "edited in the box" >> "$f"; done' sh`,
    stdin: Buffer.from(files.map((f) => `${f}\0`).join('')),
    outputLimitBytes: 65536,
    timeoutMs: 120_000,
  });
  if (r.exitCode !== 0) throw new Error(`editing in the box failed: ${r.stderr}`);
}

async function treeScenarios(engine: DockerEngine, ws: Workspace, temp: string, details: Record<string, unknown>): Promise<Row[]> {
  if (!realpathSync(ws.root).startsWith(`${realpathSync(temp)}${path.sep}`)) {
    throw new Error(`${ws.root} resolves outside the benchmark's temp dir; its scenarios edit files, so it must be a copy`);
  }
  const m = { mirror: [] as number[], create: [] as number[], dockerCp: [] as number[], tarPipe: [] as number[], hostTar: [] as number[] };
  const c = {
    wholeArchive: [] as number[],
    rescan: [] as number[],
    watched: [] as number[],
    catchUp10: [] as number[],
    catchUp10Partial: [] as boolean[],
    collect10: [] as number[],
    collect1000: [] as number[],
    apply1000: [] as number[],
    tarApply: [] as number[],
  };
  // Host edits and box edits touch disjoint files, spread over the tree.
  const filter = await SyncFilter.create(ws.root, { exclude: [], useGitignore: false });
  const sendable = ws.files.filter((f) => !filter.isExcluded(f, false) && !ancestorsOf(f).some((d) => filter.isExcluded(d, true)));
  const stride = Math.max(1, Math.floor(sendable.length / 1100));
  const spread = sendable.filter((_, i) => i % stride === 0);
  const hostEdits = spread.slice(0, 10);
  const boxEdits = spread.slice(10, 1010);
  const applyCopy = path.join(temp, 'apply-baseline');
  // Trees over 20k files get one repetition less: each costs minutes on a small machine.
  const reps = quick ? 1 : ws.files.length > 20_000 ? REPS - 1 : REPS;
  for (let rep = 0; rep < reps; rep++) {
    say(`${ws.name}: repetition ${rep + 1}/${reps}`);
    // Mirror in, as the product does it.
    const opened = await openSession(engine, ws);
    m.mirror.push(opened.mirrorMs);
    m.create.push(opened.createMs);
    const { session } = opened;
    try {
      // Catch-up with nothing changed: the cost every run pays.
      const rescan = await timed(() => session.catchUp());
      if (rescan.value.sent.length !== 0) throw new Error(`catch-up right after the mirror sent ${rescan.value.sent.length} paths, expected none`);
      c.rescan.push(rescan.ms);
      // Again with nothing changed: the directory watchers saw no event, so there is no rescan.
      const watched = await timed(() => session.catchUp());
      if (watched.value.sent.length !== 0) throw new Error(`a second catch-up sent ${watched.value.sent.length} paths, expected none`);
      c.watched.push(watched.ms);
      for (const f of hostEdits) appendFileSync(path.join(ws.root, f), `// host edit ${rep}\n`);
      const partialScans = session.partialHostScans;
      const catchUp = await timed(() => session.catchUp());
      if (catchUp.value.sent.length !== hostEdits.length) throw new Error(`catch-up sent ${catchUp.value.sent.length}, expected ${hostEdits.length}`);
      c.catchUp10.push(catchUp.ms);
      c.catchUp10Partial.push(session.partialHostScans > partialScans);

      await editInBox(session, boxEdits.slice(0, 10));
      const collect10 = await timed(() => session.collect());
      if (collect10.value.changes.length !== 10) throw new Error(`collect found ${collect10.value.changes.length} changes, expected 10`);
      c.collect10.push(collect10.ms);
      // What an image without GNU find pays at least: reading the whole /workspace archive (not even parsed).
      c.wholeArchive.push(
        (
          await timed(async () => {
            for await (const chunk of await session.box.getArchive('/workspace')) void chunk;
          })
        ).ms,
      );
      await editInBox(session, boxEdits.slice(10));
      const collect1000 = await timed(() => session.collect());
      if (collect1000.value.changes.length !== boxEdits.length)
        throw new Error(`collect found ${collect1000.value.changes.length} changes, expected ${boxEdits.length}`);
      c.collect1000.push(collect1000.ms);

      // The floor for apply: the same files out of the box as a tar, extracted by GNU tar into a copy.
      rmSync(applyCopy, { recursive: true, force: true });
      mkdirSync(applyCopy);
      c.tarApply.push(
        (
          await timed(() =>
            bash(`docker exec -i ${session.box.containerId} sh -c "cd /workspace && xargs -0 tar -cf -" | tar -C ${q(applyCopy)} -xif -`, {
              input: boxEdits.map((f) => `${f}\0`).join(''),
            }),
          )
        ).ms,
      );
      // Untimed: the baseline's bytes are flushed now and its copy is removed after the apply, so that the
      // apply's own flush (apply is durable, tar -x is not) and the file system's work of freeing the copy's
      // blocks are not charged to the apply.
      await bash(`sync -f ${q(applyCopy)} 2>/dev/null || sync`);
      const applied = await timed(() => session.apply({ approveFlagged: boxEdits }));
      if (applied.value.applied.length !== boxEdits.length) throw new Error(`applied ${applied.value.applied.length} of ${boxEdits.length}`);
      c.apply1000.push(applied.ms);
      rmSync(applyCopy, { recursive: true, force: true });
    } finally {
      await session.remove();
    }

    // Baselines into the same kind of box (created by the same code, not timed).
    const box = await Box.create(engine, settings, { folder: ws.root, ownerId, env: [] });
    try {
      m.dockerCp.push((await timed(() => bash(`docker cp ${q(ws.root)}/. ${box.containerId}:/workspace`))).ms);
    } finally {
      await box.remove();
    }
    const box2 = await Box.create(engine, settings, { folder: ws.root, ownerId, env: [] });
    try {
      m.tarPipe.push((await timed(() => bash(`tar -C ${q(ws.root)} -cf - . | docker exec -i ${box2.containerId} tar -C /workspace -xf -`))).ms);
    } finally {
      await box2.remove();
    }
    const shm = mkdtempSync(path.join(existsDir('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'agent-sandbox-bench-'));
    try {
      m.hostTar.push((await timed(() => bash(`tar -C ${q(ws.root)} -cf - . | tar -C ${q(shm)} -xf -`))).ms);
    } finally {
      rmSync(shm, { recursive: true, force: true });
    }
  }
  const mirror = median(m.mirror);
  const cp = median(m.dockerCp);
  details[ws.name] = { ...m, ...c };
  const rows: Row[] = [
    {
      scenario: 'mirror in',
      workspace: ws.name,
      ms: mirror,
      baselines: { 'docker cp': cp, 'tar | docker exec tar -x': median(m.tarPipe), 'GNU tar → host tmpfs (floor)': median(m.hostTar) },
      ratio: mirror / cp,
      ratioOf: 'docker cp',
      // Issue 16: the box's own tar, streamed, should take the mirror near `tar | docker exec tar -x`.
      target: 0.6,
      note: `box create + start ${median(m.create).toFixed(0)} ms not included; ${
        mirrorRoute(settings, { hasShell: true, files: ws.files.length, bytes: ws.bytes }).via === 'box-tar'
          ? "the box's own tar"
          : `the archive API (over ${BOX_TAR_MEMORY_SHARE * 100}% of memoryMiB ${settings.memoryMiB} in tmpfs)`
      }`,
    },
    {
      scenario: 'catch-up, nothing changed (first: full rescan)',
      workspace: ws.name,
      ms: median(c.rescan),
      baselines: { 'full mirror': mirror },
      ratio: median(c.rescan) / mirror,
      ratioOf: 'full mirror',
    },
    {
      scenario: 'catch-up, nothing changed since (no file event: no rescan)',
      workspace: ws.name,
      ms: median(c.watched),
      baselines: { 'full mirror': mirror },
      ratio: median(c.watched) / mirror,
      ratioOf: 'full mirror',
    },
    {
      scenario: 'catch-up after 10 host edits',
      workspace: ws.name,
      ms: median(c.catchUp10),
      baselines: { 'full mirror': mirror },
      ratio: median(c.catchUp10) / mirror,
      ratioOf: 'full mirror',
      target: ws.largest ? 0.05 : undefined,
      note: c.catchUp10Partial.every(Boolean)
        ? 'partial rescan: only the directories whose watchers fired'
        : `full rescan in ${c.catchUp10Partial.filter((p) => !p).length} of ${c.catchUp10Partial.length}`,
    },
    {
      scenario: 'collect after 10 box edits',
      workspace: ws.name,
      ms: median(c.collect10),
      baselines: { 'full mirror': mirror, 'reading the whole /workspace archive (the floor without GNU find)': median(c.wholeArchive) },
      ratio: median(c.collect10) / mirror,
      ratioOf: 'full mirror',
      target: ws.largest ? 0.1 : undefined,
    },
    {
      scenario: 'collect after 1,000 box edits',
      workspace: ws.name,
      ms: median(c.collect1000),
      baselines: { 'full mirror': mirror },
      ratio: median(c.collect1000) / mirror,
      ratioOf: 'full mirror',
    },
    {
      scenario: 'apply 1,000 changed files to the folder',
      workspace: ws.name,
      ms: median(c.apply1000),
      baselines: { 'docker exec tar -c | tar -x': median(c.tarApply) },
      ratio: median(c.apply1000) / median(c.tarApply),
      ratioOf: 'docker exec tar -c | tar -x',
      target: 2.0,
    },
  ];
  return rows;
}

function existsDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

async function startServer(servers: ChildProcess[]): Promise<EngineServerProcess> {
  const started = await startEngineServer({ box: settings, stderr: 'ignore' });
  servers.push(started.process);
  return started;
}

async function warmExec(engine: DockerEngine, docker: Dockerode, ws: Workspace, servers: ChildProcess[]): Promise<Row[]> {
  const started = await startServer(servers);
  const { connection } = started;
  try {
    const info = await connection.sendRequest(EnsureBoxRequest.type, { folder: ws.root });
    const viaServer: number[] = [];
    const direct: number[] = [];
    const cli: number[] = [];
    // Where the server's time goes: the core's run (no protocol, no catch-up), and the helper exec it makes
    // before every run to read the box's OOM-kill counter.
    const core: number[] = [];
    const oomRead: number[] = [];
    const container = docker.getContainer(info.containerId);
    const dockerodeExec = async () => {
      const exec = await container.exec({ Cmd: ['true'], AttachStdout: true, AttachStderr: true, User: '1000:1000', WorkingDir: '/workspace' });
      const stream = await exec.start({ hijack: true, stdin: false });
      await new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', reject);
        stream.resume();
      });
      const inspected = await exec.inspect();
      if (inspected.ExitCode !== 0) throw new Error(`true exited ${inspected.ExitCode}`);
    };
    // One warm-up of each, then interleaved so drift hits all three alike.
    await connection.sendRequest(ExecRequest.type, { folder: ws.root, command: 'true' });
    await dockerodeExec();
    dockerSync(['exec', info.containerId, 'true']);
    for (let i = 0; i < EXEC_REPS; i++) {
      viaServer.push(
        (
          await timed(async () => {
            const r = await connection.sendRequest(ExecRequest.type, { folder: ws.root, command: 'true' });
            if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
          })
        ).ms,
      );
      direct.push((await timed(dockerodeExec)).ms);
      cli.push((await timed(() => bash(`docker exec ${info.containerId} true`))).ms);
      if (i % 2 === 0) {
        core.push((await timed(() => runInBox(engine, info.containerId, { command: 'true', outputLimitBytes: 65536 }))).ms);
        oomRead.push((await timed(() => readOomKillCount(engine, info.containerId))).ms);
      }
    }
    const ours = median(viaServer);
    const d = median(direct);
    return [
      {
        scenario: 'warm exec `true` (server protocol, incl. catch-up)',
        workspace: ws.name,
        ms: ours,
        baselines: {
          'dockerode directly': d,
          'docker exec': median(cli),
          'core runInBox, no protocol/catch-up': median(core),
          'its OOM-counter helper exec alone': median(oomRead),
        },
        ratio: ours / d,
        ratioOf: 'dockerode directly',
        target: 1.2,
        note: `median of ${EXEC_REPS}`,
      },
    ];
  } finally {
    await stopEngineServer(started);
  }
}

/** Medians of the activation probe over fresh Node processes. */
function probeActivation(bundle: string, storage: string): { requireMs: number; activateMs: number; totalMs: number } {
  const probe = path.join(repoRoot, 'out', 'bench', 'activationProbe.js');
  const runs: { requireMs: number; activateMs: number; totalMs: number }[] = [];
  for (let i = 0; i < (quick ? 3 : 10); i++) {
    const r = spawnSync(process.execPath, [probe, repoRoot, bundle, storage], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`activation probe failed: ${r.stderr}`);
    const run = JSON.parse(r.stdout.trim().split('\n').pop()!);
    if (run.loadedLanguageClient) throw new Error(`activating ${bundle} loaded the language client; it must load on first engine use`);
    runs.push(run);
  }
  return {
    requireMs: median(runs.map((r) => r.requireMs)),
    activateMs: median(runs.map((r) => r.activateMs)),
    totalMs: median(runs.map((r) => r.totalMs)),
  };
}

/**
 * The extension bundle as `npm run build` makes it (dist/) and as the .vsix ships it (`--production`: minified;
 * built here into a temp dir with the same esbuild options, so dist/ is left alone).
 */
async function activation(temp: string, details: Record<string, unknown>): Promise<Row[]> {
  const esbuild = (await import('esbuild')) as typeof import('esbuild');
  const production = path.join(temp, 'production');
  const built = await esbuild.build({
    entryPoints: {
      extension: path.join(repoRoot, 'src', 'extension.ts'),
      languageClient: path.join(repoRoot, 'src', 'host', 'languageClient.ts'),
      server: path.join(repoRoot, 'src', 'server', 'main.ts'),
    },
    outdir: production,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: true,
    external: ['vscode'],
    metafile: true,
    logLevel: 'silent',
    plugins: [
      {
        name: 'no-native-addons',
        setup(build) {
          build.onResolve({ filter: /^cpu-features$|\.node$/ }, (args) => ({ path: args.path, namespace: 'no-native-addon' }));
          build.onLoad({ filter: /.*/, namespace: 'no-native-addon' }, () => ({ contents: 'throw new Error("not bundled");', loader: 'js' }));
        },
      },
    ],
  });
  // What the extension bundle is made of, by package: the first thing to look at when activation is slow.
  const byPackage = new Map<string, number>();
  const output = Object.entries(built.metafile.outputs).find(([file]) => file.endsWith('extension.js'))?.[1];
  for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
    const key = match ? match[1] : 'src (this extension)';
    byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
  }
  details.extensionBundleByPackage = Object.fromEntries([...byPackage].sort((a, b) => b[1] - a[1]));
  const dev = probeActivation(path.join(repoRoot, 'dist', 'extension.js'), path.join(temp, 'storage'));
  const prod = probeActivation(path.join(production, 'extension.js'), path.join(temp, 'storage'));
  details.activation = { dev, production: prod };
  const size = (f: string) => statSync(f).size;
  return [
    {
      scenario: 'activation: require + activate() of the production bundle (plain Node, stub vscode)',
      workspace: '–',
      ms: prod.totalMs,
      baselines: {
        'require only': prod.requireMs,
        'activate() only': prod.activateMs,
        'dev bundle (dist/) total': dev.totalMs,
      },
      ratio: prod.totalMs / 50,
      ratioOf: '50 ms budget',
      target: 1.0,
      note: `median of ${quick ? 3 : 10} fresh processes`,
    },
    {
      scenario: 'bundle sizes',
      workspace: '–',
      baselines: {},
      extra: {
        'extension.js (production)': size(path.join(production, 'extension.js')),
        'languageClient.js (production, loaded when the engine server starts)': size(path.join(production, 'languageClient.js')),
        'server.js (production)': size(path.join(production, 'server.js')),
        'dist/extension.js (dev)': size(path.join(repoRoot, 'dist', 'extension.js')),
        'dist/languageClient.js (dev)': size(path.join(repoRoot, 'dist', 'languageClient.js')),
        'dist/server.js (dev)': size(path.join(repoRoot, 'dist', 'server.js')),
      },
    },
  ];
}

async function serverMemory(ws: Workspace, servers: ChildProcess[]): Promise<Row[]> {
  const started = await startServer(servers);
  const { process: server, connection } = started;
  try {
    let peak = 0;
    const sampler = setInterval(() => {
      const m = memoryOf(server.pid!);
      if (m && m.rss > peak) peak = m.rss;
    }, 50);
    const { ms } = await timed(() => connection.sendRequest(EnsureBoxRequest.type, { folder: ws.root }));
    // The first run waits for the box stamps taken after the mirror, and rescans the workspace: part of the peak.
    await connection.sendRequest(ExecRequest.type, { folder: ws.root, command: 'true' });
    clearInterval(sampler);
    const hwm = memoryOf(server.pid!)?.hwm ?? peak;
    return [
      {
        scenario: 'server peak RSS (VmHWM) while mirroring, then the first run',
        workspace: ws.name,
        bytes: hwm,
        baselines: {},
        ratio: hwm / (160 * 1024 * 1024),
        ratioOf: '160 MiB budget',
        target: 1.0,
        note: `ensureBox over the protocol took ${(ms / 1000).toFixed(1)} s`,
      },
    ];
  } finally {
    await stopEngineServer(started);
  }
}

/** Boxes the parallel row opens at once, each for its own folder of `PARALLEL_FILES` files. */
const PARALLEL_BOXES = 8;
const PARALLEL_FILES = 1_000;

/**
 * One server mirrors one folder, then a fresh server mirrors eight at once (eight ensureBox requests in
 * flight): the total time against eight times one box, and the server's peak RSS growth over its idle RSS
 * against linear growth from one box. Each server first opens a warm-up box (untimed: the first request of a
 * server pays for image checks and orphan cleanup once), so both are timed on a warm server, and both RSS
 * peaks include that box: linear growth means (1 + 8) / (1 + 1) times one box's. Ratios ≤ 1: no worse than linear.
 */
async function parallelBoxes(temp: string, servers: ChildProcess[]): Promise<Row[]> {
  const tree = (i: number) => generateTree(path.join(temp, `parallel-${i}`), PARALLEL_FILES, 100 + i).root;
  const folders = Array.from({ length: PARALLEL_BOXES }, (_, i) => tree(i));
  const warmUp = [tree(PARALLEL_BOXES), tree(PARALLEL_BOXES + 1)];
  const measure = async (warm: string, wanted: string[]): Promise<{ ms: number; idle: number; peak: number }> => {
    const started = await startServer(servers);
    const { process: server, connection } = started;
    try {
      const idle = memoryOf(server.pid!)?.hwm ?? Number.NaN;
      await connection.sendRequest(EnsureBoxRequest.type, { folder: warm });
      const { ms } = await timed(() => Promise.all(wanted.map((folder) => connection.sendRequest(EnsureBoxRequest.type, { folder }))));
      return { ms, idle, peak: memoryOf(server.pid!)?.hwm ?? Number.NaN };
    } finally {
      await stopEngineServer(started);
    }
  };
  const one = await measure(warmUp[0], folders.slice(0, 1));
  const all = await measure(warmUp[1], folders);
  const growth = (m: { idle: number; peak: number }) => m.peak - m.idle;
  const linear = (growth(one) * (1 + PARALLEL_BOXES)) / 2;
  const workspace = `${PARALLEL_BOXES} × generated ${PARALLEL_FILES / 1000}k`;
  return [
    {
      scenario: `${PARALLEL_BOXES} boxes at once: ensureBox (create + mirror) for all`,
      workspace,
      ms: all.ms,
      baselines: { 'one box (warm server, same run)': one.ms },
      ratio: all.ms / (PARALLEL_BOXES * one.ms),
      ratioOf: `${PARALLEL_BOXES} × one box`,
      target: 1.0,
    },
    {
      scenario: `${PARALLEL_BOXES} boxes at once: server peak RSS (VmHWM)`,
      workspace,
      bytes: all.peak,
      baselines: {},
      ratio: growth(all) / linear,
      ratioOf: 'linear growth from one box',
      target: 1.0,
      note: `idle server ${(all.idle / 2 ** 20).toFixed(1)} MiB; warm-up box + one box: peak ${(one.peak / 2 ** 20).toFixed(1)} MiB`,
    },
  ];
}

/**
 * Removes every container and volume this run created, and nothing else: those labelled with its owner id,
 * and those the engine servers it started made for its temp folders (in case a server died before its reset).
 */
async function removeOwned(engine: DockerEngine, temp: string): Promise<void> {
  const ours = (labels: Record<string, string> | undefined) =>
    labels?.[LABEL_OWNER] === ownerId || (labels?.[LABEL_FOLDER] ?? '').startsWith(`${temp}${path.sep}`);
  const label = [`${LABEL_MANAGED}=true`];
  try {
    const containers = await engine.call('listing bench containers', (d) => d.listContainers({ all: true, filters: { label } }));
    for (const c of containers.filter((c) => ours(c.Labels))) {
      await engine.call('removing a bench container', (d) => d.getContainer(c.Id).remove({ force: true })).catch(() => undefined);
    }
    const volumes = await engine.call('listing bench volumes', (d) => d.listVolumes({ filters: { label } }));
    for (const v of (volumes.Volumes ?? []).filter((v) => ours(v.Labels))) {
      await engine.call('removing a bench volume', (d) => d.getVolume(v.Name).remove()).catch(() => undefined);
    }
  } catch (error) {
    say(`cleanup: ${(error as Error).message}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  if (logLines.length > 0) process.stderr.write(`[bench] engine log:\n${logLines.slice(-20).join('\n')}\n`);
  process.exitCode = 1;
});
