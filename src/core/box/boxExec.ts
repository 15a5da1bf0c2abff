import * as path from 'node:path';
import { Writable } from 'node:stream';
import type * as Dockerode from 'dockerode';
import { SandboxError } from '../errors';
import type { DockerEngine } from '../docker/dockerEngine';
import { engineStatusOf } from '../docker/dockerEngine';
import { WORKSPACE_DIR } from './boxConfig';

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
 * A fork bomb holds every pid of the box; the killer's exec then fails to start now and then (the runtime
 * needs a pid of its own to join the box), and a retry gets a slot freed by a bomb process that exited.
 */
const KILL_ATTEMPTS = 10;
const KILL_RETRY_MS = 200;
const HELPER_TIMEOUT_MS = 15_000;
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
/** A helper script's exit status (null: still running) and output. */
export interface BoxHelperResult {
  exitCode: number | null;
  stdout: Buffer;
  stderr: string;
}

export async function runBoxHelperRaw(
  engine: DockerEngine,
  containerId: string,
  script: string,
  args: string[],
  options: { timeoutMs?: number; signal?: AbortSignal; maxStdoutBytes: number },
): Promise<BoxHelperResult> {
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

/**
 * When an exec's stream is over: ended, closed or failed (never rejects). `error` is its first error, if any:
 * callers decide what a failed stream means for their run.
 */
export function streamEnd(stream: NodeJS.EventEmitter): { done: Promise<void>; readonly error: unknown } {
  let error: unknown;
  const done = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', (e: unknown) => {
      error ??= e;
      resolve();
    });
  });
  return {
    done,
    get error() {
      return error;
    },
  };
}

export function sink(onChunk: (chunk: Buffer) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      onChunk(chunk);
      callback();
    },
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
