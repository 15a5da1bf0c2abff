import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type { BoxImage, BoxSettings } from '../../shared/protocol';
import { SandboxError } from '../errors';
import type { DockerEngine } from '../docker/dockerEngine';
import { engineStatusOf } from '../docker/dockerEngine';
import { allowlistedEnv, boxLabels, boxNames, containerCreateOptions, validateBoxSettings, volumeCreateOptions, WORKSPACE_DIR } from './boxConfig';
import type { ExecOptions, ExecOutcome, OomCounter } from './boxRun';
import { EgressGateway } from '../egress/egressGateway';
import { validateEgressSettings, type ValidatedEgress } from '../egress/gatewayConfig';
import type { ModelKeys } from '../egress/modelProviders';
import { runInBox } from './boxRun';
import { KEEPALIVE_PROGRAM, keepAliveProgram, noShellError, TOOLS_DIR, toolsEntries } from './shellless';
import { giveVolumesToBoxUser } from './volumeOwner';
import { prepareCaches } from '../cache/cacheVolumes';

export interface BoxCreateOptions {
  /** Absolute path of the workspace folder the box mirrors. */
  folder: string;
  /** Id of this server instance (label `dev.agent-sandbox.owner`). */
  ownerId: string;
  /**
   * `NAME=value` entries passed into the box. When absent, they are taken from this process's environment
   * for the names in `settings.envAllowlist` (nothing else from the host ever is).
   */
  env?: string[];
  signal?: AbortSignal;
  /** Owner labels to record; default this process's pid and this machine's host name. */
  ownerPid?: number;
  ownerHost?: string;
  /**
   * With `network: "allowlist"`: the box gets an egress gateway and relay (created before and after the box,
   * removed with it) and the proxy variables. Absent or `network: "none"`: no network, exactly as before.
   */
  egress?: { validated: ValidatedEgress; programPath: string; dns?: string[]; extraHosts?: string[]; providerKeys?: ModelKeys };
  /**
   * The image as resolved for `settings.image` (pinned id, report summary; see `resolveBoxImage`): the box runs
   * `image.id`. Absent: the id the reference points to now.
   */
  image?: BoxImage;
}

/** Archive transfers can be large; they get a long timeout and rely on cancellation otherwise. */
const ARCHIVE_TIMEOUT_MS = 10 * 60_000;

/**
 * One hardened container with its workspace volume. Created with `Box.create`; `remove()` deletes both.
 * All engine calls go through the `DockerEngine`, so each has a timeout, cancellation and a friendly error.
 */
export class Box {
  private constructor(
    readonly engine: DockerEngine,
    readonly settings: BoxSettings,
    readonly folder: string,
    readonly containerId: string,
    readonly containerName: string,
    readonly volumeName: string,
    readonly image: BoxImage,
    /** The box's way out, when its network is an allowlist. */
    private egressGateway?: EgressGateway,
    private readonly owner?: { labels: Record<string, string> },
    /** The box's own tools volume (keep-alive), when its image has no shell. */
    private readonly toolsVolume?: string,
  ) {}

  /** Names of the package cache volumes the box mounts (none with `agentSandbox.caches` off). */
  cacheVolumes: readonly string[] = [];

  /** The box's way out, when its network is an allowlist (see `replaceEgress`). */
  get egress(): EgressGateway | undefined {
    return this.egressGateway;
  }

  /**
   * Gives the running box a new way out, or none: the old gateway and relay go, a new pair (when `egress`
   * asks for an allowlist) starts in the box's network namespace. For network settings that cannot change in a
   * running gateway (none ↔ allowlist, gateway image, network, resolvers). The container's own environment keeps
   * what it was made with; runs and terminals get the proxy variables of the gateway they start with.
   */
  async replaceEgress(egress: BoxCreateOptions['egress'], signal?: AbortSignal): Promise<void> {
    const old = this.egressGateway;
    this.egressGateway = undefined;
    await old?.remove();
    if (egress?.validated.settings.network !== 'allowlist') return;
    validateEgressSettings(egress.validated.settings, this.settings.runtime);
    const gateway = await EgressGateway.start(this.engine, {
      egress: egress.validated,
      boxName: this.containerName,
      boxImage: this.image.reference,
      labels: this.owner?.labels ?? {},
      programPath: egress.programPath,
      dns: egress.dns,
      extraHosts: egress.extraHosts,
      providerKeys: egress.providerKeys,
      signal,
    });
    try {
      await gateway.attachRelay(this.containerId, signal);
    } catch (error) {
      await gateway.remove().catch(() => undefined);
      throw error;
    }
    this.egressGateway = gateway;
  }

  static async create(engine: DockerEngine, settingsIn: BoxSettings, options: BoxCreateOptions): Promise<Box> {
    const validated = validateBoxSettings(settingsIn);
    const { signal } = options;
    const reference = validated.image;
    const image = await engine.inspectImage(options.image?.id ?? reference, { signal });
    // The container (and its helpers) run the resolved id, so a tag that moves meanwhile changes nothing.
    const settings = { ...validated, image: image?.Id ?? reference };
    if (!image) {
      throw new SandboxError(
        'image-missing',
        `Image ${reference} is not present locally. Pull it (Agent Sandbox: Pull Image) or set agentSandbox.image.`,
        { setting: 'agentSandbox.image' },
      );
    }
    const { name, volumeName } = boxNames(options.folder);
    const labels = boxLabels({
      folder: options.folder,
      ownerId: options.ownerId,
      ownerPid: options.ownerPid ?? process.pid,
      ownerHost: options.ownerHost ?? os.hostname(),
    });
    const env = options.env ?? allowlistedEnv(settings.envAllowlist, process.env);
    const wantsEgress = options.egress?.validated.settings.network === 'allowlist';
    if (wantsEgress) {
      // Refuses combinations the egress design does not cover (a runtime with its own network stack).
      validateEgressSettings(options.egress!.validated.settings, settings.runtime);
    }

    const shellLess = options.image?.hasShell === false;
    const toolsVolume = shellLess ? `${volumeName}-tools` : undefined;
    let volumeCreated = false;
    let toolsCreated = false;
    let containerId: string | undefined;
    let egress: EgressGateway | undefined;
    try {
      if (wantsEgress) {
        egress = await EgressGateway.start(engine, {
          egress: options.egress!.validated,
          boxName: name,
          boxImage: settings.image,
          labels,
          programPath: options.egress!.programPath,
          dns: options.egress!.dns,
          extraHosts: options.egress!.extraHosts,
          providerKeys: options.egress!.providerKeys,
          signal,
        });
      }
      const caches = settings.caches
        ? await prepareCaches(engine, {
            workspace: { folder: options.folder, host: options.ownerHost ?? os.hostname() },
            image: { reference, id: image.Id },
            maxSizeMiB: settings.cacheSizeMiB,
            labels,
            signal,
          })
        : undefined;
      const createOptions = containerCreateOptions(settings, {
        name,
        volumeName,
        labels,
        env: egress ? [...env, ...egress.proxyEnv] : env,
        caches,
      });
      await engine.call(
        `creating volume ${volumeName}`,
        (d, abortSignal) => d.createVolume({ ...volumeCreateOptions(settings, { volumeName, labels }), abortSignal }),
        { signal },
      );
      volumeCreated = true;
      if (settings.workspaceVolume === 'disk') {
        await giveVolumesToBoxUser(engine, settings.image, [{ volumeName, dir: WORKSPACE_DIR.slice(1) }], { labels, signal });
      }
      if (toolsVolume) {
        // No shell for the keep-alive loop: the box's own keep-alive, from a read-only volume of its own.
        const program = keepAliveProgram(image.Architecture, reference);
        await engine.call(`creating volume ${toolsVolume}`, (d, abortSignal) => d.createVolume({ Name: toolsVolume, Labels: labels, abortSignal }), {
          signal,
        });
        toolsCreated = true;
        await giveVolumesToBoxUser(engine, settings.image, [{ volumeName: toolsVolume, dir: TOOLS_DIR.slice(1), entries: toolsEntries(program) }], {
          labels,
          signal,
        });
        createOptions.Cmd = [KEEPALIVE_PROGRAM];
        createOptions.HostConfig!.Mounts!.push({ Type: 'volume', Source: toolsVolume, Target: TOOLS_DIR, ReadOnly: true });
      }
      const container = await engine.call(`creating container ${name}`, (d, abortSignal) => d.createContainer({ ...createOptions, abortSignal }), {
        signal,
        image: reference,
      });
      containerId = container.id;
      await engine.call(`starting container ${name}`, (d, abortSignal) => d.getContainer(container.id).start({ abortSignal }), {
        signal,
      });
      await egress?.attachRelay(container.id, signal);
      const boxImage: BoxImage = { ...options.image, reference, id: image.Id };
      const box = new Box(
        engine,
        { ...settings, image: reference },
        options.folder,
        container.id,
        name,
        volumeName,
        boxImage,
        egress,
        { labels },
        toolsVolume,
      );
      box.cacheVolumes = caches?.volumes.map((v) => v.volumeName) ?? [];
      return box;
    } catch (error) {
      // Nothing half-made is left behind: a failed create removes what it created.
      await egress?.remove().catch(() => undefined);
      await removeQuietly(engine, containerId, volumeCreated ? volumeName : undefined);
      if (toolsCreated) await removeQuietly(engine, undefined, toolsVolume);
      throw error;
    }
  }

  /** Extracts a tar stream into the box at `options.path` (absolute inside /workspace, or relative to it). */
  async putArchive(tar: Readable, options: { path: string; signal?: AbortSignal }): Promise<void> {
    const target = workspacePath(options.path);
    await this.engine.call(
      `sending files to ${target} in the box`,
      (d, abortSignal) =>
        d
          .getContainer(this.containerId)
          .putArchive(tar, { path: target, abortSignal })
          .then(() => undefined),
      { signal: options.signal, timeoutMs: ARCHIVE_TIMEOUT_MS },
    );
  }

  /** A tar stream of `path` (absolute inside /workspace, or relative to it) as the box has it. */
  async getArchive(archivePath: string, signal?: AbortSignal): Promise<Readable> {
    const target = workspacePath(archivePath);
    return this.engine.call(
      `reading ${target} from the box`,
      (d, abortSignal) => d.getContainer(this.containerId).getArchive({ path: target, abortSignal }) as Promise<Readable>,
      { signal },
    );
  }

  /** The box's OOM-kill count as its runs last saw it. */
  private readonly oomCounter: OomCounter = {};

  /** Runs a command; see `runInBox`. A command line in a box without a shell fails with `no-shell`. */
  exec(options: ExecOptions): Promise<ExecOutcome> {
    if (options.argv === undefined && this.image.hasShell === false) {
      return Promise.reject(noShellError(this.image.reference, 'a command line'));
    }
    const outcome = runInBox(this.engine, this.containerId, options, this.oomCounter);
    if (this.image.hasShell !== false) return outcome;
    // The tree killer is a shell script: without a shell a stopped run's process cannot be killed, and the run says so.
    return outcome.then((o) =>
      o.outcome === 'timeout' || o.outcome === 'cancelled'
        ? {
            ...o,
            error: `The image ${this.image.reference} has no shell (/bin/sh), so the run's process could not be killed: it may still be running in the box until Agent Sandbox: Reset Sandbox.`,
          }
        : o,
    );
  }

  /** True while the container exists and runs. */
  async isRunning(signal?: AbortSignal): Promise<boolean> {
    try {
      const info = await this.engine.call('inspecting the box', (d, abortSignal) => d.getContainer(this.containerId).inspect({ abortSignal }), {
        signal,
      });
      return info.State.Running;
    } catch (error) {
      if (SandboxError.is(error, 'not-found')) {
        return false;
      }
      throw error;
    }
  }

  /** Removes the container (forced) and its volume. Already-gone parts are fine. */
  async remove(): Promise<void> {
    // The relay first: it lives in the box's network namespace. The box goes even when that fails.
    let egressError: unknown;
    await this.egress?.remove().catch((error: unknown) => (egressError = error));
    await removeContainerAndVolume(this.engine, this.containerId, this.volumeName);
    if (this.toolsVolume) await removeContainerAndVolume(this.engine, undefined, this.toolsVolume);
    if (egressError) throw egressError;
  }
}

/** Removes a container (forced) and then a volume; a 404 on either counts as done. */
export async function removeContainerAndVolume(engine: DockerEngine, containerId: string | undefined, volumeName: string | undefined): Promise<void> {
  if (containerId) {
    await ignoreNotFound(
      engine.call(`removing container ${containerId.slice(0, 12)}`, (d, abortSignal) =>
        d.getContainer(containerId).remove({ force: true, v: false, abortSignal }),
      ),
    );
  }
  if (volumeName) {
    await ignoreNotFound(engine.call(`removing volume ${volumeName}`, (d, abortSignal) => d.getVolume(volumeName).remove({ abortSignal })));
  }
}

async function removeQuietly(engine: DockerEngine, containerId: string | undefined, volumeName: string | undefined): Promise<void> {
  try {
    await removeContainerAndVolume(engine, containerId, volumeName);
  } catch {
    // The original error matters more; orphan cleanup catches anything left.
  }
}

async function ignoreNotFound(promise: Promise<unknown>): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (!SandboxError.is(error, 'not-found') && engineStatusOf(error) !== 404) {
      throw error;
    }
  }
}

/** `/workspace`-rooted absolute path for an archive operation; refuses anything outside. */
function workspacePath(p: string): string {
  const resolved = path.posix.resolve(WORKSPACE_DIR, p.replace(/\\/g, '/'));
  if (resolved !== WORKSPACE_DIR && !resolved.startsWith(`${WORKSPACE_DIR}/`)) {
    throw new SandboxError('path-outside-workspace', `${JSON.stringify(p)} is outside /workspace in the box.`);
  }
  return resolved;
}
