import Dockerode = require('dockerode');
import type { ErrorReason } from '../../shared/protocol';
import { SandboxError } from '../errors';
import type { EngineLocation } from './engineLocation';
import { dockerodeOptions } from './engineLocation';
import { PullProgress, type PullEvent } from './pullProgress';
import { SshAgent, type SshDialOptions } from './sshDialer';

export interface EngineCallOptions {
  /** Milliseconds before the call fails with `timeout`; 0 = no limit. Defaults to the engine's default. */
  timeoutMs?: number;
  /** Aborting fails the call with `cancelled` and aborts the HTTP request when `fn` passed the signal on. */
  signal?: AbortSignal;
  /** When set, a 404 means this image is missing (`image-missing`) rather than `not-found`. */
  image?: string;
}

/** Callback for pull progress: a message and, when known, bytes downloaded and in total. */
export type PullProgressCallback = (message: string, done?: number, total?: number) => void;

interface DockerodeError extends Error {
  code?: string;
  statusCode?: number;
  json?: unknown;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * The one door to the Docker engine. Every call gets a timeout, cancellation and an error that names the
 * cause and the fix (`SandboxError` with a reason); nothing else in the code base talks to dockerode directly.
 */
export class DockerEngine {
  private readonly docker: Dockerode;
  private readonly log: (line: string) => void;
  private readonly defaultTimeoutMs: number;

  constructor(
    private readonly _location: EngineLocation,
    options: { log?: (line: string) => void; defaultTimeoutMs?: number; ssh?: SshDialOptions } = {},
  ) {
    this.docker = new Dockerode(dockerodeOptions(_location, { ssh: options.ssh }));
    this.log = options.log ?? (() => undefined);
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  get location(): EngineLocation {
    return this._location;
  }

  /** Closes kept-alive connections (for ssh:// engines: the ssh processes and their shared connection). */
  dispose(): void {
    const agent = (this.docker.modem as { agent?: unknown }).agent;
    if (agent instanceof SshAgent) agent.close();
  }

  /**
   * Runs one engine operation. `fn` receives a signal that fires on timeout or cancellation; pass it to
   * dockerode (`abortSignal`) so the request itself is torn down, not just abandoned.
   */
  async call<T>(what: string, fn: (docker: Dockerode, signal: AbortSignal) => Promise<T>, options: EngineCallOptions = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    if (options.signal?.aborted) {
      throw new SandboxError('cancelled', `${capitalize(what)} was cancelled.`);
    }
    const controller = new AbortController();
    let ended: 'timeout' | 'cancelled' | undefined;
    let rejectEnd: (error: unknown) => void = () => undefined;
    const ending = new Promise<never>((_, reject) => (rejectEnd = reject));
    const end = (why: 'timeout' | 'cancelled'): void => {
      if (ended) {
        return;
      }
      ended = why;
      controller.abort();
      rejectEnd(
        why === 'timeout'
          ? new SandboxError(
              'timeout',
              `${capitalize(what)} did not finish within ${formatMs(timeoutMs)} (engine at ${this._location.host}). The engine may be overloaded or hung; try again or restart Docker.`,
            )
          : new SandboxError('cancelled', `${capitalize(what)} was cancelled.`),
      );
    };
    const timer = timeoutMs > 0 ? setTimeout(() => end('timeout'), timeoutMs) : undefined;
    const onAbort = (): void => end('cancelled');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const started = Date.now();
    try {
      return await Promise.race([fn(this.docker, controller.signal), ending]);
    } catch (error) {
      if (SandboxError.is(error)) {
        throw error;
      }
      if (ended) {
        // The request was aborted by us; the race already rejected with the reason.
        throw error;
      }
      const translated = this.translate(what, error, options.image);
      this.log(`[docker] ${what} failed after ${Date.now() - started} ms: ${translated.message}`);
      throw translated;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      // Swallow the late rejection of `ending` when the call itself settled first.
      ending.catch(() => undefined);
    }
  }

  /** Turns a dockerode or socket error into a `SandboxError` a person can act on. */
  translate(what: string, error: unknown, image?: string): SandboxError {
    const e = error as DockerodeError;
    const host = this._location.host;
    const from = this._location.source === 'default' ? '' : ` (from ${this._location.source})`;
    if (e?.name === 'AbortError' || e?.code === 'ABORT_ERR') {
      return new SandboxError('cancelled', `${capitalize(what)} was cancelled.`, { cause: error });
    }
    switch (e?.code) {
      case 'ECONNREFUSED':
      case 'ENOENT':
      case 'ECONNRESET':
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
      case 'ETIMEDOUT':
        return new SandboxError(
          'engine-unreachable',
          `Docker engine not reachable at ${host}${from}: is Docker running? Start Docker, or point agentSandbox.dockerHost, DOCKER_HOST or the Docker context at a running engine. (${e.code})`,
          { cause: error },
        );
      case 'EACCES':
      case 'EPERM':
        return new SandboxError(
          'engine-unreachable',
          `Docker engine not reachable at ${host}${from}: is Docker running? Permission to the socket was denied; add your user to the "docker" group (then log in again) or use a rootless engine. (${e.code})`,
          { cause: error },
        );
    }
    const status = e?.statusCode;
    const engineMessage = engineMessageOf(e);
    if (status === 404 && image) {
      return new SandboxError(
        'image-missing',
        `Image ${image} is not present locally. Pull it (Agent Sandbox: Pull Image) or set agentSandbox.image.`,
        { setting: 'agentSandbox.image', cause: error },
      );
    }
    const reason: ErrorReason = status === 404 ? 'not-found' : 'engine-error';
    return new SandboxError(reason, `${capitalize(what)} failed: ${engineMessage}`, { cause: error });
  }

  version(options?: EngineCallOptions): Promise<Dockerode.DockerVersion> {
    // dockerode accepts `abortSignal` here at run time; its typings do not say so.
    return this.call('reading the engine version', (d, abortSignal) => (d as unknown as WithSignal).version({ abortSignal }), options);
  }

  info(options?: EngineCallOptions): Promise<EngineInfo> {
    return this.call('reading engine info', (d, abortSignal) => (d as unknown as WithSignal).info({ abortSignal }), options);
  }

  /** The image's inspect data, or `undefined` when it is not present locally. */
  async inspectImage(reference: string, options?: EngineCallOptions): Promise<Dockerode.ImageInspectInfo | undefined> {
    try {
      return await this.call(`inspecting image ${reference}`, (d) => d.getImage(reference).inspect(), { ...options, image: reference });
    } catch (error) {
      if (SandboxError.is(error, 'image-missing')) {
        return undefined;
      }
      throw error;
    }
  }

  /**
   * Pulls an image, reporting the layers' download progress summed into bytes. No timeout by default: a pull may
   * take long; cancel through `signal`. The engine answers 200 before pulling, so a failure mid-pull arrives as
   * an error event in the stream: that fails the call (`engine-error` with the engine's message), never "pulled".
   */
  async pullImage(reference: string, onProgress: PullProgressCallback, signal?: AbortSignal): Promise<void> {
    await this.pullImageOnce(reference, onProgress, signal).catch((error: unknown) => {
      throw registryAuthError(reference, error) ?? error;
    });
  }

  private async pullImageOnce(reference: string, onProgress: PullProgressCallback, signal?: AbortSignal): Promise<void> {
    await this.call(
      `pulling image ${reference}`,
      async (d, abortSignal) => {
        const stream = (await d.pull(reference, { abortSignal })) as NodeJS.ReadableStream;
        const tracker = new PullProgress();
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => {
            (stream as unknown as { destroy?: () => void }).destroy?.();
            reject(new SandboxError('cancelled', `Pulling image ${reference} was cancelled.`));
          };
          abortSignal.addEventListener('abort', onAbort, { once: true });
          d.modem.followProgress(
            stream,
            (error: Error | null) => {
              abortSignal.removeEventListener('abort', onAbort);
              if (error) {
                reject(error);
              } else if (tracker.error !== undefined) {
                reject(new SandboxError('engine-error', `Pulling image ${reference} failed: ${tracker.error}`));
              } else {
                resolve();
              }
            },
            (event: PullEvent) => {
              const report = tracker.update(event);
              if (report) onProgress(report.message, report.done, report.total);
            },
          );
        });
      },
      { timeoutMs: 0, signal },
    );
  }
}

/** What registries answer when they want credentials or refuse them (Docker Hub, DHI, ghcr.io, distribution). */
const REGISTRY_AUTH_FAILURE =
  /unauthorized|authentication required|access.{0,20}denied|denied:|no basic auth credentials|may require 'docker login'|forbidden|insufficient_scope/i;

/** The registry host of a reference (`docker.io` when it names none), the one `docker login` needs. */
export function registryOf(reference: string): string {
  const first = reference.split('/')[0];
  const hasDomain = reference.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  return hasDomain ? first : 'docker.io';
}

/**
 * A pull refused for want of credentials, as an error that names the fix (`docker login <registry>`);
 * `undefined` for any other failure. Docker Hardened Images (`dhi.io/…`) and private registries answer this
 * way until the engine's user has logged in.
 */
export function registryAuthError(reference: string, error: unknown): SandboxError | undefined {
  const cause = SandboxError.is(error) ? error.cause : error;
  const text = `${(error as Error)?.message ?? ''} ${cause ? engineMessageOf(cause) : ''}`;
  if (SandboxError.is(error, 'cancelled') || !REGISTRY_AUTH_FAILURE.test(text)) return undefined;
  const registry = registryOf(reference);
  return new SandboxError(
    'engine-error',
    `Pulling image ${reference} was refused by ${registry}: it needs credentials (${engineMessageOf(cause ?? error).trim()}). Run \`docker login ${registry}\` for the engine's user (on the engine's machine), then pull again; Docker Hardened Images need a Docker account with access to them.`,
    { setting: 'agentSandbox.image', cause: error },
  );
}

/** The parts of `GET /info` the extension reads. */
export interface EngineInfo {
  ServerVersion?: string;
  OperatingSystem?: string;
  OSType?: string;
  Architecture?: string;
  CgroupVersion?: string;
  Runtimes?: Record<string, unknown>;
  DefaultRuntime?: string;
  [key: string]: unknown;
}

interface WithSignal {
  version(options: { abortSignal: AbortSignal }): Promise<Dockerode.DockerVersion>;
  info(options: { abortSignal: AbortSignal }): Promise<EngineInfo>;
}

/** The engine's own message (`{"message": …}`) when there is one, else the error's text. */
export function engineMessageOf(error: unknown): string {
  const e = error as DockerodeError | undefined;
  const json = e?.json as { message?: unknown } | string | Buffer | undefined;
  if (json && typeof json === 'object' && !Buffer.isBuffer(json) && typeof json.message === 'string') {
    return json.message;
  }
  if (typeof json === 'string' && json.trim()) {
    return json.trim();
  }
  return e?.message ?? String(error);
}

/** The HTTP status of a failed engine call wrapped in a `SandboxError`, if it had one. */
export function engineStatusOf(error: unknown): number | undefined {
  const cause = SandboxError.is(error) ? error.cause : error;
  return (cause as DockerodeError | undefined)?.statusCode;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
