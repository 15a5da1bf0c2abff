import * as fs from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { SandboxError } from '../errors';
import type { DockerEngine } from '../docker/dockerEngine';
import { engineStatusOf } from '../docker/dockerEngine';
import { LABEL_VOLUME } from '../box/boxConfig';
import { parseAttemptLine, type EgressAttempt } from './egressAttempt';
import { providerBoxEnv, providersWithKeys, type ModelKeys, type ModelProviderId } from './modelProviders';
import {
  boxProxyEnv,
  EGRESS_MOUNT,
  egressVolumeCreateOptions,
  GATEWAY_OFFLINE_FILE,
  GATEWAY_OFFLINE_SIGNAL,
  GATEWAY_SOCKET_DIR,
  GATEWAY_LIMITS,
  GATEWAY_UID,
  gatewayCreateOptions,
  LABEL_BOX,
  LABEL_ROLE,
  relayCreateOptions,
  type ValidatedEgress,
} from './gatewayConfig';

export interface EgressGatewayOptions {
  egress: ValidatedEgress;
  /** The box's container name; the gateway, relay and volume are named after it. */
  boxName: string;
  /** The box's image: the gateway's too when `gatewayImage` is empty. */
  boxImage: string;
  /** The box's owner labels; the egress containers and volume carry them, so the orphan sweep finds them. */
  labels: Record<string, string>;
  /** Path of the bundled gateway program (`dist/gateway.js`). */
  programPath: string;
  /** Resolvers for the gateway container; the engine's default when absent. */
  dns?: string[];
  /** `name:address` entries for the gateway's /etc/hosts. */
  extraHosts?: string[];
  /** The real model API keys; they reach the gateway on its stdin only (no environment, no file, no label). */
  providerKeys?: ModelKeys;
  signal?: AbortSignal;
}

/** What a running gateway can be told on its stdin: new rules, keys or CA take effect for new attempts. */
export interface EgressReconfiguration {
  egress: ValidatedEgress;
  providerKeys: ModelKeys;
}

const READY_TIMEOUT_MS = 20_000;
/** How long the gateway may take to confirm a pause or resume (it reads one small file). */
const OFFLINE_ACK_TIMEOUT_MS = 10_000;

/**
 * A box's way out: the gateway container (network access, the proxy on a unix socket in the egress volume)
 * and the relay container (in the box's network namespace, 127.0.0.1:3128 → that socket). Made with
 * `start` before the box, joined to it with `attachRelay` once the box runs, removed with `remove`.
 * It reads the gateway's stdout: the audit records of every attempt.
 */
export class EgressGateway {
  private readonly records: EgressAttempt[] = [];
  private readonly listeners = new Set<(attempt: EgressAttempt) => void>();
  private relayId: string | undefined;
  private exitedFlag = false;
  /** Offline runs in the box now; the gateway is paused while this is not empty. */
  private readonly offlineRuns = new Set<string>();
  private offlineQueue: Promise<void> = Promise.resolve();
  private readonly offlineAcks = new Set<(offlineRuns: string) => void>();
  /** The gateway's stdin (attached before it starts); configuration lines go here. */
  private stdin: NodeJS.WritableStream | undefined;
  private configuredWaiters: Array<() => void> = [];
  private current: EgressReconfiguration;

  private constructor(
    private readonly engine: DockerEngine,
    readonly gatewayId: string,
    readonly gatewayName: string,
    readonly volumeName: string,
    readonly image: string,
    private readonly options: EgressGatewayOptions,
  ) {
    this.current = { egress: options.egress, providerKeys: { ...options.providerKeys } };
  }

  /** `HTTP(S)_PROXY` and friends for the box. */
  readonly proxyEnv = boxProxyEnv();

  /** The rules, keys and CA the gateway enforces now. */
  get configuration(): EgressReconfiguration {
    return this.current;
  }

  /** Providers whose key the gateway adds (a key is stored). */
  get providers(): ModelProviderId[] {
    return providersWithKeys(this.current.providerKeys);
  }

  /** The box variables of the provider routes: base URLs through the relay and placeholder keys. */
  providerEnv(runId?: string): string[] {
    return providerBoxEnv(this.providers, runId);
  }

  /**
   * New rules, keys or CA, sent on the gateway's stdin; resolves once the gateway confirmed them. Attempts
   * under way keep what they began with; every attempt that begins afterwards gets the new configuration.
   */
  async reconfigure(update: EgressReconfiguration): Promise<void> {
    if (!this.stdin || this.exitedFlag) {
      throw new SandboxError('engine-error', 'The egress gateway is not running; reset the box to start a new one.');
    }
    const confirmed = new Promise<void>((resolve) => this.configuredWaiters.push(resolve));
    this.stdin.write(configurationLine(update));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      confirmed,
      new Promise<never>(
        (_, reject) =>
          (timer = setTimeout(() => reject(new SandboxError('timeout', 'The egress gateway did not confirm its new settings within 10 s.')), 10_000)),
      ),
    ]).finally(() => clearTimeout(timer));
    this.current = { egress: update.egress, providerKeys: { ...update.providerKeys } };
  }

  /** Every attempt recorded so far, oldest first. */
  get attempts(): readonly EgressAttempt[] {
    return this.records;
  }

  /** Whether the gateway's process has ended (its output stream closed). */
  get exited(): boolean {
    return this.exitedFlag;
  }

  /** Calls `listener` for each attempt from now on; returns a function that stops it. */
  onAttempt(listener: (attempt: EgressAttempt) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  static async start(engine: DockerEngine, options: EgressGatewayOptions): Promise<EgressGateway> {
    const { signal, egress } = options;
    const image = egress.settings.gatewayImage || options.boxImage;
    const program = await fs.promises.readFile(options.programPath).catch((error: unknown) => {
      throw new SandboxError(
        'internal',
        `The egress gateway program is missing at ${options.programPath} (build the extension): ${(error as Error).message}`,
      );
    });
    const volumeName = `${options.boxName}-egress`;
    const gatewayName = `${options.boxName}-gateway`;
    const labels = { ...options.labels, [LABEL_ROLE]: 'gateway', [LABEL_BOX]: options.boxName };
    let volumeCreated = false;
    let gatewayId: string | undefined;
    try {
      await engine.call(
        `creating volume ${volumeName}`,
        (d, abortSignal) => d.createVolume({ ...egressVolumeCreateOptions({ volumeName, labels }), abortSignal }),
        {
          signal,
        },
      );
      volumeCreated = true;
      const created = await engine.call(
        `creating the egress gateway ${gatewayName}`,
        (d, abortSignal) =>
          d.createContainer({
            ...gatewayCreateOptions({
              name: gatewayName,
              image,
              network: egress.settings.gatewayNetwork,
              volumeName,
              labels: { ...labels, [LABEL_VOLUME]: volumeName },
              config: {
                rules: egress.rules,
                maxConnections: GATEWAY_LIMITS.maxConnections,
                connectTimeoutMs: GATEWAY_LIMITS.connectTimeoutMs,
                idleTimeoutMs: GATEWAY_LIMITS.idleTimeoutMs,
              },
              dns: options.dns ?? (egress.settings.gatewayDns.length ? egress.settings.gatewayDns : undefined),
              extraHosts: options.extraHosts,
            }),
            abortSignal,
          }),
        { signal, image },
      );
      gatewayId = created.id;
      const tar = egressVolumeTar(program);
      await engine.call(
        'putting the gateway program into its volume',
        (d, abortSignal) =>
          d
            .getContainer(created.id)
            .putArchive(tar, { path: EGRESS_MOUNT, abortSignal })
            .then(() => undefined),
        { signal },
      );
      const gateway = new EgressGateway(engine, created.id, gatewayName, volumeName, image, options);
      const ready = gateway.follow(created.id, 'gateway');
      await ready.started;
      await engine.call(`starting the egress gateway ${gatewayName}`, (d, abortSignal) => d.getContainer(created.id).start({ abortSignal }), {
        signal,
      });
      // The keys go in on stdin, after the start: never in the container's environment, a file or a label.
      gateway.stdin?.write(configurationLine(gateway.current));
      await ready;
      return gateway;
    } catch (error) {
      await removeQuietly(engine, [gatewayId], volumeCreated ? volumeName : undefined);
      throw error;
    }
  }

  /** Starts the relay in the running box's network namespace; the box can use its proxy variables after this. */
  async attachRelay(boxContainerId: string, signal?: AbortSignal): Promise<void> {
    const name = `${this.options.boxName}-relay`;
    const labels = { ...this.options.labels, [LABEL_ROLE]: 'relay', [LABEL_BOX]: this.options.boxName };
    const created = await this.engine.call(
      `creating the egress relay ${name}`,
      (d, abortSignal) =>
        d.createContainer({ ...relayCreateOptions({ name, image: this.image, boxContainerId, volumeName: this.volumeName, labels }), abortSignal }),
      { signal, image: this.image },
    );
    this.relayId = created.id;
    const ready = this.follow(created.id, 'relay');
    await ready.started;
    await this.engine.call(`starting the egress relay ${name}`, (d, abortSignal) => d.getContainer(created.id).start({ abortSignal }), { signal });
    await ready;
  }

  /**
   * Pauses the gateway for an offline run (`network: "none"`): once this resolves the gateway refuses every
   * connection from the box, whoever asks, and has closed those in flight. Returns the function that ends the
   * pause for this run (the gateway forwards again when no offline run is left). Throws when the gateway did
   * not confirm the pause: the run must not start then.
   */
  async beginOffline(runId: string, signal?: AbortSignal): Promise<() => Promise<void>> {
    this.offlineRuns.add(runId);
    try {
      await this.applyOffline(signal);
    } catch (error) {
      this.offlineRuns.delete(runId);
      void this.applyOffline().catch(() => undefined);
      throw error;
    }
    let ended = false;
    return async () => {
      if (ended) return;
      ended = true;
      this.offlineRuns.delete(runId);
      await this.applyOffline();
    };
  }

  private onOfflineLine(line: string): void {
    try {
      const said = JSON.stringify(((JSON.parse(line) as { offlineRuns?: string[] }).offlineRuns ?? []).slice().sort());
      for (const ack of this.offlineAcks) ack(said);
    } catch {
      // Not a confirmation; the waiter times out.
    }
  }

  /** Sends the gateway the current offline list, one change at a time, and waits for it to confirm. */
  private applyOffline(signal?: AbortSignal): Promise<void> {
    const next = this.offlineQueue.then(() => this.sendOffline([...this.offlineRuns].sort(), signal));
    this.offlineQueue = next.catch(() => undefined);
    return next;
  }

  private async sendOffline(offlineRuns: string[], signal?: AbortSignal): Promise<void> {
    // A gateway that has stopped lets nothing out: there is nothing to pause.
    if (this.exitedFlag) return;
    const expected = JSON.stringify(offlineRuns);
    let listener: ((said: string) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const acked = new Promise<void>((resolve, reject) => {
      listener = (said) => said === expected && resolve();
      this.offlineAcks.add(listener);
      timer = setTimeout(
        () =>
          reject(
            new SandboxError(
              'timeout',
              `The egress gateway ${this.gatewayName} did not confirm ${offlineRuns.length ? 'the pause for an offline run' : 'the end of an offline run'} within ${OFFLINE_ACK_TIMEOUT_MS / 1000} s.`,
            ),
          ),
        OFFLINE_ACK_TIMEOUT_MS,
      );
    });
    acked.catch(() => undefined);
    try {
      const tar = offlineListTar(offlineRuns);
      await this.engine.call(
        'telling the egress gateway the offline runs',
        (d, abortSignal) =>
          d
            .getContainer(this.gatewayId)
            .putArchive(tar, { path: GATEWAY_SOCKET_DIR, abortSignal })
            .then(() => undefined),
        { signal },
      );
      await this.engine.call(
        'signalling the egress gateway',
        (d, abortSignal) =>
          d
            .getContainer(this.gatewayId)
            .kill({ signal: GATEWAY_OFFLINE_SIGNAL, abortSignal })
            .then(() => undefined),
        { signal },
      );
      await acked;
    } finally {
      clearTimeout(timer);
      if (listener) this.offlineAcks.delete(listener);
    }
  }

  /** Removes the relay, the gateway and the egress volume; parts already gone are fine. */
  async remove(): Promise<void> {
    await removeContainersAndVolume(this.engine, [this.relayId, this.gatewayId], this.volumeName);
  }

  /**
   * Attaches to a container's output before it starts (so no line is missed, whatever the log driver) and
   * resolves once it says it is ready; rejects with its last words when it exits first. Attempt lines from
   * the gateway go to `records` and the listeners for the container's whole life.
   */
  private follow(containerId: string, role: 'gateway' | 'relay'): Promise<void> & { started: Promise<void> } {
    let markReady: () => void = () => undefined;
    let fail: (error: Error) => void = () => undefined;
    const ready = new Promise<void>((resolve, reject) => ((markReady = resolve), (fail = reject)));
    const started = this.engine
      .call(`attaching to the egress ${role}`, async (d, abortSignal) => {
        const withStdin = role === 'gateway';
        const stream = (await d.getContainer(containerId).attach({
          stream: true,
          stdout: true,
          stderr: true,
          ...(withStdin ? { stdin: true, hijack: true } : {}),
          abortSignal,
        })) as unknown as Readable;
        if (withStdin) this.stdin = stream as unknown as NodeJS.WritableStream;
        const stdout = new PassThrough();
        const stderr = new PassThrough();
        d.modem.demuxStream(stream, stdout, stderr);
        const said: string[] = [];
        let buffered = '';
        const onText = (chunk: Buffer): void => {
          buffered += chunk.toString('utf8');
          let newline: number;
          while ((newline = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, newline);
            buffered = buffered.slice(newline + 1);
            said.push(line);
            if (said.length > 20) said.shift();
            if (/^\{"type":"ready"/.test(line)) markReady();
            if (role === 'gateway' && line.startsWith('{"type":"offline"')) this.onOfflineLine(line);
            if (/^\{"type":"configured"/.test(line)) this.configuredWaiters.shift()?.();
            const attempt = role === 'gateway' ? parseAttemptLine(line) : undefined;
            if (attempt) {
              this.records.push(attempt);
              for (const listener of this.listeners) listener(attempt);
            }
          }
          // A line that never ends is not a record; do not hold it.
          if (buffered.length > 64 * 1024) buffered = '';
        };
        stdout.on('data', onText);
        stderr.on('data', (chunk: Buffer) => said.push(chunk.toString('utf8').trim()));
        stream.on('error', () => undefined);
        stream.once('end', () => {
          if (role === 'gateway') this.exitedFlag = true;
          fail(
            new SandboxError(
              'engine-error',
              `The egress ${role} stopped before it was ready (image ${this.image}; it needs node 18 or later on its PATH — set agentSandbox.gatewayImage to such an image): ${said.join(' | ').slice(-1000) || 'no output'}`,
              { setting: 'agentSandbox.gatewayImage' },
            ),
          );
        });
      })
      .catch((error: unknown) => fail(error as Error));
    const timer = setTimeout(
      () => fail(new SandboxError('timeout', `The egress ${role} did not become ready within ${READY_TIMEOUT_MS / 1000} s.`)),
      READY_TIMEOUT_MS,
    );
    const done = ready.finally(() => clearTimeout(timer));
    done.catch(() => undefined);
    return Object.assign(done, { started });
  }
}

/** The file the gateway reads on `GATEWAY_OFFLINE_SIGNAL`: the offline runs, in the socket directory (the gateway user's). */
function offlineListTar(offlineRuns: string[]): Readable {
  const pack = tarStream.pack();
  pack.entry(
    { name: GATEWAY_OFFLINE_FILE, type: 'file', mode: 0o600, uid: GATEWAY_UID, gid: GATEWAY_UID, mtime: new Date() },
    JSON.stringify({ offlineRuns }),
  );
  pack.finalize();
  return pack as unknown as Readable;
}

/** The gateway's stdin line: the rules, the keys and the extra CA (see src/gateway/main.ts). */
function configurationLine(update: EgressReconfiguration): string {
  return `${JSON.stringify({ type: 'configure', rules: update.egress.rules, providerKeys: update.providerKeys, extraCaPem: update.egress.extraCaPem ?? '' })}\n`;
}

/** The egress volume's content: the program (root's, read-only) and the socket directory (the gateway user's, 0700). */
function egressVolumeTar(program: Buffer): Readable {
  const pack = tarStream.pack();
  const mtime = new Date();
  pack.entry({ name: 'bin/', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime });
  pack.entry({ name: 'bin/gateway.js', type: 'file', mode: 0o444, uid: 0, gid: 0, mtime }, program);
  pack.entry({ name: 'run/', type: 'directory', mode: 0o700, uid: GATEWAY_UID, gid: GATEWAY_UID, mtime });
  pack.finalize();
  return pack as unknown as Readable;
}

async function removeContainersAndVolume(engine: DockerEngine, containerIds: (string | undefined)[], volumeName: string | undefined): Promise<void> {
  for (const id of containerIds) {
    if (!id) continue;
    await engine
      .call(`removing egress container ${id.slice(0, 12)}`, (d, abortSignal) => d.getContainer(id).remove({ force: true, abortSignal }))
      .catch((error: unknown) => {
        if (!SandboxError.is(error, 'not-found') && engineStatusOf(error) !== 404) throw error;
      });
  }
  if (volumeName) {
    await engine
      .call(`removing volume ${volumeName}`, (d, abortSignal) => d.getVolume(volumeName).remove({ abortSignal }))
      .catch((error: unknown) => {
        if (!SandboxError.is(error, 'not-found') && engineStatusOf(error) !== 404) throw error;
      });
  }
}

async function removeQuietly(engine: DockerEngine, containerIds: (string | undefined)[], volumeName: string | undefined): Promise<void> {
  try {
    await removeContainersAndVolume(engine, containerIds, volumeName);
  } catch {
    // The original error matters more; the orphan sweep catches anything left.
  }
}
