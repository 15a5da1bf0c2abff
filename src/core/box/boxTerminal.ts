import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type * as Dockerode from 'dockerode';
import { SandboxError } from '../errors';
import { Disposable, toDisposable } from '../lifecycle';
import type { DockerEngine } from '../docker/dockerEngine';
import { boxGoneError, killTreeThenMarked, resolveBoxCwd, runBoxHelper, streamEnd } from './boxExec';
import { PidLine } from './pidLine';

/** Shells tried in order; the first one the image has runs the terminal. */
export const TERMINAL_SHELLS = ['bash', 'sh'] as const;

/**
 * The terminal's exec process prints its own pid on the first line (the output is a TTY, so it arrives with
 * the rest and is consumed here, never shown), sets the initial size on its TTY before any program reads it,
 * then becomes the shell or command with `exec`, keeping that pid. runc makes each exec process a session
 * and process-group leader, so that pid is the handle `killRunTree` kills the whole tree by.
 * `$1` = rows, `$2` = cols, `$3` = shell, `$4` = command for `shell -c` (empty: an interactive shell).
 */
const TERMINAL_WRAPPER = 'echo "$$"; stty rows "$1" cols "$2" 2>/dev/null; if [ -n "$4" ]; then exec "$3" -c "$4"; fi; exec "$3" -i';

/** Name of the variable that marks every process a terminal starts (children inherit it). */
export const TERMINAL_MARKER_ENV = 'AGENT_SANDBOX_TERMINAL';

/** How often the shell's exec is checked for having exited while background jobs keep the TTY open. */
const EXIT_POLL_MS = 1_000;
/** How long the pid line may take before the terminal counts as broken. */
const PID_WAIT_MS = 10_000;

export interface BoxTerminalOptions {
  /** Initial size of the TTY. */
  cols: number;
  rows: number;
  /** Shell to run (an absolute path or a name on the image's PATH); see `findTerminalShell`. */
  shell: string;
  /** Run this command with `shell -c` instead of an interactive shell; the terminal ends when it does. */
  command?: string;
  /** Working directory relative to `/workspace`. */
  cwd?: string;
  /** Extra `NAME=value` entries for this terminal only. */
  env?: string[];
  /** Output of the TTY as it arrives (UTF-8, characters never split across calls). */
  onData(data: string): void;
  /** The shell (or command) ended; `null` when its exit code could not be read. Called once. */
  onExit(exitCode: number | null): void;
}

/** The first of `TERMINAL_SHELLS` the box's image has, by `command -v`. */
export async function findTerminalShell(engine: DockerEngine, containerId: string, signal?: AbortSignal): Promise<string> {
  const script = `for s in ${TERMINAL_SHELLS.join(' ')}; do p=$(command -v "$s" 2>/dev/null) && { echo "$p"; exit 0; }; done; exit 1`;
  const result = await runBoxHelper(engine, containerId, script, [], { signal }).catch((error: unknown) => {
    throw boxGoneError(error);
  });
  const found = result.stdout.trim().split('\n')[0];
  if (result.exitCode !== 0 || !found) {
    throw new SandboxError(
      'not-found',
      `The box's image has no shell (${TERMINAL_SHELLS.join(', ')}). Choose an image with one in agentSandbox.image.`,
      {
        setting: 'agentSandbox.image',
      },
    );
  }
  return found;
}

/** True when `program` (the first word of a command line) is on the box's PATH. */
export async function boxHasProgram(engine: DockerEngine, containerId: string, program: string, signal?: AbortSignal): Promise<boolean> {
  const result = await runBoxHelper(engine, containerId, 'command -v "$1" >/dev/null 2>&1', [program], { signal }).catch((error: unknown) => {
    throw boxGoneError(error);
  });
  return result.exitCode === 0;
}

/**
 * An interactive process in the box on a TTY: input in, output out, resize, and close that kills the whole
 * process tree it started. It ends when its own process exits, even if background jobs still hold the TTY;
 * those jobs are killed then too, so a terminal leaves no process behind.
 */
export class BoxTerminal extends Disposable {
  private stream: (NodeJS.ReadWriteStream & { destroy?(): void }) | undefined;
  private pid: number | undefined;
  private readonly pending: string[] = [];
  private ended = false;
  /** Input is held back until the pid line has come (or the wait for it gave up). */
  private ready = false;
  private closing: Promise<void> | undefined;
  private wantedSize: { cols: number; rows: number } | undefined;
  private resizing: Promise<void> | undefined;
  private readonly exitPromise: Promise<number | null>;
  private resolveExit: (code: number | null) => void = () => undefined;

  private constructor(
    private readonly engine: DockerEngine,
    private readonly containerId: string,
    private readonly exec: Dockerode.Exec,
    /** Token in `AGENT_SANDBOX_TERMINAL` of every process this terminal starts. */
    readonly marker: string,
    private readonly options: BoxTerminalOptions,
  ) {
    super();
    this.exitPromise = new Promise((resolve) => (this.resolveExit = resolve));
    this._register(toDisposable(() => void this.close()));
  }

  /** Starts the process; throws only when it could not be started. */
  static async start(engine: DockerEngine, containerId: string, options: BoxTerminalOptions, signal?: AbortSignal): Promise<BoxTerminal> {
    const workingDir = resolveBoxCwd(options.cwd);
    const marker = randomBytes(12).toString('hex');
    const { cols, rows } = clampSize(options.cols, options.rows);
    const exec = await engine
      .call(
        'creating a terminal in the box',
        (docker, abortSignal) =>
          docker.getContainer(containerId).exec({
            Cmd: ['/bin/sh', '-c', TERMINAL_WRAPPER, 'agent-sandbox-terminal', String(rows), String(cols), options.shell, options.command ?? ''],
            AttachStdin: true,
            AttachStdout: true,
            AttachStderr: true,
            Tty: true,
            Env: [...(options.env ?? []), `${TERMINAL_MARKER_ENV}=${marker}`],
            WorkingDir: workingDir,
            abortSignal,
          } as Dockerode.ExecCreateOptions),
        { signal },
      )
      .catch((error: unknown) => {
        throw boxGoneError(error);
      });
    const terminal = new BoxTerminal(engine, containerId, exec, marker, options);
    await terminal.attach(signal);
    return terminal;
  }

  /** Resolves with the exit code when the process has ended (and its tree was killed). */
  get exited(): Promise<number | null> {
    return this.exitPromise;
  }

  /** The process's pid inside the box (its session and process group id), once known. */
  get processId(): number | undefined {
    return this.pid;
  }

  private async attach(signal?: AbortSignal): Promise<void> {
    const stream = await this.engine
      .call(
        'starting a terminal in the box',
        // With a TTY the engine sends raw output, not the multiplexed stdout/stderr frames.
        async (_docker, abortSignal) =>
          (await this.exec.start({ hijack: true, stdin: true, Tty: true, abortSignal } as Dockerode.ExecStartOptions)) as NodeJS.ReadWriteStream & {
            destroy?(): void;
          },
        { signal },
      )
      .catch((error: unknown) => {
        throw boxGoneError(error);
      });
    this.stream = stream;
    const decoder = new StringDecoder('utf8');
    const pidLine = new PidLine();
    void pidLine.pid.then((pid) => (this.pid = pid));
    stream.on('data', (data: Buffer) => {
      const chunk = pidLine.take(data);
      const text = decoder.write(chunk);
      if (text) this.options.onData(text);
    });
    const streamDone = streamEnd(stream).done;
    void streamDone.then(() => {
      const held = pidLine.end();
      const tail = decoder.write(held) + decoder.end();
      if (tail) this.options.onData(tail);
      void this.finish();
    });
    void this.watchExit(streamDone);
    await Promise.race([pidLine.pid, delay(PID_WAIT_MS)]);
    // Input typed before the process was ready is sent now, after the pid line, so it is never echoed into it.
    this.ready = true;
    for (const data of this.pending.splice(0)) stream.write(data);
  }

  /** Sends keystrokes or pasted text to the process. */
  write(data: string): void {
    if (this.ended) return;
    if (!this.ready || !this.stream) {
      this.pending.push(data);
      return;
    }
    this.stream.write(data);
  }

  /**
   * Changes the TTY's size; the process gets SIGWINCH. Resizes go to the engine one at a time and only the
   * latest waiting size is sent: two concurrent API calls can land out of order and leave an old size.
   */
  resize(cols: number, rows: number): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.wantedSize = clampSize(cols, rows);
    this.resizing ??= this.sendSizes().finally(() => (this.resizing = undefined));
    return this.resizing;
  }

  private async sendSizes(): Promise<void> {
    for (let size = this.wantedSize; size && !this.ended; size = this.wantedSize) {
      this.wantedSize = undefined;
      const { cols, rows } = size;
      await this.engine.call('resizing a terminal in the box', (_docker, abortSignal) =>
        this.exec.resize({ h: rows, w: cols, abortSignal } as never),
      );
    }
  }

  /** Kills the process and everything it started in the box, then reports the exit. */
  close(): Promise<void> {
    this.closing ??= this.finish();
    return this.closing;
  }

  private async watchExit(streamDone: Promise<void>): Promise<void> {
    while (!this.ended) {
      const done = await Promise.race([streamDone.then(() => true), delay(EXIT_POLL_MS).then(() => false)]);
      if (done || this.ended) return;
      try {
        const info = await this.engine.call('checking a terminal', (_d, abortSignal) => this.exec.inspect({ abortSignal }));
        if (!info.Running) {
          // Background jobs still hold the TTY open; the terminal ends with its own process, like a shell window.
          await delay(200);
          void this.finish();
          return;
        }
      } catch (error) {
        if (SandboxError.is(error, 'not-found') || (boxGoneError(error) as SandboxError).reason === 'no-box') {
          void this.finish();
          return;
        }
      }
    }
  }

  private finishing: Promise<void> | undefined;

  private finish(): Promise<void> {
    this.finishing ??= (async () => {
      this.ended = true;
      // Like a run's: the tree with retries (a fork bomb typed into the terminal holds every pid), then the marker.
      // The helper's own environment does not carry the marker (it is an exec of its own), so it never kills itself.
      await killTreeThenMarked(this.engine, this.containerId, this.pid, `${TERMINAL_MARKER_ENV}=${this.marker}`);
      this.stream?.destroy?.();
      let exitCode: number | null = null;
      try {
        const info = await this.engine.call('reading a terminal exit code', (_d, abortSignal) => this.exec.inspect({ abortSignal }));
        exitCode = info.Running ? null : info.ExitCode;
      } catch {
        exitCode = null;
      }
      this.resolveExit(exitCode);
      this.options.onExit(exitCode);
    })();
    return this.finishing;
  }
}

function clampSize(cols: number, rows: number): { cols: number; rows: number } {
  const clamp = (n: number, fallback: number) => (Number.isInteger(n) && n > 0 ? Math.min(n, 10_000) : fallback);
  return { cols: clamp(cols, 80), rows: clamp(rows, 24) };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
