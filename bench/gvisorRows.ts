// The gVisor row of `npm run bench`: the same box under runsc and under the engine's default runtime (runc), in
// the same run on the same engine, as ratios runsc / runc — cold start, mirror in, and collect after edits.
import type { BoxSettings } from '../src/shared/protocol';
import type { DockerEngine } from '../src/core/docker/dockerEngine';
import { BoxSession } from '../src/core/session/boxSession';
import { median, timed } from './benchUtil';
import type { Row } from './report';

export interface GvisorBenchContext {
  engine: DockerEngine;
  settings: BoxSettings;
  ownerId: string;
  reps: number;
  log(line: string): void;
  say(line: string): void;
}

interface RuntimeTimes {
  /** Container create + start (`BoxSession.openedIn.boxMs`: alongside the scan, from its start). */
  startMs: number[];
  coldMs: number[];
  mirrorMs: number[];
  collectMs: number[];
}

/** Files edited in the box before the timed collect: a tenth of the tree, at least one. */
const EDITED_SHARE = 10;

/** Rows comparing runsc with runc on `ws`; none (said on stderr) when the engine has no runtime named runsc. */
export async function gvisorRows(context: GvisorBenchContext, ws: { name: string; root: string; files: string[] }): Promise<Row[]> {
  const runtimes = (await context.engine.info()).Runtimes ?? {};
  if (!Object.prototype.hasOwnProperty.call(runtimes, 'runsc')) {
    context.say('gvisor: skipped, the engine has no runtime named runsc');
    return [];
  }
  const edited = ws.files.filter((_, i) => i % EDITED_SHARE === 0);
  const times: Record<'runc' | 'runsc', RuntimeTimes> = {
    runc: { startMs: [], coldMs: [], mirrorMs: [], collectMs: [] },
    runsc: { startMs: [], coldMs: [], mirrorMs: [], collectMs: [] },
  };
  for (let i = 0; i < context.reps; i++) {
    // Alternating runtimes within each repetition keeps a change of machine load from favouring one of them.
    for (const runtime of ['runc', 'runsc'] as const) {
      context.say(`gvisor: ${runtime} ${i + 1}/${context.reps} on ${ws.name}`);
      await measureOnce(context, ws.root, runtime, edited, times[runtime]);
    }
  }
  const row = (scenario: string, pick: (t: RuntimeTimes) => number[], note: string): Row => {
    const runsc = median(pick(times.runsc));
    const runc = median(pick(times.runc));
    return { scenario, workspace: ws.name, ms: runsc, baselines: { runc }, ratio: runsc / runc, ratioOf: 'runc', note };
  };
  return [
    row('gVisor (runsc): box create + start', (t) => t.startMs, 'the container alone, before any file is sent'),
    row('gVisor (runsc): cold box, create + start + mirror + exec true', (t) => t.coldMs, 'same box, same engine, runtime runc'),
    row('gVisor (runsc): mirror in', (t) => t.mirrorMs, 'the tar stream into /workspace (served to the sandbox by its gofer)'),
    row(`gVisor (runsc): collect after ${edited.length} edits in the box`, (t) => t.collectMs, 'reading the box tree back'),
  ];
}

async function measureOnce(
  context: GvisorBenchContext,
  folder: string,
  runtime: 'runc' | 'runsc',
  edited: string[],
  into: RuntimeTimes,
): Promise<void> {
  const settings: BoxSettings = { ...context.settings, runtime: runtime === 'runsc' ? 'runsc' : '' };
  const start = performance.now();
  const session = await BoxSession.open(
    { engine: context.engine, settings, folder, ownerId: context.ownerId, env: [], log: context.log },
    () => undefined,
  );
  try {
    const opened = performance.now();
    const first = await session.exec({ command: 'true', runId: `gvisor-cold-${runtime}` }, () => undefined);
    if (first.exitCode !== 0) throw new Error(`true exited ${first.exitCode} under ${runtime}`);
    into.coldMs.push(performance.now() - start);
    // The box is created and started alongside the scan (`openedIn`): the mirror is the rest of the open.
    into.startMs.push(session.openedIn.boxMs);
    into.mirrorMs.push(opened - start - session.openedIn.boxMs);
    const edit = await session.box.exec({
      command: `cd /workspace && xargs -0 sh -c 'for f; do echo "edited in the box" >> "$f"; done' sh`,
      stdin: Buffer.from(edited.map((f) => `${f}\0`).join('')),
      outputLimitBytes: 64 * 1024,
      timeoutMs: 300_000,
    });
    if (edit.exitCode !== 0) throw new Error(`editing in the box failed under ${runtime}: ${edit.stderr}`);
    const { ms, value } = await timed(() => session.collect());
    if (value.changes.length < edited.length) throw new Error(`collect under ${runtime} found ${value.changes.length} of ${edited.length} edits`);
    into.collectMs.push(ms);
  } finally {
    await session.remove();
  }
}
