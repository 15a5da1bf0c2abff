import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { Writable } from 'node:stream';
import type * as Dockerode from 'dockerode';
import type { ExecResult, RunOutcome } from '../../shared/protocol';
import { PidLine } from './pidLine';
import { SandboxError } from '../errors';
import type { DockerEngine } from '../docker/dockerEngine';
import { engineStatusOf } from '../docker/dockerEngine';
import { isGvisorRuntime, WORKSPACE_DIR } from './boxConfig';

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
 * The run's shell prints its own pid first (on stderr, consumed here, never shown), then becomes the
 * command with `exec`, keeping that pid. runc makes every exec process a session and process-group leader,
 * so that pid is also the pgid and sid of everything the command starts: the handle for killing the tree.
 */
const RUN_WRAPPER = 'echo "$$" >&2; exec /bin/sh -c "$1"';

/**
 * Kills a run's whole tree, given the pid of its exec process. Only shell builtins (no fork), so it also
 * works when a fork bomb has used up the pids limit (joining the cgroup is not limited, forking is).
 * Freezes the process group first so nothing forks mid-walk, then collects everything in that group or
 * session or descending from a collected process (catches children that called setsid while their parent
 * lived), freezing each as found, and finally SIGKILLs the lot. Works in busybox ash, dash and bash.
 */
export const KILL_TREE_SCRIPT = `
P="$1"
case "$P" in ''|*[!0-9]*) exit 2;; esac
kill -s STOP -- "-$P" 2>/dev/null
kill -s STOP "$P" 2>/dev/null
S=" $P "
n=0
while [ "$n" -lt 30 ]; do
  n=$((n+1))
  changed=0
  for f in /proc/[0-9]*/stat; do
    pid=\${f#/proc/}; pid=\${pid%/stat}
    case "$S" in *" $pid "*) continue;; esac
    line=
    read -r line 2>/dev/null < "$f"
    [ -n "$line" ] || continue
    rest=\${line##*) }
    set -- $rest
    hit=0
    [ "$3" = "$P" ] && hit=1
    [ "$4" = "$P" ] && hit=1
    case "$S" in *" $2 "*) hit=1;; esac
    if [ "$hit" = 1 ]; then
      kill -s STOP "$pid" 2>/dev/null
      S="$S$pid "
      changed=1
    fi
  done
  [ "$changed" = 0 ] && break
done
for pid in $S; do kill -s KILL "$pid" 2>/dev/null; done
kill -s KILL -- "-$P" 2>/dev/null
exit 0
`;

/** Name of the variable that marks every process a run starts (children inherit it); terminals have their own. */
export const RUN_MARKER_ENV = 'AGENT_SANDBOX_RUN';

/**
 * Kills every process whose environment carries the marker `$1` (`NAME=token`). This catches what the tree
 * walk cannot: a process that double-forked into its own session after its parent exited (`(setsid cmd &)`,
 * daemons, Node's `spawn(..., { detached: true })` from a parent that is gone). Freezes each one as found so
 * nothing forks mid-walk, then SIGKILLs them. A process can only escape by clearing its environment, which is
 * a deliberate act, not an accident. The helper's own environment never carries the marker.
 */
export const KILL_MARKED_SCRIPT = `
M="$1"
[ -n "$M" ] || exit 2
S=" "
n=0
while [ "$n" -lt 10 ]; do
  n=$((n+1))
  changed=0
  for f in /proc/[0-9]*/environ; do
    pid=\${f#/proc/}; pid=\${pid%/environ}
    [ "$pid" = "$$" ] && continue
    case "$S" in *" $pid "*) continue;; esac
    # environ is NUL-separated, and busybox grep stops at a NUL: one variable per line first.
    if tr '\\000' '\\n' < "$f" 2>/dev/null | grep -q -x -F "$M"; then
      kill -s STOP "$pid" 2>/dev/null
      S="$S$pid "
      changed=1
    fi
  done
  [ "$changed" = 0 ] && break
done
for pid in $S; do kill -s KILL "$pid" 2>/dev/null; done
exit 0
`;

/** Prints the box cgroup's OOM-kill counter (cgroup v2 `memory.events`, v1 `memory.oom_control`), or -1. */
export const OOM_COUNT_SCRIPT = `
for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do
  if [ -r "$f" ]; then
    while read -r k v; do
      if [ "$k" = oom_kill ]; then echo "$v"; exit 0; fi
    done < "$f"
  fi
done
echo -1
`;

/** Prints "<current> <max>" of the box cgroup's pids controller (v2 or v1), or "unknown". Builtins only. */
export const PIDS_SCRIPT = `
for d in /sys/fs/cgroup /sys/fs/cgroup/pids; do
  if [ -r "$d/pids.current" ] && [ -r "$d/pids.max" ]; then
    read -r c < "$d/pids.current"; read -r m < "$d/pids.max"; echo "$c $m"; exit 0
  fi
done
echo unknown
`;

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

/**
 * A fork bomb holds every pid of the box; the killer's exec then fails to start now and then (the runtime
 * needs a pid of its own to join the box), and a retry gets a slot freed by a bomb process that exited.
 */
const KILL_ATTEMPTS = 10;
const KILL_RETRY_MS = 200;
/** How long a killed run may take to close its streams before they are torn down. */
const STREAM_GRACE_MS = 5_000;
/** How long to wait for the run's pid line before killing blind is pointless. */
const PID_WAIT_MS = 5_000;
const HELPER_TIMEOUT_MS = 15_000;
/** How often a run's own process is checked for having exited while its output pipe stays open. */
const MAIN_EXIT_POLL_MS = 1_000;
/** A run's exec inspect; it hangs when a gVisor box died under the run. */
const RUN_CHECK_TIMEOUT_MS = 5_000;
/** Every this many polls of a still-running run, the box itself is checked too (see watchMainProcess). */
const BOX_CHECK_EVERY_POLLS = 3;
/** After the run's process has exited, the stream is dropped once it has been quiet this long. */
const MAIN_EXIT_DRAIN_MS = 500;

/** Resolves `cwd` (relative to /workspace) to an absolute path inside it, or throws `path-outside-workspace`. */
export function resolveBoxCwd(cwd: string | undefined): string {
  if (cwd === undefined || cwd === '' || cwd === '.') {
    return WORKSPACE_DIR;
  }
  if (cwd.includes('\0')) {
    throw new SandboxError('path-outside-workspace', `Working directory ${JSON.stringify(cwd)} contains a NUL character.`);
  }
  const posix = cwd.replace(/\\/g, '/');
  const resolved = path.posix.resolve(WORKSPACE_DIR, posix);
  if (resolved !== WORKSPACE_DIR && !resolved.startsWith(`${WORKSPACE_DIR}/`)) {
    throw new SandboxError(
      'path-outside-workspace',
      `Working directory ${JSON.stringify(cwd)} is outside /workspace. Use a path relative to the workspace root, e.g. "src".`,
    );
  }
  return resolved;
}

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

/** Runs a small helper script in the box and returns its stdout (helpers print little). */
export async function runBoxHelper(
  engine: DockerEngine,
  containerId: string,
  script: string,
  args: string[] = [],
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  const result = await runBoxHelperRaw(engine, containerId, script, args, { ...options, maxStdoutBytes: HELPER_STDOUT_CAP });
  return { exitCode: result.exitCode, stdout: result.stdout.toString('utf8'), stderr: result.stderr };
}

/** What a helper printing little may print before it is stopped. */
const HELPER_STDOUT_CAP = 16 * 1024 * 1024;
/** Stderr kept from a raw helper (for messages only). */
const HELPER_STDERR_CAP = 64 * 1024;

/**
 * Runs a helper script in the box as the box user and returns its stdout as raw bytes (names the box makes
 * need not be UTF-8). Output beyond `maxStdoutBytes` fails the call with `engine-error` rather than being
 * cut: a cut listing would silently lose paths.
 */
export async function runBoxHelperRaw(
  engine: DockerEngine,
  containerId: string,
  script: string,
  args: string[],
  options: { timeoutMs?: number; signal?: AbortSignal; maxStdoutBytes: number },
): Promise<{ exitCode: number | null; stdout: Buffer; stderr: string }> {
  const timeoutMs = options.timeoutMs ?? HELPER_TIMEOUT_MS;
  return engine.call(
    'running a helper in the box',
    async (docker, abortSignal) => {
      const exec = await docker.getContainer(containerId).exec({
        Cmd: ['/bin/sh', '-c', script, 'agent-sandbox-helper', ...args],
        AttachStdout: true,
        AttachStderr: true,
        abortSignal,
      } as Dockerode.ExecCreateOptions);
      const stream = (await exec.start({ hijack: false, stdin: false, abortSignal })) as NodeJS.ReadableStream & { destroy?(error?: Error): void };
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outBytes = 0;
      let errBytes = 0;
      let overflow = false;
      await new Promise<void>((resolve, reject) => {
        docker.modem.demuxStream(
          stream,
          sink((c) => {
            outBytes += c.length;
            if (outBytes > options.maxStdoutBytes) {
              if (!overflow) {
                overflow = true;
                stream.destroy?.();
                resolve();
              }
              return;
            }
            out.push(c);
          }),
          sink((c) => {
            if (errBytes < HELPER_STDERR_CAP) err.push(c);
            errBytes += c.length;
          }),
        );
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', (error) => (overflow ? resolve() : reject(error)));
      });
      if (overflow) {
        throw new SandboxError('engine-error', `A helper in the box printed more than ${options.maxStdoutBytes} bytes; its output was not used.`);
      }
      const info = await exec.inspect({ abortSignal });
      return {
        exitCode: info.Running ? null : info.ExitCode,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
      };
    },
    { timeoutMs, signal: options.signal },
  );
}

/** Kills the process tree of a run whose exec process has `pid` (as seen inside the box). */
export async function killRunTree(engine: DockerEngine, containerId: string, pid: number): Promise<void> {
  const result = await runBoxHelper(engine, containerId, KILL_TREE_SCRIPT, [String(pid)]);
  if (result.exitCode !== 0) {
    throw new SandboxError('engine-error', `Could not kill run ${pid} in the box (exit ${result.exitCode}): ${result.stderr.trim()}`);
  }
}

/**
 * Kills a run's or terminal's process tree (by its pid, with retries: under a fork bomb the killer's own exec may
 * fail to start until a slot frees) and then every process carrying its marker (`NAME=value`, the variable its
 * processes inherit). Resolves with the last error, if any; never throws.
 */
export async function killTreeThenMarked(engine: DockerEngine, containerId: string, pid: number | undefined, marker: string): Promise<unknown> {
  let failure: unknown;
  if (pid !== undefined) {
    for (let attempt = 1; attempt <= KILL_ATTEMPTS; attempt++) {
      try {
        await killRunTree(engine, containerId, pid);
        failure = undefined;
        break;
      } catch (error) {
        failure = error;
        await delay(KILL_RETRY_MS);
      }
    }
  }
  // After the tree: under a fork bomb only the builtin-only tree walk can run; then forks work again.
  await runBoxHelper(engine, containerId, KILL_MARKED_SCRIPT, [marker]).catch((error: unknown) => {
    failure ??= error;
  });
  return failure;
}

/** The box's OOM-kill counter, or -1 when the cgroup files are not visible (e.g. another runtime). */
export async function readOomKillCount(engine: DockerEngine, containerId: string): Promise<number> {
  try {
    const result = await runBoxHelper(engine, containerId, OOM_COUNT_SCRIPT);
    const count = Number.parseInt(result.stdout.trim(), 10);
    return Number.isFinite(count) ? count : -1;
  } catch {
    return -1;
  }
}

/**
 * The box's OOM-kill count as last read. Runs of one box share it, so the counter is read before the first
 * run only, and after a run only when it died with 137 (an extra exec on every run costs ~60 ms).
 */
export interface OomCounter {
  last?: number;
}

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
  const hasStdin = options.stdin !== undefined;
  // Timeout and cancellation also kill what left the run's session while its parent lived no longer.
  const marker = `${RUN_MARKER_ENV}=${randomBytes(12).toString('hex')}`;
  const cancelledBeforeStart = (): ExecOutcome => ({
    outcome: 'cancelled',
    exitCode: null,
    stdout: '',
    stderr: '',
    truncated: false,
    durationMs: Date.now() - started,
  });
  if (options.signal?.aborted) {
    return cancelledBeforeStart();
  }
  let oomBefore: number;
  let exec: Dockerode.Exec;
  try {
    [oomBefore, exec] = await Promise.all([
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
  } catch (error) {
    if (SandboxError.is(error, 'cancelled')) {
      return cancelledBeforeStart();
    }
    throw boxGoneError(error);
  }

  const stdout = new OutputCollector(options.outputLimitBytes, (text) => options.onOutput?.('stdout', text));
  const stderr = new OutputCollector(options.outputLimitBytes, (text) => options.onOutput?.('stderr', text));
  // Only the shell wrapper prints the pid line; an argv run's stderr is all its own.
  const pidLine = options.argv ? undefined : new PidLine();
  const pidKnown = pidLine?.pid ?? Promise.resolve(undefined);
  const onStderr = (chunk: Buffer): void => {
    const output = pidLine ? pidLine.take(chunk) : chunk;
    if (output.length > 0) stderr.push(output);
  };

  let lastDataAt = Date.now();
  const stream = await engine
    .call(
      'starting a run in the box',
      async (docker, abortSignal) => {
        const s = (await exec.start({ hijack: hasStdin, stdin: hasStdin, abortSignal })) as NodeJS.ReadWriteStream & { destroy?(): void };
        s.on('data', () => (lastDataAt = Date.now()));
        docker.modem.demuxStream(
          s,
          sink((c) => stdout.push(c)),
          sink(onStderr),
        );
        return s;
      },
      // No signal here: once started, only the tree killer below may stop the run, or it would be orphaned.
    )
    .catch((error: unknown) => {
      throw boxGoneError(error);
    });

  let streamError: unknown;
  const streamDone = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', (error) => {
      streamError ??= error;
      resolve();
    });
  });

  if (hasStdin) {
    const data = typeof options.stdin === 'string' ? Buffer.from(options.stdin, 'utf8') : (options.stdin as Buffer);
    // Half-closing the hijacked connection is what makes the engine close the process's stdin.
    if (data.length > 0) {
      stream.end(data);
    } else {
      stream.end();
    }
  }

  const killRun = (pid: number | undefined): Promise<unknown> => killTreeThenMarked(engine, containerId, pid, marker);

  let stopped: 'timeout' | 'cancelled' | undefined;
  let killError: unknown;
  let stopping: Promise<void> | undefined;
  const stop = (why: 'timeout' | 'cancelled'): void => {
    if (stopped) {
      return;
    }
    stopped = why;
    stopping = (async () => {
      const pid = await Promise.race([pidKnown, delay(PID_WAIT_MS).then(() => undefined)]);
      killError = await killRun(pid);
      const closed = await Promise.race([streamDone.then(() => true), delay(STREAM_GRACE_MS).then(() => false)]);
      if (!closed) {
        // Something escaped the tree and still holds the output pipe; stop listening to it.
        stream.destroy?.();
      }
    })();
  };
  const timer = options.timeoutMs && options.timeoutMs > 0 ? setTimeout(() => stop('timeout'), options.timeoutMs) : undefined;
  const onAbort = (): void => stop('cancelled');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) {
    onAbort();
  }

  // A command that leaves a background process behind (`server &`) would keep the output pipe, and so the
  // run, open forever. Like a shell, the run ends when its own process does; stragglers keep running.
  let finished = false;
  let leftBehind = false;
  const watchMainProcess = (async () => {
    for (let poll = 1; !finished && !stopped; poll++) {
      await Promise.race([delay(MAIN_EXIT_POLL_MS), streamDone]);
      if (finished || stopped) {
        return;
      }
      if (poll % BOX_CHECK_EVERY_POLLS === 0 && (await boxLostState(engine, containerId))) {
        // gVisor leaves the exec of a box that died (its Sentry killed) hanging and its stream open for good.
        stream.destroy?.();
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
        // Output written before the exit may still be in flight: wait until the stream has been quiet a while.
        let closed = false;
        while (!closed && !stopped) {
          const quietFor = Date.now() - lastDataAt;
          if (quietFor >= MAIN_EXIT_DRAIN_MS) {
            break;
          }
          closed = await Promise.race([streamDone.then(() => true), delay(MAIN_EXIT_DRAIN_MS - quietFor).then(() => false)]);
        }
        if (!closed && !stopped) {
          leftBehind = true;
          stream.destroy?.();
        }
        return;
      }
    }
  })();

  try {
    await streamDone;
  } finally {
    finished = true;
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
  await stopping;
  await watchMainProcess;
  // Processes the run left behind may keep running (a dev server), unless they fill the pids limit: a fork
  // bomb whose own process exited at once would otherwise hold the box until it is reset.
  let leftoversKilled = false;
  if (leftBehind && !stopped && (await pidsNearlyFull(engine, containerId))) {
    const pid = await Promise.race([pidKnown, delay(0).then(() => undefined)]);
    leftoversKilled = (await killRun(pid)) === undefined;
  }
  const held = pidLine?.end();
  if (held && held.length > 0) stderr.push(held);
  stdout.finish();
  stderr.finish();

  const truncated = stdout.truncated || stderr.truncated;
  const result = (outcome: RunOutcome, exitCode: number | null, error?: string): ExecOutcome => ({
    outcome,
    exitCode,
    stdout: stdout.text,
    stderr: stderr.text,
    truncated,
    durationMs: Date.now() - started,
    ...(error ? { error } : {}),
    ...(leftoversKilled ? { leftoversKilled } : {}),
  });
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

  if (stopped) {
    return (killError ? await lostBox() : undefined) ?? result(stopped, null, killError ? (killError as Error).message : undefined);
  }
  let info: Dockerode.ExecInspectInfo;
  try {
    info = await engine.call('reading the run exit code', (_docker, abortSignal) => exec.inspect({ abortSignal }));
  } catch (error) {
    return (await lostBox()) ?? result('engine-error', null, (error as Error).message);
  }
  // A box removed or stopped mid-run ends the run with SIGKILL's code (137) or none at all: the box is asked,
  // so that is never reported as the command's own exit.
  if (info.ExitCode === null || info.ExitCode === 137 || streamError || info.Running) {
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
  if (oomBefore >= 0) oom.last = oomBefore;
  if (exitCode === 137 && oomBefore >= 0) {
    const oomAfter = await readOomKillCount(engine, containerId);
    if (oomAfter >= 0) oom.last = oomAfter;
    if (oomAfter > oomBefore) {
      return result('oom', exitCode);
    }
  }
  return result('exited', exitCode);
}

/** How long the engine may take to report a killed box as stopped after its processes died. */
const BOX_STATE_LAG_MS = 3_000;

/**
 * After a run ended the way a killed box ends runs: `removed` or `stopped` when the box is gone. A helper that
 * runs in the box proves it alive at once; when none can run, the engine's container state decides, polled for
 * a moment because it lags the kill (the run's exec can end before the engine marks the container stopped).
 */
export async function boxLostAfterRun(engine: DockerEngine, containerId: string): Promise<'removed' | 'stopped' | undefined> {
  let unreachable = false;
  const alive = await runBoxHelper(engine, containerId, 'true', [], { timeoutMs: 10_000 }).then(
    (result) => result.exitCode === 0,
    (error: unknown) => {
      unreachable = SandboxError.is(error, 'engine-unreachable');
      return false;
    },
  );
  // Without an engine nothing can be told about the box; the caller reports the engine's error.
  if (alive || unreachable) return undefined;
  const started = Date.now();
  for (;;) {
    const lost = await boxLostState(engine, containerId);
    if (lost || Date.now() - started >= BOX_STATE_LAG_MS) return lost;
    await delay(100);
  }
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

/** `removed` or `stopped` when the box's container is gone or no longer running; `undefined` while it runs (or cannot be told). */
export async function boxLostState(engine: DockerEngine, containerId: string): Promise<'removed' | 'stopped' | undefined> {
  try {
    const info = await engine.call('checking the box', (docker, abortSignal) => docker.getContainer(containerId).inspect({ abortSignal }));
    return info.State?.Running && !info.State.Restarting ? undefined : 'stopped';
  } catch (error) {
    return engineStatusOf(error) === 404 ? 'removed' : undefined;
  }
}

/** 404/409 on a box container: it was removed or its main process ended (a command may have killed it). */
export function boxGoneError(error: unknown): unknown {
  const status = engineStatusOf(error);
  if (status === 404 || status === 409) {
    return new SandboxError(
      'no-box',
      `The box is gone or has stopped (${(error as Error).message}). Reset the box (Agent Sandbox: Reset Box) to start a fresh one.`,
      { cause: error },
    );
  }
  return error;
}

export function sink(onChunk: (chunk: Buffer) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      onChunk(chunk);
      callback();
    },
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
