import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type * as Dockerode from 'dockerode';
import type { ExecResult, RunOutcome } from '../../shared/protocol';
import { SandboxError } from '../errors';
import type { DockerEngine } from '../docker/dockerEngine';
import { isGvisorRuntime } from './boxConfig';
import {
  boxGoneError,
  boxLostAfterRun,
  boxLostState,
  delay,
  killTreeThenMarked,
  PIDS_SCRIPT,
  readOomKillCount,
  resolveBoxCwd,
  RUN_MARKER_ENV,
  runBoxHelper,
  sink,
  streamEnd,
} from './boxExec';
import { PidLine } from './pidLine';

/**
 * One command run in the box, in the phases docker's own CLI has (create, attach and stream, stop, exit status):
 *
 * 1. `createRun`: the exec, with the run's marker in its environment; the box's OOM count before it.
 * 2. `attachRun`: the stream, demultiplexed into capped output (`RunOutput`), stdin written and closed.
 * 3. `RunStopper`: timeout and cancellation kill the run's tree, then the marked stragglers.
 *    `waitForRunEnd`: the run ends with its own process (stragglers may keep the pipe open), or when its box dies.
 * 4. `runExitStatus`: exit code from exec inspect, told apart from a lost box and from an OOM kill.
 */

export interface ExecOptions {
  /** Command line, run by the image's `/bin/sh -c` (with `argv`, only its label). */
  command: string;
  /**
   * The program and its arguments, run directly without a shell (the form a box on an image without `/bin/sh`
   * can run). Without the shell wrapper the run's pid is not known: timeout and cancellation then kill what
   * carries the run's marker, which needs a shell too; in a shell-less box the process is left running and the
   * run says so.
   */
  argv?: string[];
  /** Working directory relative to `/workspace`; must stay inside it. */
  cwd?: string;
  /** Written to the command's stdin, which is then closed. Without it, stdin is empty. */
  stdin?: string | Buffer;
  /** Kill the run's process tree after this long; 0 or absent = no limit. */
  timeoutMs?: number;
  /** Aborting kills the run's process tree. */
  signal?: AbortSignal;
  /** Extra `NAME=value` entries for this run only. */
  env?: string[];
  /** Bytes kept per stream; the rest is dropped behind a visible marker. */
  outputLimitBytes: number;
  /** Output as it arrives (after the cap only the marker is reported). */
  onOutput?(stream: 'stdout' | 'stderr', text: string): void;
}

/** How a run in the box ended: the run-level fields of the protocol's `ExecResult`. */
export type ExecOutcome = Pick<
  ExecResult,
  'outcome' | 'exitCode' | 'stdout' | 'stderr' | 'truncated' | 'durationMs' | 'error' | 'leftoversKilled' | 'boxLost'
>;

/**
 * The box's OOM-kill count as last read. Runs of one box share it, so the counter is read before the first
 * run only, and after a run only when it died with 137 (an extra exec on every run costs ~60 ms).
 */
export interface OomCounter {
  last?: number;
}

/**
 * The run's shell prints its own pid first (on stderr, consumed here, never shown), then becomes the
 * command with `exec`, keeping that pid. runc makes every exec process a session and process-group leader,
 * so that pid is also the pgid and sid of everything the command starts: the handle for killing the tree.
 */
const RUN_WRAPPER = 'echo "$$" >&2; exec /bin/sh -c "$1"';

/** How long a killed run may take to close its streams before they are torn down. */
const STREAM_GRACE_MS = 5_000;
/** How long to wait for the run's pid line before killing blind is pointless. */
const PID_WAIT_MS = 5_000;
/** How often a run's own process is checked for having exited while its output pipe stays open. */
const MAIN_EXIT_POLL_MS = 1_000;
/** A run's exec inspect; it hangs when a gVisor box died under the run. */
const RUN_CHECK_TIMEOUT_MS = 5_000;
/** Every this many polls of a still-running run, the box itself is checked too (see `waitForRunEnd`). */
const BOX_CHECK_EVERY_POLLS = 3;
/** After the run's process has exited, the stream is dropped once it has been quiet this long. */
const MAIN_EXIT_DRAIN_MS = 500;

/**
 * Runs one command in the box: streams demultiplexed output (capped), writes stdin then closes it, enforces
 * timeout and cancellation by killing the run's whole process tree, checks the exit code through exec
 * inspect and tells an OOM kill from other deaths. Throws only when the run could not be started.
 */
export async function runInBox(engine: DockerEngine, containerId: string, options: ExecOptions, oom: OomCounter = {}): Promise<ExecOutcome> {
  const workingDir = resolveBoxCwd(options.cwd);
  if (!Number.isInteger(options.outputLimitBytes) || options.outputLimitBytes < 1) {
    throw new SandboxError('invalid-setting', 'agentSandbox.outputLimitKiB must be at least 1.', { setting: 'agentSandbox.outputLimitKiB' });
  }
  const started = Date.now();
  const cancelledBeforeStart = (): ExecOutcome => ({
    outcome: 'cancelled',
    exitCode: null,
    stdout: '',
    stderr: '',
    truncated: false,
    durationMs: Date.now() - started,
  });
  if (options.signal?.aborted) return cancelledBeforeStart();

  const created = await createRun(engine, containerId, options, workingDir, oom);
  if (created === 'cancelled') return cancelledBeforeStart();

  const output = new RunOutput(options);
  const attached = await attachRun(engine, created.exec, options, output);
  const stopper = new RunStopper(options, attached, (pid) => killTreeThenMarked(engine, containerId, pid, created.marker), output.pid);
  const { leftBehind } = await waitForRunEnd(engine, containerId, created.exec, attached, stopper);
  // Processes the run left behind may keep running (a dev server), unless they fill the pids limit: a fork
  // bomb whose own process exited at once would otherwise hold the box until it is reset.
  let leftoversKilled = false;
  if (leftBehind && !stopper.stopped && (await pidsNearlyFull(engine, containerId))) {
    const pid = await Promise.race([output.pid, delay(0).then(() => undefined)]);
    leftoversKilled = (await killTreeThenMarked(engine, containerId, pid, created.marker)) === undefined;
  }
  output.finish();

  const result = (outcome: RunOutcome, exitCode: number | null, error?: string): ExecOutcome => ({
    outcome,
    exitCode,
    stdout: output.stdout.text,
    stderr: output.stderr.text,
    truncated: output.stdout.truncated || output.stderr.truncated,
    durationMs: Date.now() - started,
    ...(error ? { error } : {}),
    ...(leftoversKilled ? { leftoversKilled } : {}),
  });
  return runExitStatus(engine, containerId, created, { stopper, streamError: attached.error }, result, oom);
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Create.

interface CreatedRun {
  exec: Dockerode.Exec;
  /** `AGENT_SANDBOX_RUN=<random>`: what the run's processes carry, for killing those that left its session. */
  marker: string;
  /** The box's OOM-kill count before the run (-1 when it cannot be read). */
  oomBefore: number;
}

async function createRun(
  engine: DockerEngine,
  containerId: string,
  options: ExecOptions,
  workingDir: string,
  oom: OomCounter,
): Promise<CreatedRun | 'cancelled'> {
  // Timeout and cancellation also kill what left the run's session while its parent lived no longer.
  const marker = `${RUN_MARKER_ENV}=${randomBytes(12).toString('hex')}`;
  const hasStdin = options.stdin !== undefined;
  try {
    const [oomBefore, exec] = await Promise.all([
      oom.last !== undefined ? oom.last : readOomKillCount(engine, containerId),
      engine.call(
        'creating a run in the box',
        (docker, abortSignal) =>
          docker.getContainer(containerId).exec({
            Cmd: options.argv ? [...options.argv] : ['/bin/sh', '-c', RUN_WRAPPER, 'agent-sandbox-run', options.command],
            AttachStdin: hasStdin,
            AttachStdout: true,
            AttachStderr: true,
            Tty: false,
            Env: [...(options.env ?? []), marker],
            WorkingDir: workingDir,
            abortSignal,
          } as Dockerode.ExecCreateOptions),
        { signal: options.signal },
      ),
    ]);
    return { exec, marker, oomBefore };
  } catch (error) {
    if (SandboxError.is(error, 'cancelled')) return 'cancelled';
    throw boxGoneError(error);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Attach and stream.

/** The run's two output streams, capped, and the wrapper's pid line read off the front of stderr. */
class RunOutput {
  readonly stdout: OutputCollector;
  readonly stderr: OutputCollector;
  /** Only the shell wrapper prints the pid line; an argv run's stderr is all its own. */
  private readonly pidLine: PidLine | undefined;

  constructor(options: ExecOptions) {
    this.stdout = new OutputCollector(options.outputLimitBytes, (text) => options.onOutput?.('stdout', text));
    this.stderr = new OutputCollector(options.outputLimitBytes, (text) => options.onOutput?.('stderr', text));
    this.pidLine = options.argv ? undefined : new PidLine();
  }

  /** The run's pid in the box, when its wrapper printed it. */
  get pid(): Promise<number | undefined> {
    return this.pidLine?.pid ?? Promise.resolve(undefined);
  }

  pushStderr(chunk: Buffer): void {
    const output = this.pidLine ? this.pidLine.take(chunk) : chunk;
    if (output.length > 0) this.stderr.push(output);
  }

  /** The stream ended: what the pid line held back is output, and both texts are complete. */
  finish(): void {
    const held = this.pidLine?.end();
    if (held && held.length > 0) this.stderr.push(held);
    this.stdout.finish();
    this.stderr.finish();
  }
}

interface AttachedRun {
  stream: NodeJS.ReadWriteStream & { destroy?(): void };
  /** Resolves when the stream ended, closed or failed. */
  done: Promise<void>;
  /** The stream's error, if it failed. */
  readonly error: unknown;
  /** When output last arrived (ms since the epoch). */
  readonly lastDataAt: number;
}

async function attachRun(engine: DockerEngine, exec: Dockerode.Exec, options: ExecOptions, output: RunOutput): Promise<AttachedRun> {
  const hasStdin = options.stdin !== undefined;
  let lastDataAt = Date.now();
  const stream = await engine
    .call(
      'starting a run in the box',
      async (docker, abortSignal) => {
        const s = (await exec.start({ hijack: hasStdin, stdin: hasStdin, abortSignal })) as NodeJS.ReadWriteStream & { destroy?(): void };
        s.on('data', () => (lastDataAt = Date.now()));
        docker.modem.demuxStream(
          s,
          sink((c) => output.stdout.push(c)),
          sink((c) => output.pushStderr(c)),
        );
        return s;
      },
      // No signal here: once started, only the tree killer may stop the run, or it would be orphaned.
    )
    .catch((error: unknown) => {
      throw boxGoneError(error);
    });

  const end = streamEnd(stream);

  if (hasStdin) {
    const data = typeof options.stdin === 'string' ? Buffer.from(options.stdin, 'utf8') : (options.stdin as Buffer);
    // Half-closing the hijacked connection is what makes the engine close the process's stdin.
    if (data.length > 0) stream.end(data);
    else stream.end();
  }
  return {
    stream,
    done: end.done,
    get error() {
      return end.error;
    },
    get lastDataAt() {
      return lastDataAt;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Stop, and wait for the end.

/** Timeout and cancellation: the first of them kills the run's tree (then its marked stragglers), once. */
class RunStopper {
  stopped: 'timeout' | 'cancelled' | undefined;
  /** What the kill reported when it could not kill (e.g. a box that died meanwhile). */
  killError: unknown;
  /** Settles when the kill and the grace for the stream to close are over. */
  stopping: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly onAbort = (): void => this.stop('cancelled');

  constructor(
    private readonly options: ExecOptions,
    private readonly attached: AttachedRun,
    private readonly kill: (pid: number | undefined) => Promise<unknown>,
    private readonly pid: Promise<number | undefined>,
  ) {
    this.timer = options.timeoutMs && options.timeoutMs > 0 ? setTimeout(() => this.stop('timeout'), options.timeoutMs) : undefined;
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (options.signal?.aborted) this.onAbort();
  }

  stop(why: 'timeout' | 'cancelled'): void {
    if (this.stopped) return;
    this.stopped = why;
    this.stopping = (async () => {
      const pid = await Promise.race([this.pid, delay(PID_WAIT_MS).then(() => undefined)]);
      this.killError = await this.kill(pid);
      const closed = await Promise.race([this.attached.done.then(() => true), delay(STREAM_GRACE_MS).then(() => false)]);
      // Something escaped the tree and still holds the output pipe; stop listening to it.
      if (!closed) this.attached.stream.destroy?.();
    })();
  }

  /** The run's stream is over: no timeout or cancellation may start a kill any more. */
  dispose(): void {
    clearTimeout(this.timer);
    this.options.signal?.removeEventListener('abort', this.onAbort);
  }
}

/**
 * Waits until the run is over. A command that leaves a background process behind (`server &`) would keep the
 * output pipe, and so the run, open forever: like a shell, the run ends when its own process does (found by
 * polling exec inspect; output written before the exit is drained first), and stragglers keep running
 * (`leftBehind`). Every few polls the box itself is checked: gVisor leaves the exec of a box that died hanging.
 */
async function waitForRunEnd(
  engine: DockerEngine,
  containerId: string,
  exec: Dockerode.Exec,
  attached: AttachedRun,
  stopper: RunStopper,
): Promise<{ leftBehind: boolean }> {
  let finished = false;
  let leftBehind = false;
  const watchMainProcess = (async () => {
    for (let poll = 1; !finished && !stopper.stopped; poll++) {
      await Promise.race([delay(MAIN_EXIT_POLL_MS), attached.done]);
      if (finished || stopper.stopped) return;
      if (poll % BOX_CHECK_EVERY_POLLS === 0 && (await boxLostState(engine, containerId))) {
        attached.stream.destroy?.();
        return;
      }
      let running = true;
      try {
        running = (await engine.call('checking a run', (_d, abortSignal) => exec.inspect({ abortSignal }), { timeoutMs: RUN_CHECK_TIMEOUT_MS }))
          .Running;
      } catch {
        continue;
      }
      if (!running) {
        let closed = false;
        while (!closed && !stopper.stopped) {
          const quietFor = Date.now() - attached.lastDataAt;
          if (quietFor >= MAIN_EXIT_DRAIN_MS) break;
          closed = await Promise.race([attached.done.then(() => true), delay(MAIN_EXIT_DRAIN_MS - quietFor).then(() => false)]);
        }
        if (!closed && !stopper.stopped) {
          leftBehind = true;
          attached.stream.destroy?.();
        }
        return;
      }
    }
  })();
  try {
    await attached.done;
  } finally {
    finished = true;
    stopper.dispose();
  }
  await stopper.stopping;
  await watchMainProcess;
  return { leftBehind };
}

/**
 * Whether the box's processes (nearly) fill its pids limit. A helper that cannot even start means no pid is
 * left (the runtime needs one to join the box).
 */
async function pidsNearlyFull(engine: DockerEngine, containerId: string): Promise<boolean> {
  try {
    const result = await runBoxHelper(engine, containerId, PIDS_SCRIPT);
    if (result.exitCode !== 0) return true;
    const [current, max] = result.stdout.trim().split(/\s+/).map(Number);
    return Number.isFinite(current) && Number.isFinite(max) && current * 10 >= max * 9;
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Exit status.

async function runExitStatus(
  engine: DockerEngine,
  containerId: string,
  created: CreatedRun,
  ended: { stopper: RunStopper; streamError: unknown },
  result: (outcome: RunOutcome, exitCode: number | null, error?: string) => ExecOutcome,
  oom: OomCounter,
): Promise<ExecOutcome> {
  const { stopper, streamError } = ended;
  /** The run ended because its box went away: not an exit of the command, whatever exec inspect says. */
  const lostBox = async (): Promise<ExecOutcome | undefined> => {
    const lost = await boxLostAfterRun(engine, containerId);
    if (lost === 'stopped' && (await boxStoppedOutOfMemory(engine, containerId))) {
      return { ...result('oom', 137, BOX_OUT_OF_MEMORY), boxLost: true };
    }
    return lost
      ? { ...result('engine-error', null, `The box was ${lost} during the run (from outside, or its main process was killed)`), boxLost: true }
      : undefined;
  };

  if (stopper.stopped) {
    const killError = stopper.killError;
    return (killError ? await lostBox() : undefined) ?? result(stopper.stopped, null, killError ? (killError as Error).message : undefined);
  }
  let info: Dockerode.ExecInspectInfo;
  try {
    info = await engine.call('reading the run exit code', (_docker, abortSignal) => created.exec.inspect({ abortSignal }));
  } catch (error) {
    return (await lostBox()) ?? result('engine-error', null, (error as Error).message);
  }
  // A box removed or stopped mid-run ends the run with SIGKILL's code (137) or none at all, and a gVisor box whose
  // Sentry died with 128 (runsc: "waiting on pid …: urpc method containerManager.WaitPID failed: EOF"): the box is
  // asked, so that is never reported as the command's own exit (a command's own 128, e.g. git's, costs one check).
  if (info.ExitCode === null || info.ExitCode === 137 || info.ExitCode === 128 || streamError || info.Running) {
    const lost = await lostBox();
    if (lost) return lost;
  }
  if (streamError && (info.Running || info.ExitCode === null)) {
    return result('engine-error', null, (streamError as Error).message);
  }
  if (info.Running) {
    return result('engine-error', null, "The run's output stream closed while the process was still running.");
  }
  const exitCode = info.ExitCode;
  const { oomBefore } = created;
  if (oomBefore >= 0) oom.last = oomBefore;
  if (exitCode === 137 && oomBefore >= 0) {
    const oomAfter = await readOomKillCount(engine, containerId);
    if (oomAfter >= 0) oom.last = oomAfter;
    if (oomAfter > oomBefore) return result('oom', exitCode);
  }
  return result('exited', exitCode);
}

/**
 * Why a box stopped by the OOM killer is gone. Under runc only the box's main process dying does that; under gVisor
 * the host's OOM killer takes the Sentry, gVisor's kernel, so any run past the limit stops the whole box.
 */
const BOX_OUT_OF_MEMORY =
  'The box ran out of memory and was stopped during the run (under gVisor, runtime runsc, a run past agentSandbox.memoryMiB stops the whole box; unless the box was killed from outside). Raise agentSandbox.memoryMiB if the run needs more';

/**
 * Whether the box's container was stopped by the OOM killer: the engine says so (`State.OOMKilled`), or it is a
 * gVisor box that died of SIGKILL (137), which the engine does not always flag as OOM for runsc (its OOM event
 * races the Sentry's death); an outside `docker kill` mid-run reads the same, a rare case said in the message.
 */
async function boxStoppedOutOfMemory(engine: DockerEngine, containerId: string): Promise<boolean> {
  try {
    const info = await engine.call('checking the box', (docker, abortSignal) => docker.getContainer(containerId).inspect({ abortSignal }));
    if (info.State?.Running) return false;
    return info.State?.OOMKilled === true || (isGvisorRuntime(info.HostConfig?.Runtime ?? '') && info.State?.ExitCode === 137);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Output.

/** The marker line that replaces output beyond the cap. */
export function truncationMarker(limitBytes: number): string {
  const size = limitBytes % 1024 === 0 ? `${limitBytes / 1024} KiB` : `${limitBytes} bytes`;
  return `\n[agent-sandbox: output truncated after ${size}]\n`;
}

/** Keeps up to `limit` bytes of one stream as text, reporting chunks as they come. */
class OutputCollector {
  private readonly decoder = new StringDecoder('utf8');
  private readonly parts: string[] = [];
  private kept = 0;
  truncated = false;

  constructor(
    private readonly limit: number,
    private readonly emit: (text: string) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.truncated) {
      return;
    }
    const room = this.limit - this.kept;
    if (chunk.length <= room) {
      this.kept += chunk.length;
      this.add(this.decoder.write(chunk));
      return;
    }
    this.kept = this.limit;
    // A character cut in half at the limit is dropped rather than shown as U+FFFD.
    this.add(this.decoder.write(chunk.subarray(0, room)));
    this.truncated = true;
    this.add(truncationMarker(this.limit));
  }

  finish(): void {
    if (!this.truncated) {
      this.add(this.decoder.end());
    }
  }

  get text(): string {
    return this.parts.join('');
  }

  private add(text: string): void {
    if (text) {
      this.parts.push(text);
      this.emit(text);
    }
  }
}
