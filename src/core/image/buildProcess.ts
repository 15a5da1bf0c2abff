import { spawn } from 'node:child_process';
import { SandboxError } from '../errors';

/** A build program's run: its exit code and the last lines it wrote (for the error of a failed build). */
export interface BuildProcessResult {
  code: number | null;
  stdout: string;
  lastLines: string[];
}

const KEPT_LINES = 30;

/**
 * Runs a build program (the Dev Containers CLI or `docker build`), hands each line of its stderr and stdout to
 * `onLine` as it comes, and keeps stdout whole (the CLI's result is its last line). Cancelling kills the whole
 * process group: the `docker build` the CLI started goes with it, and the engine stops the build when its client
 * disconnects.
 */
export function runBuildProcess(options: {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  onLine: (line: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
  /** What is being built, for the cancellation error. */
  what: string;
}): Promise<BuildProcessResult> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new SandboxError('cancelled', `Building ${options.what} was cancelled.`));
      return;
    }
    const groupKill = process.platform !== 'win32';
    const child = spawn(options.command, options.args, {
      env: options.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: groupKill,
      windowsHide: true,
    });
    const lastLines: string[] = [];
    let stdout = '';
    let cancelled = false;
    const split = (stream: 'stdout' | 'stderr') => {
      let rest = '';
      return (chunk: Buffer) => {
        const text = rest + chunk.toString('utf8');
        if (stream === 'stdout') stdout += chunk.toString('utf8');
        const lines = text.split(/\r?\n|\r/);
        rest = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.trim()) continue;
          lastLines.push(line);
          if (lastLines.length > KEPT_LINES) lastLines.shift();
          options.onLine(line, stream);
        }
      };
    };
    child.stdout.on('data', split('stdout'));
    child.stderr.on('data', split('stderr'));
    const kill = () => {
      cancelled = true;
      try {
        if (groupKill && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    };
    options.signal?.addEventListener('abort', kill, { once: true });
    child.once('error', (error: NodeJS.ErrnoException) => {
      options.signal?.removeEventListener('abort', kill);
      reject(error);
    });
    child.once('close', (code) => {
      options.signal?.removeEventListener('abort', kill);
      if (cancelled) reject(new SandboxError('cancelled', `Building ${options.what} was cancelled.`));
      else resolve({ code, stdout, lastLines });
    });
  });
}

/** `Step 3/12 : RUN …` of the classic builder, `#7 [3/12] RUN …` of BuildKit: the step reached and the steps in all. */
export function buildStep(line: string): { done: number; total: number } | undefined {
  const match = /\bStep (\d+)\/(\d+)\b/.exec(line) ?? /^#\d+ \[(?:[\w-]+ )?(\d+)\/(\d+)\]/.exec(line);
  if (!match) return undefined;
  const done = Number(match[1]);
  const total = Number(match[2]);
  return total > 0 && done <= total ? { done, total } : undefined;
}
