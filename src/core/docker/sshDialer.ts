import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import { SandboxError } from '../errors';

/** An `ssh://[user@]host[:port]` engine. */
export interface SshTarget {
  host: string;
  port?: number;
  user?: string;
}

/** How the system `ssh` is run; the defaults are what users get. */
export interface SshDialOptions {
  /** The ssh executable; `ssh` from PATH by default. */
  command?: string;
  /** Options put before the destination, e.g. `['-F', file]` (tests use their own config and known_hosts). */
  extraArgs?: readonly string[];
  /**
   * Share one authenticated connection between the ssh processes of an engine (OpenSSH `ControlMaster`,
   * with its socket in a private temporary folder); on by default except on Windows, whose OpenSSH lacks it.
   */
  multiplex?: boolean;
  /** Idle free connections are closed after this many milliseconds (the agent keeps the others alive). */
  idleTimeoutMs?: number;
}

/** How long an idle shared connection (ControlPersist) outlives its last use, in seconds. */
const CONTROL_PERSIST_SECONDS = 120;

/**
 * The argument list of one connection, as the docker CLI builds it (`ssh … -- host docker system dial-stdio`),
 * plus: BatchMode (never prompt: there is no terminal), StrictHostKeyChecking=yes (a host missing from
 * known_hosts or with a changed key is refused by ssh itself, before anything is sent, even when the user's
 * config says `no`), and the ControlMaster options when multiplexing.
 */
export function sshArgs(target: SshTarget, options: SshDialOptions & { controlDir?: string } = {}): string[] {
  return [...connectionArgs(target, options), 'docker', 'system', 'dial-stdio'];
}

/** Everything up to the remote command: options, then `--` and the host (never read as an option). */
function connectionArgs(target: SshTarget, options: SshDialOptions & { controlDir?: string }): string[] {
  if (!target.host || target.host.startsWith('-')) {
    throw new SandboxError('invalid-setting', `"${target.host}" is not an ssh host name.`, { setting: 'agentSandbox.dockerHost' });
  }
  const args = ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'ConnectTimeout=20', '-o', 'ServerAliveInterval=30'];
  if (options.controlDir) {
    args.push(
      '-o',
      'ControlMaster=auto',
      '-o',
      `ControlPath=${path.join(options.controlDir, '%C')}`,
      '-o',
      `ControlPersist=${CONTROL_PERSIST_SECONDS}`,
    );
  }
  if (target.user) args.push('-l', target.user);
  if (target.port) args.push('-p', String(target.port));
  args.push(...(options.extraArgs ?? []), '--', target.host);
  return args;
}

/**
 * Why ssh gave up, from its own report on stderr (ssh has no other channel for it; the wording below has
 * been stable in OpenSSH for two decades). The typed reason is what callers branch on.
 */
export function sshFailure(target: SshTarget, exitCode: number | null, stderr: string): SandboxError {
  const where = `${target.user ? `${target.user}@` : ''}${target.host}${target.port ? `:${target.port}` : ''}`;
  const detail = stderr
    .trim()
    .split('\n')
    .filter((line) => line.trim() && !line.startsWith('@@@'))
    .slice(-3)
    .join(' ');
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i.test(stderr)) {
    return new SandboxError(
      'ssh-host-key',
      `The Docker engine host ${where} presented a host key that differs from the one in known_hosts (host key changed): it may be an impostor, so nothing was sent. ` +
        `If the host was reinstalled, check its new key, then remove the old one (\`ssh-keygen -R ${target.host}\`) and connect once with \`ssh ${where}\`.`,
    );
  }
  if (/Host key verification failed|No \S+ host key is known/i.test(stderr)) {
    return new SandboxError(
      'ssh-host-key',
      `The Docker engine host ${where} is not in known_hosts (host key unknown), so ssh refused it and nothing was sent. Connect once with \`ssh ${where}\` in a terminal, check and accept its key, then try again.`,
    );
  }
  if (/Permission denied|Too many authentication failures/i.test(stderr)) {
    return new SandboxError(
      'ssh-failed',
      `ssh could not log in to ${where} (authentication failed): no key or agent identity was accepted. Check \`ssh ${where}\` works without a password prompt (ssh-agent, IdentityFile in ~/.ssh/config). (${detail})`,
    );
  }
  if (/docker: (command )?not found|docker: No such file/i.test(stderr) || exitCode === 127) {
    return new SandboxError(
      'ssh-failed',
      `ssh reached ${where}, but the docker CLI is not installed there (\`docker system dial-stdio\` failed). Install Docker on that host. (${detail})`,
    );
  }
  return new SandboxError(
    'engine-unreachable',
    `Docker engine not reachable over ssh at ${where}: ssh exited with ${exitCode ?? 'a signal'}${detail ? `: ${detail}` : ''}. Check \`ssh ${where} docker version\` works.`,
  );
}

/**
 * One connection to the engine: the stdio of an `ssh … docker system dial-stdio` process as a socket-like
 * Duplex for Node's HTTP client (which calls the socket methods below on keep-alive sockets).
 */
class SshConnection extends Duplex {
  private stderr = '';
  private received = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleMs = 0;

  constructor(
    private readonly child: ChildProcess,
    target: SshTarget,
    command: string,
  ) {
    super();
    child.stdout!.on('data', (chunk: Buffer) => {
      this.received = true;
      this.touch();
      if (!this.push(chunk)) child.stdout!.pause();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      if (this.stderr.length < 16_384) this.stderr += chunk.toString('utf8');
    });
    child.stdin!.on('error', () => undefined); // the exit below says why
    child.once('error', (error: NodeJS.ErrnoException) => {
      this.destroy(
        error.code === 'ENOENT'
          ? new SandboxError(
              'ssh-failed',
              `The Docker engine is at an ssh:// address, but \`${command}\` was not found. Install the OpenSSH client (it must be on PATH), or use another engine address.`,
              { cause: error },
            )
          : new SandboxError('ssh-failed', `Starting \`${command}\` failed: ${error.message}`, { cause: error }),
      );
    });
    // The stream ends at 'close', not at stdout's end: only then are the exit code and all of stderr in, and
    // a failure must reach the HTTP client as itself, not as a hung-up socket. ssh exits 255 on its own
    // failures; one before any answer never reached the engine.
    child.once('close', (code) => {
      if (code !== 0 && !this.received) this.destroy(sshFailure(target, code, this.stderr));
      else if (!this.destroyed) this.push(null);
    });
  }

  override _read(): void {
    this.child.stdout?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.touch();
    this.child.stdin!.write(chunk, (error) => callback(error ?? null));
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.child.stdin!.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
    callback(error);
  }

  // What Node's HTTP client and agent call on a socket.
  setKeepAlive(): this {
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setTimeout(ms: number, onTimeout?: () => void): this {
    if (onTimeout) this.once('timeout', onTimeout);
    this.idleMs = ms;
    this.touch();
    return this;
  }

  ref(): this {
    this.child.ref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) (stream as { ref?: () => void } | null)?.ref?.();
    return this;
  }

  unref(): this {
    this.child.unref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
    return this;
  }

  private touch(): void {
    clearTimeout(this.idleTimer);
    if (this.idleMs > 0) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), this.idleMs);
      this.idleTimer.unref();
    }
  }
}

/**
 * An HTTP agent whose connections are `ssh … docker system dial-stdio` processes: the system ssh verifies the
 * host key against known_hosts and honours ~/.ssh/config, as the docker CLI does. Connections are kept alive
 * and reused, and with multiplexing every ssh process after the first rides on one authenticated connection,
 * so a box and its runs do not pay a handshake per request.
 */
export class SshAgent extends http.Agent {
  private controlDir: string | undefined;

  constructor(
    private readonly target: SshTarget,
    private readonly options: SshDialOptions = {},
  ) {
    super({ keepAlive: true, timeout: options.idleTimeoutMs ?? 60_000 });
  }

  /** Closes every connection and ends the shared one (ControlMaster), removing its socket folder. */
  close(): void {
    this.destroy();
    const controlDir = this.controlDir;
    if (!controlDir) return;
    this.controlDir = undefined;
    const exit = spawn(this.options.command ?? 'ssh', ['-O', 'exit', ...connectionArgs(this.target, { ...this.options, controlDir })], {
      stdio: 'ignore',
      windowsHide: true,
    });
    const remove = () => rmSync(controlDir, { recursive: true, force: true });
    exit.once('error', remove);
    exit.once('close', remove);
    exit.unref();
  }

  /** Called by Node's HTTP client for each new connection. */
  override createConnection(): Duplex {
    const multiplex = this.options.multiplex ?? process.platform !== 'win32';
    if (multiplex && !this.controlDir) {
      // Private (0700) and short: the socket path must fit in sun_path.
      this.controlDir = mkdtempSync(path.join(os.tmpdir(), 'asb-ssh-'));
    }
    const command = this.options.command ?? 'ssh';
    const child = spawn(command, sshArgs(this.target, { ...this.options, controlDir: multiplex ? this.controlDir : undefined }), {
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    return new SshConnection(child, this.target, command);
  }
}

/** The parts of an `ssh://` address. */
export function sshTargetOf(address: string): SshTarget {
  const url = new URL(address);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return {
    host,
    ...(url.port ? { port: Number(url.port) } : {}),
    ...(url.username ? { user: decodeURIComponent(url.username) } : {}),
  };
}
