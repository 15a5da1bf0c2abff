import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import type {
  ApplyPlan,
  BoxInfo,
  BoxSettings,
  CacheInfo,
  ChangeSet,
  EgressAttempt,
  EgressSettings,
  EngineReport,
  EngineSettings,
  ExecRequest,
  ExecResult,
  FileOpRequest,
  ImageBuildDecisions,
} from '../shared/protocol';
import { boxLabels, DEFAULT_BOX_SETTINGS, validateBoxSettings } from '../core/box/boxConfig';
import { describeImageReport } from '../core/docker/imageReportText';
import { isPinnedByDigest } from '../core/docker/imageReport';
import { decidePin, ImageStore, resolveBoxImage, tagMovedNote } from '../core/docker/imageStore';
import type { BoxCreateOptions } from '../core/box/box';
import { validateEgressSettings, type ValidatedEgress } from '../core/egress/gatewayConfig';
import { providersWithKeys, type ModelKeys } from '../core/egress/modelProviders';
import { processIsAlive, removeOrphans } from '../core/box/orphans';
import { DockerEngine } from '../core/docker/dockerEngine';
import { assertEngineAllowed, resolveEngineLocation } from '../core/docker/engineLocation';
import { SandboxError } from '../core/errors';
import { Disposable, toDisposable } from '../core/lifecycle';
import { BoxSession, type ProgressReporter } from '../core/session/boxSession';
import { runFileOp } from '../core/session/fileOps';
import { ReviewStore } from '../core/review/reviewStore';
import { WorkspaceWatch } from '../core/workspace/workspaceWatch';
import { CacheLastUse } from '../core/cache/cacheLastUse';
import { clearCaches, listCaches } from '../core/cache/cacheVolumes';
import { FolderImageResolver } from '../core/image/folderImage';
import { AUTO_IMAGE, DEFAULT_IMAGE } from '../core/image/imageSource';
import { errorText } from '../core/util/errorText';

export interface EngineServiceOptions {
  log: (line: string) => void;
  /** Called when orphaned boxes were removed at the first contact with the engine. */
  onOrphansRemoved?: (removed: { containers: string[]; volumes: string[] }) => void;
  /** Where pending reviews persist; without it they live only as long as the process. */
  storageDir?: string;
  /** The process environment (for the engine location and the env allowlist). */
  env?: Record<string, string | undefined>;
  homeDir?: string;
  /** The egress gateway program; default `gateway.js` next to this bundle (`dist/`). */
  gatewayProgramPath?: string;
  /** The Dev Containers CLI; default `devcontainers-cli/devcontainer.js` next to this bundle (`dist/`). */
  devcontainerCliPath?: string;
}

/**
 * The engine server's state: settings, the Docker engine, one box session per workspace folder, and the
 * runs in flight. Request handlers in `main.ts` call into it; it knows nothing of JSON-RPC.
 */
export class EngineService extends Disposable {
  /** Identifies this server process on the boxes it creates. */
  readonly ownerId = randomUUID();
  private boxSettings: BoxSettings = DEFAULT_BOX_SETTINGS;
  private engineSettings: EngineSettings = {};
  private egress: ValidatedEgress = validateEgressSettings(undefined);
  /** The user's answers about building folders' images (`image: "auto"`); undefined: build nothing. */
  private imageBuilds: ImageBuildDecisions | undefined;
  private folderImages: FolderImageResolver | undefined;
  /** The model API keys the gateways add; in this process's memory only (never logged, written or recorded). */
  private modelKeys: ModelKeys = {};
  /** Folders whose box was in use when the network settings changed in a way its gateway cannot take in place. */
  private readonly egressBehind = new Set<string>();
  private engine: DockerEngine | undefined;
  private orphansChecked: Promise<void> | undefined;
  private readonly sessions = new Map<string, Promise<BoxSession>>();
  private readonly runs = new Map<string, AbortController>();
  private readonly idleTimers = new Map<string, NodeJS.Timeout>();
  private runCounter = 0;
  private reviewStore: ReviewStore | undefined;
  /** Image reports and digest pins (next to the reviews when there is a storage directory). */
  private imageStore = new ImageStore();
  /** When this server's boxes last used each package cache. */
  private readonly cacheLastUse = new CacheLastUse();
  /**
   * Folders whose mirror overflowed `/workspace`, with the settings it had and a watch from its scan on: until a
   * file event or a settings change, creating their box fails again at once with the same error instead of
   * repeating a mirror that cannot fit.
   */
  private readonly overflowed = new Map<string, { error: SandboxError; settings: string; watch: WorkspaceWatch }>();

  constructor(private readonly options: EngineServiceOptions) {
    super();
    if (options.storageDir) this.setStorageDir(options.storageDir);
    this._register(
      toDisposable(() => {
        for (const timer of this.idleTimers.values()) clearTimeout(timer);
        for (const run of this.runs.values()) run.abort();
        for (const overflow of this.overflowed.values()) overflow.watch.dispose();
      }),
    );
  }

  private get env(): Record<string, string | undefined> {
    return this.options.env ?? process.env;
  }

  /** Pending reviews persist under this directory from now on (the extension's workspace storage). */
  setStorageDir(dir: string): void {
    this.reviewStore = new ReviewStore(path.join(dir, 'reviews'));
    this.imageStore = new ImageStore(path.join(dir, 'images'));
    this.cacheLastUse.setDir(dir);
  }

  /** Labels of the never-started containers image reports read (orphan cleanup removes any left behind). */
  private imageReaderLabels(): Record<string, string> {
    return boxLabels({ folder: '(image report)', ownerId: this.ownerId, ownerPid: process.pid, ownerHost: os.hostname() });
  }

  async configure(
    engine: EngineSettings,
    box: Partial<BoxSettings>,
    egress?: Partial<EgressSettings>,
    imageBuilds?: ImageBuildDecisions,
  ): Promise<void> {
    // Validate first so a bad setting leaves the previous configuration in force.
    const validated = validateBoxSettings(box);
    const validatedEgress = validateEgressSettings(egress, validated.runtime);
    if ((engine.dockerHost ?? '') !== (this.engineSettings.dockerHost ?? '')) {
      this.engine = undefined;
      this.orphansChecked = undefined;
    }
    this.engineSettings = { ...engine, allowInsecureHosts: [...(engine.allowInsecureHosts ?? [])] };
    this.boxSettings = validated;
    this.egress = validatedEgress;
    this.imageBuilds = imageBuilds && { allowed: [...imageBuilds.allowed], refused: [...imageBuilds.refused], ask: imageBuilds.ask };
    await this.applyEgress();
  }

  /** New model keys (all of them); running gateways get them at once. */
  async setModelKeys(keys: ModelKeys): Promise<{ providers: string[]; updatedBoxes: number; notes: string[] }> {
    this.modelKeys = { ...keys };
    this.options.log(`[egress] model keys set for: ${providersWithKeys(keys).join(', ') || 'none'}`);
    return { providers: providersWithKeys(keys), ...(await this.applyEgress()) };
  }

  /** What `Box.create` and `Box.replaceEgress` get: the current rules and keys. */
  private egressOptions(): NonNullable<BoxCreateOptions['egress']> {
    return {
      validated: this.egress,
      programPath: this.options.gatewayProgramPath ?? path.join(__dirname, 'gateway.js'),
      providerKeys: this.modelKeys,
    };
  }

  /**
   * Brings every live box to the current network settings and keys. Rules, keys and CA change in the running
   * gateway (attempts under way keep theirs). A change the gateway cannot take in place (none ↔ allowlist, the
   * gateway's image, network or resolvers) gives the box a new gateway when nothing runs; a box in use keeps
   * its way out until then, and its runs and terminals say so.
   */
  private async applyEgress(): Promise<{ updatedBoxes: number; notes: string[] }> {
    let updatedBoxes = 0;
    const notes: string[] = [];
    for (const [key, pending] of [...this.sessions]) {
      const session = await pending.catch(() => undefined);
      if (!session) continue;
      const gateway = session.box.egress;
      if (
        gateway &&
        !gateway.exited &&
        this.egress.settings.network === 'allowlist' &&
        sameGatewayContainer(gateway.configuration.egress, this.egress)
      ) {
        try {
          await gateway.reconfigure({ egress: this.egress, providerKeys: this.modelKeys });
          updatedBoxes++;
          continue;
        } catch (error) {
          this.options.log(`[egress] ${key}: the gateway did not take the new settings (${(error as Error).message}); it is replaced`);
        }
      } else if (!gateway && this.egress.settings.network === 'none') {
        this.egressBehind.delete(key);
        session.egressNote = undefined;
        continue;
      }
      this.egressBehind.add(key);
      if (await this.catchUpEgress(key, session)) {
        updatedBoxes++;
      } else {
        notes.push(session.egressNote!);
      }
    }
    return { updatedBoxes, notes };
  }

  /** Before a run or terminal: a box left behind by a network settings change catches up if nothing else runs. */
  private async followEgressSettings(key: string, signal?: AbortSignal): Promise<void> {
    const pending = this.egressBehind.has(key) ? this.sessions.get(key) : undefined;
    const session = await pending?.catch(() => undefined);
    if (session) await this.catchUpEgress(key, session, signal);
  }

  /**
   * For a box whose network settings could not change in place: a new gateway (or none) when nothing runs;
   * otherwise a note on its runs and terminals. Returns whether the box now follows the settings.
   */
  private async catchUpEgress(key: string, session: BoxSession, signal?: AbortSignal): Promise<boolean> {
    if (!this.egressBehind.has(key)) return true;
    if (this.runs.size > 0) {
      const was = session.box.egress ? 'its previous network rules' : 'no network';
      session.egressNote = `The network settings changed while this box was in use: it keeps ${was} until its terminals and runs have ended (the next run or terminal after that gets the new settings), or until Agent Sandbox: Reset Sandbox.`;
      return false;
    }
    this.egressBehind.delete(key);
    session.egressNote = undefined;
    await session.box.replaceEgress(this.egressOptions(), signal);
    this.options.log(`[egress] ${key}: the box got ${session.box.egress ? 'a new gateway' : 'no network'} for the changed settings`);
    return true;
  }

  get settings(): BoxSettings {
    return this.boxSettings;
  }

  /** The engine wrapper; the first call also removes boxes left behind by dead servers. */
  async getEngine(): Promise<DockerEngine> {
    if (!this.engine) {
      const location = resolveEngineLocation({
        setting: this.engineSettings.dockerHost || undefined,
        env: this.env,
        homeDir: this.options.homeDir ?? os.homedir(),
        platform: process.platform,
      });
      // Before the first byte goes out: an unencrypted remote engine needs the user's allowance.
      assertEngineAllowed(location, this.engineSettings.allowInsecureHosts);
      this.engine = new DockerEngine(location, { log: this.options.log });
    }
    const engine = this.engine;
    if (!this.orphansChecked) {
      this.orphansChecked = removeOrphans(engine, { isAlive: processIsAlive, currentOwnerId: this.ownerId })
        .then((removed) => {
          if (removed.containers.length + removed.volumes.length > 0) {
            this.options.log(
              `[engine] removed orphaned boxes: ${removed.containers.join(', ') || '-'}; volumes: ${removed.volumes.join(', ') || '-'}`,
            );
            this.options.onOrphansRemoved?.(removed);
          }
        })
        .catch((error) => {
          this.orphansChecked = undefined;
          throw error;
        });
    }
    await this.orphansChecked;
    return engine;
  }

  async checkEngine(): Promise<EngineReport> {
    const engine = await this.getEngine();
    const [version, info] = await Promise.all([engine.version(), engine.info()]);
    const reference = this.settingImage();
    const image = await engine.inspectImage(reference);
    const pin = this.boxSettings.pinImageDigest !== false;
    const pinnedId = pin ? await this.imageStore.pinned(reference) : undefined;
    const decision = decidePin(reference, image?.Id, pinnedId, pin);
    const reportId = decision.use === 'pinned' ? decision.id : image?.Id;
    // The report of the image a box would run; made now when it is the first look at that id (pins nothing).
    const report = reportId
      ? await this.imageStore
          .report(engine, reference, reportId, { labels: this.imageReaderLabels() })
          .catch((error: unknown) => this.options.log(`[image] no report for ${reference}: ${errorText(error)}`))
      : undefined;
    if (report) describeImageReport(report).forEach((line) => this.options.log(`[image] ${line}`));
    return {
      host: engine.location.host,
      source: engine.location.source,
      version: version.Version,
      apiVersion: version.ApiVersion,
      os: `${version.Os}/${version.Arch}`,
      runtimes: Object.keys(info.Runtimes ?? {}),
      defaultRuntime: info.DefaultRuntime ?? '',
      image: {
        reference,
        present: image !== undefined,
        id: image?.Id,
        ...(pinnedId ? { pinnedId } : {}),
        ...(decision.use === 'pinned' && decision.movedTo ? { note: tagMovedNote(reference, decision.id, decision.movedTo) } : {}),
        ...(report ? { report: { ...report, reference, pinnedByDigest: isPinnedByDigest(reference) } } : {}),
      },
    };
  }

  /** Pins the configured reference anew to what its tag points to now (the next box uses it). */
  async followImageTag(): Promise<EngineReport> {
    const engine = await this.getEngine();
    const reference = this.settingImage();
    const image = await engine.inspectImage(reference);
    if (!image) {
      throw new SandboxError(
        'image-missing',
        `Image ${reference} is not present locally. Pull it (Agent Sandbox: Pull Image) or set agentSandbox.image.`,
        {
          setting: 'agentSandbox.image',
        },
      );
    }
    await this.imageStore.setPin(reference, this.boxSettings.pinImageDigest !== false ? image.Id : undefined);
    this.options.log(`[image] ${reference} now follows its tag: ${image.Id}; running boxes keep their image until reset`);
    return this.checkEngine();
  }

  async pullImage(reference: string | undefined, progress: ProgressReporter, signal?: AbortSignal): Promise<void> {
    const engine = await this.getEngine();
    await engine.pullImage(reference ?? this.settingImage(), progress, signal);
  }

  /** The image setting without a folder: `auto` means the default image (a folder's own is built with its box). */
  private settingImage(): string {
    return this.boxSettings.image === AUTO_IMAGE ? DEFAULT_IMAGE : this.boxSettings.image;
  }

  /** The image of the folder's box: the setting's, or for `auto` the folder's dev container or Dockerfile, built. */
  private resolveFolderImage(engine: DockerEngine, folder: string, progress: ProgressReporter, signal?: AbortSignal) {
    this.folderImages ??= new FolderImageResolver({
      devcontainerCliPath: this.options.devcontainerCliPath ?? path.join(__dirname, 'devcontainers-cli', 'devcontainer.js'),
      env: this.env,
      log: this.options.log,
    });
    return this.folderImages.resolve({ engine, folder, setting: this.boxSettings.image, decisions: this.imageBuilds, progress, signal });
  }

  /** The folder's box, created and mirrored on first use. Concurrent callers share one creation. */
  async ensureBox(folder: string, progress: ProgressReporter, signal?: AbortSignal): Promise<BoxSession> {
    const key = normalizeFolder(folder);
    let pending = this.sessions.get(key);
    if (!pending) {
      pending = (async () => {
        await this.failIfStillOverflowing(key);
        const engine = await this.getEngine();
        const reviewStore = this.reviewStore;
        const restore = await reviewStore?.load(key);
        const image = await this.resolveFolderImage(engine, key, progress, signal);
        const settings = { ...this.boxSettings, image: image.reference };
        const watch = new WorkspaceWatch(key);
        try {
          const resolved = await resolveBoxImage(engine, this.imageStore, settings.image, {
            pin: settings.pinImageDigest !== false,
            labels: this.imageReaderLabels(),
            signal,
          });
          if (resolved.image.note) this.options.log(`[image] ${resolved.image.note}`);
          const session = await BoxSession.open(
            {
              engine,
              settings,
              folder: key,
              ownerId: this.ownerId,
              env: this.allowlistedEnv(),
              log: this.options.log,
              reviewStore,
              watch,
              egress: this.egressOptions(),
              image: resolved.image,
            },
            progress,
            signal,
            restore,
          );
          session.imageSource = image.source;
          return session;
        } catch (error) {
          if (SandboxError.is(error, 'workspace-full') && !this.isDisposed) {
            this.overflowed.set(key, { error, settings: JSON.stringify(this.boxSettings), watch });
          } else {
            watch.dispose();
          }
          throw error;
        }
      })();
      this.sessions.set(key, pending);
      pending.catch(() => {
        if (this.sessions.get(key) === pending) this.sessions.delete(key);
      });
    }
    const session = await pending;
    this.touch(key);
    await this.cacheLastUse.mark(session.box.cacheVolumes);
    return session;
  }

  /** Throws the folder's last overflow again while neither its files nor the settings changed since. */
  private async failIfStillOverflowing(key: string): Promise<void> {
    const overflow = this.overflowed.get(key);
    if (!overflow) return;
    if (overflow.settings === JSON.stringify(this.boxSettings) && (await overflow.watch.unchanged())) {
      this.options.log(`[engine] ${key}: the workspace still does not fit (no file or settings change since the last mirror)`);
      throw new SandboxError(overflow.error.reason, overflow.error.message, { ...overflow.error.options });
    }
    overflow.watch.dispose();
    this.overflowed.delete(key);
  }

  /**
   * The folder's box for a long-lived user (a terminal): created if needed, and kept from idle removal until
   * `release` is called. A box that turns out to be gone (`no-box`) is forgotten, so the next use starts fresh.
   */
  async holdBox(
    folder: string,
    progress: ProgressReporter,
    signal?: AbortSignal,
  ): Promise<{ session: BoxSession; release(): void; forget(): Promise<void> }> {
    const key = normalizeFolder(folder);
    await this.followEgressSettings(key, signal);
    const session = await this.ensureBox(key, progress, signal);
    const holdId = `hold-${++this.runCounter}`;
    // Idle removal waits while anything is in `runs`; a held box counts as in use.
    this.runs.set(holdId, new AbortController());
    return {
      session,
      release: () => {
        this.runs.delete(holdId);
        this.touch(key);
      },
      forget: () => this.removeSession(key),
    };
  }

  async boxInfo(folder: string, progress: ProgressReporter, signal?: AbortSignal): Promise<BoxInfo> {
    return (await this.ensureBox(folder, progress, signal)).info;
  }

  async exec(
    params: ExecRequest.Params,
    onOutput: (runId: string, stream: 'stdout' | 'stderr', text: string) => void,
    progress: ProgressReporter,
    signal?: AbortSignal,
  ): Promise<ExecResult> {
    const runId = params.runId ?? `run-${++this.runCounter}`;
    await this.followEgressSettings(normalizeFolder(params.folder), signal);
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort);
    this.runs.set(runId, controller);
    try {
      const session = await this.ensureBox(params.folder, progress, controller.signal);
      const result = await session.exec(
        {
          command: params.command,
          argv: params.argv,
          cwd: params.cwd,
          stdin: params.stdin,
          timeoutSeconds: params.timeoutSeconds,
          runId,
          network: params.network,
        },
        (stream, text) => onOutput(runId, stream, text),
        controller.signal,
      );
      if (result.boxLost) {
        // The run ended because the box went away: forget it so the next run starts fresh.
        await this.removeSession(normalizeFolder(params.folder)).catch(() => undefined);
        return {
          ...result,
          error: `${result.error ?? 'The box was lost during the run'}; ${this.lostBoxConsequence()}. The next run starts a fresh box.`,
        };
      }
      this.touch(normalizeFolder(params.folder));
      return result;
    } catch (error) {
      if (SandboxError.is(error, 'no-box')) {
        // The container is gone or stopped (killed from inside or outside): forget it so the next run starts fresh.
        await this.removeSession(normalizeFolder(params.folder)).catch(() => undefined);
        throw new SandboxError(
          'no-box',
          `The box stopped while in use (killed from inside or removed from outside); ${this.lostBoxConsequence()}. The next run starts a fresh box.`,
          { cause: error },
        );
      }
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.runs.delete(runId);
    }
  }

  /** What losing a box costs: with a review store the last collect's pending review is on disk and the next box gets it back. */
  private lostBoxConsequence(): string {
    return this.reviewStore
      ? 'what changed in it since the last collect is lost; the pending review of that collect is kept and goes into the next box'
      : 'its pending changes are lost';
  }

  cancelRun(runId: string): boolean {
    const run = this.runs.get(runId);
    run?.abort();
    return run !== undefined;
  }

  async collect(folder: string, signal?: AbortSignal): Promise<ChangeSet> {
    const session = await this.existingSession(folder);
    return session.collect(signal);
  }

  /**
   * The folder's pending changes without touching the engine: the live box's last collect, or the review
   * persisted by an earlier window or server, or nothing.
   */
  async pendingChanges(folder: string): Promise<ChangeSet> {
    const key = normalizeFolder(folder);
    const live = this.sessions.get(key);
    if (live) {
      const session = await live.catch(() => undefined);
      if (session?.lastChangeSet) return session.lastChangeSet;
    }
    const stored = await this.reviewStore?.load(key);
    return stored?.changeSet ?? { folder: key, changes: [], refused: [], ignoredCount: 0 };
  }

  /** What the folder's box tried to reach through its gateway (none without a box or a gateway); never creates a box. */
  async egressAttempts(folder: string, runId?: string): Promise<{ network: 'none' | 'allowlist'; attempts: EgressAttempt[] }> {
    const live = this.sessions.get(normalizeFolder(folder));
    const gateway = live ? (await live.catch(() => undefined))?.box.egress : undefined;
    if (!gateway) return { network: 'none', attempts: [] };
    return { network: 'allowlist', attempts: gateway.attempts.filter((a) => runId === undefined || a.runId === runId) };
  }

  async readProposal(folder: string, filePath: string): Promise<Buffer> {
    const key = normalizeFolder(folder);
    if (!this.sessions.has(key)) {
      // After a reload the proposals are read from the persisted review; no box is started to show a diff.
      const stored = await this.reviewStore?.load(key);
      const change = stored?.changeSet.changes.find((c) => c.path === filePath);
      if (stored && change) {
        if (change.kind === 'deleted' || change.type !== 'file') return Buffer.alloc(0);
        const content = stored.contents.get(filePath);
        if (content) return content;
      }
    }
    return (await this.reviewSession(folder)).readProposal(filePath);
  }

  async readBase(folder: string, filePath: string): Promise<Buffer | undefined> {
    const key = normalizeFolder(folder);
    if (!this.sessions.has(key)) return (await this.reviewStore?.load(key))?.baseContents.get(filePath);
    return (await this.existingSession(key)).readBase(filePath);
  }

  async planApply(
    folder: string,
    selection: { paths?: string[]; approveFlagged?: string[]; takeBoxVersion?: string[]; dirtyEditors?: { path: string; hash: string }[] },
    signal?: AbortSignal,
  ): Promise<ApplyPlan> {
    return (await this.reviewSession(folder, signal)).planApply(selection, signal);
  }

  async apply(folder: string, selection: { paths?: string[]; approveFlagged?: string[]; takeBoxVersion?: string[] }, signal?: AbortSignal) {
    return (await this.reviewSession(folder, signal)).apply(selection, signal);
  }

  async markApplied(folder: string, paths: string[]): Promise<void> {
    await (await this.reviewSession(folder)).markApplied(paths);
  }

  async advanceBaseline(folder: string, paths: string[], signal?: AbortSignal): Promise<ChangeSet> {
    return (await this.reviewSession(folder, signal)).advanceBaseline(paths, signal);
  }

  async discard(folder: string, paths: string[] | undefined, signal?: AbortSignal): Promise<void> {
    await (await this.reviewSession(folder, signal)).discard(paths, signal);
  }

  async fileOp(params: FileOpRequest.Params, progress: ProgressReporter, signal?: AbortSignal): Promise<FileOpRequest.Result> {
    const session = await this.ensureBox(params.folder, progress, signal);
    return runFileOp(session, params, signal);
  }

  /** Removes one folder's box, or all of this server's boxes. */
  /**
   * Removes one folder's box, or all of this server's boxes. Their pending reviews stay persisted (the next box
   * gets them back) unless `discardPending`.
   */
  async reset(folder?: string, options: { discardPending?: boolean } = {}): Promise<void> {
    const keys = folder ? [normalizeFolder(folder)] : [...this.sessions.keys()];
    // A reset is a deliberate fresh start: a remembered overflow is tried again.
    for (const key of folder ? keys : [...this.overflowed.keys()]) {
      this.overflowed.get(key)?.watch.dispose();
      this.overflowed.delete(key);
    }
    await Promise.all(keys.map((key) => this.removeSession(key)));
    if (options.discardPending) {
      await Promise.all(keys.map((key) => this.reviewStore?.clear(key)));
    }
  }

  /** Every package cache on the engine (all workspaces), with size, use and last use. */
  async listCaches(signal?: AbortSignal): Promise<{ caches: CacheInfo[] }> {
    return { caches: await listCaches(await this.getEngine(), await this.cacheLastUse.all(), signal) };
  }

  /** Removes the named package caches, or all; those a running box mounts stay (`inUse`). */
  async clearCaches(volumeNames: string[] | undefined, signal?: AbortSignal): Promise<{ removed: string[]; inUse: string[] }> {
    const result = await clearCaches(await this.getEngine(), volumeNames, signal);
    await this.cacheLastUse.forget(result.removed);
    this.options.log(
      `[cache] cleared ${result.removed.length} cache(s)${result.inUse.length ? `; ${result.inUse.length} in use by a box stayed` : ''}`,
    );
    return result;
  }

  private async removeSession(key: string): Promise<void> {
    const pending = this.sessions.get(key);
    this.sessions.delete(key);
    this.egressBehind.delete(key);
    const timer = this.idleTimers.get(key);
    if (timer) clearTimeout(timer);
    this.idleTimers.delete(key);
    if (!pending) return;
    const session = await pending.catch(() => undefined);
    await session?.remove();
    this.options.log(`[engine] removed the box of ${key}`);
  }

  /**
   * The session a review action works on: the live box, or — when only a persisted review exists (after a
   * reload or a server restart) — a new box that gets those pending changes back first.
   */
  private async reviewSession(folder: string, signal?: AbortSignal): Promise<BoxSession> {
    const key = normalizeFolder(folder);
    if (!this.sessions.has(key) && (await this.reviewStore?.load(key))) {
      return this.ensureBox(key, () => undefined, signal);
    }
    return this.existingSession(key);
  }

  private async existingSession(folder: string): Promise<BoxSession> {
    const key = normalizeFolder(folder);
    const pending = this.sessions.get(key);
    if (!pending) {
      throw new SandboxError('no-box', `There is no box for ${key} yet. Run a command in the sandbox first.`);
    }
    const session = await pending;
    this.touch(key);
    await this.cacheLastUse.mark(session.box.cacheVolumes);
    return session;
  }

  /** Restarts the idle countdown of a folder's box. */
  private touch(key: string): void {
    const minutes = this.boxSettings.idleTimeoutMinutes;
    const previous = this.idleTimers.get(key);
    if (previous) clearTimeout(previous);
    if (minutes <= 0) return;
    const timer = setTimeout(() => {
      if ([...this.runs.keys()].length > 0) {
        this.touch(key);
        return;
      }
      this.options.log(`[engine] ${key}: idle for ${minutes} min, removing its box`);
      void this.removeSession(key).catch((error) => this.options.log(`[engine] idle removal failed: ${error}`));
    }, minutes * 60_000);
    timer.unref();
    this.idleTimers.set(key, timer);
  }

  private allowlistedEnv(): string[] {
    return this.boxSettings.envAllowlist.flatMap((name) => {
      const value = this.env[name];
      return value === undefined ? [] : [`${name}=${value}`];
    });
  }
}

/** Whether two egress settings run the same gateway container (image, network, resolvers): then rules, keys and CA change in place. */
function sameGatewayContainer(a: ValidatedEgress, b: ValidatedEgress): boolean {
  const container = (e: ValidatedEgress) => JSON.stringify([e.settings.gatewayImage, e.settings.gatewayNetwork, e.settings.gatewayDns]);
  return container(a) === container(b);
}

function normalizeFolder(folder: string): string {
  if (!path.isAbsolute(folder)) {
    throw new SandboxError('path-outside-workspace', `The folder must be an absolute path, got "${folder}".`);
  }
  return path.resolve(folder);
}
