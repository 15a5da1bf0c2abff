import { promises as fs } from 'node:fs';
import type {
  ApplyPlan,
  BoxInfo,
  BoxSettings,
  ChangeEntry,
  ChangeSet,
  ExecResult,
  GitHistoryMode,
  ImageSourceInfo,
  RunPolicy,
} from '../../shared/protocol';
import { planApply } from '../apply/applyPlan';
import { applyToFolder } from '../apply/applyToFolder';
import { hashStamped, type StampedHash } from '../apply/fileStamp';
import { Box, type BoxCreateOptions } from '../box/box';
import { boxProxyEnv, offlineProxyEnv, runProxyEnv } from '../egress/gatewayConfig';
import type { ExecOutcome } from '../box/boxRun';
import { workspaceFullAfterFailure } from '../box/boxDisk';
import { computeChangeSet } from '../changes/changeSet';
import type { DockerEngine } from '../docker/dockerEngine';
import { removeInBox, restoreZeroModesInBox } from './fileOps';
import { BOX_GID, BOX_UID, isGvisorRuntime } from '../box/boxConfig';
import { CALLER_MUST_SEE, SandboxError } from '../errors';
import { BoxTreeReader, boxReadAccess, MIRROR_LISTING, type CollectInfo } from './boxTreeReader';
import { pendingReviewOf, restoreArchive, restorePlan, ReviewPersistence, type CollectedForReview } from './pendingReview';
import type { PendingReview, ReviewStore } from '../review/reviewStore';
import { sameState, type Manifest, type ManifestEntry } from '../workspace/manifest';
import { ancestorsOf } from '../workspace/pathGuard';
import { SyncFilter } from '../workspace/syncFilter';
import { isGitConfigPath } from '../workspace/gitConfigSanitizer';
import { hashFile, scanWorkspaceTree, type ScanSkipReason, type WorkspaceScan } from '../workspace/workspaceScan';
import { ignoresCase } from '../workspace/folderCase';
import { WorkspaceWatch } from '../workspace/workspaceWatch';
import { packWorkspace } from '../workspace/workspaceTar';
import { extractWithBoxTar } from '../box/boxTarExtract';
import type { BoxHelperResult } from '../box/boxExec';
import { findRepositories, makeFreshRepositories } from './freshRepository';
import { forEachBounded } from '../util/concurrency';
import { sha256 } from '../util/hash';
import { errorText } from '../util/errorText';
import { hostPath } from '../workspace/hostPath';

/** Packed workspace that may wait while the box starts (memory bought for time: all of a small tree). */
const MIRROR_PACK_AHEAD_BYTES = 8 * 1024 * 1024;
/** Above this many host edits, catch-up asks the box for its whole tree instead of one path at a time. */
const PER_PATH_CHECK_LIMIT = 200;
/** Per-path checks in flight at once. */
/** Workspace files hashed at once before an apply. */
const REHASH_CONCURRENCY = 8;
const PER_PATH_CHECK_CONCURRENCY = 8;

export interface BoxSessionOptions {
  engine: DockerEngine;
  settings: BoxSettings;
  /** Absolute path of the workspace folder on the host. */
  folder: string;
  /** Identifies the server process that owns the box (label on the container). */
  ownerId: string;
  /** `NAME=value` pairs from the env allowlist. */
  env: string[];
  log: (line: string) => void;
  /** Where pending reviews persist (survives window reloads and server restarts); none for throwaway clients. */
  reviewStore?: ReviewStore;
  /**
   * How a stamped collect reads files that may have changed: `box-tar` (default) one exec of the image's tar
   * for all of them (see `BoxSession.readCandidatesInBox`), `archive` one engine archive request each.
   */
  readChangedFiles?: 'box-tar' | 'archive';
  /**
   * How the workspace is mirrored in (see `mirrorRoute`): by default the image's own tar run as the box user
   * when it may (`extractWithBoxTar`), else the engine's archive API; `box-tar` and `archive` force one (tests,
   * bench; `box-tar` still falls back to the archive API when the image has no tar).
   */
  mirrorWith?: 'box-tar' | 'archive';
  /**
   * Watches the workspace from the mirror's own scan on (see `WorkspaceWatch`). The session owns it once `open`
   * succeeds; when `open` fails the caller still has it, and can tell whether anything changed since that scan
   * (the server fails a mirror that overflowed again at once until files or settings change).
   */
  watch?: WorkspaceWatch;
  /** The box's way out (`network: "allowlist"`), passed to `Box.create`; absent = no network. */
  egress?: BoxCreateOptions['egress'];
  /** The image as resolved (pinned id, report), passed to `Box.create`; absent = what the reference points to now. */
  image?: BoxCreateOptions['image'];
}

/** Progress callback for long work: files and bytes so far. */
export type ProgressReporter = (message: string, done?: number, total?: number) => void;

/** What the box has that differs from the baseline, as of the last collect (see `CollectedForReview`). */
type CollectedState = CollectedForReview;

/** Base contents are kept for at most this many changed files, each at most `BASE_CONTENT_MAX_BYTES`. */
const BASE_CONTENT_MAX_FILES = 500;
const BASE_CONTENT_MAX_BYTES = 1024 * 1024;

/**
 * One workspace folder's box and everything known about it: the baseline (what the box was given, path by
 * path), and the last collected change set with the proposal contents. Owns the loop of design.md:
 * mirror in, catch up, run, collect, apply / discard.
 *
 * Two manifests, updated together at every sync:
 * - `baseline`: what the box holds as agreed content — what was actually sent in (a sanitized `.git/config`,
 *   the bytes of a file that changed while being sent), or what was applied from the box. Collect compares
 *   the box with it; apply plans compare the workspace with it.
 * - `hostState`: what the workspace looked like at that sync. Catch-up compares the workspace with it, so a
 *   file that is sent altered (`.git/config`) is not sent again on every run.
 */
/** What a scan left out that nothing may be written at or through, in words for the conflict it causes. */
const OBSTACLES: Partial<Record<ScanSkipReason, string>> = {
  'symlink-outside': 'a symbolic link that leads outside the folder',
  'special-file': 'a fifo, socket or device',
  unreadable: 'unreadable',
};

/** Beyond this share of the box's memory limit, a tmpfs workspace is not written by the box's own tar. */
export const BOX_TAR_MEMORY_SHARE = 0.25;

/**
 * How the mirror goes in. The image's own tar, streamed into an exec, takes about half the archive API's time,
 * but the pages it writes into a tmpfs `/workspace` are charged to the box's memory cgroup (the engine's archive
 * API extracts from the daemon's side, whose pages are not): so a tmpfs workspace whose size (rounded up to
 * pages) is over `BOX_TAR_MEMORY_SHARE` of `memoryMiB` goes through the archive API, and the box keeps its memory
 * for its runs — a workspace as large as the limit could not be mirrored at all otherwise (the tar is OOM-killed).
 * The archive API too for a box without a shell (nothing to run tar with) and under gVisor (the box's own tar
 * writes through the gofer: the bench measured it 10× slower there). `why` says why, when not the box's tar.
 */
export function mirrorRoute(
  settings: Pick<BoxSettings, 'runtime' | 'workspaceVolume' | 'memoryMiB'>,
  workspace: { hasShell: boolean; files: number; bytes: number; mirrorWith?: 'box-tar' | 'archive' },
): { via: 'box-tar' | 'archive'; why?: string } {
  if (workspace.mirrorWith === 'archive') return { via: 'archive' };
  if (!workspace.hasShell) return { via: 'archive', why: 'the image has no shell to run tar with' };
  if (isGvisorRuntime(settings.runtime)) return { via: 'archive', why: "under gVisor the box's own tar writes through the gofer, much slower" };
  if (workspace.mirrorWith === 'box-tar' || settings.workspaceVolume !== 'tmpfs') return { via: 'box-tar' };
  const onTmpfs = workspace.bytes + workspace.files * 4096;
  const share = settings.memoryMiB * 1024 * 1024 * BOX_TAR_MEMORY_SHARE;
  if (onTmpfs <= share) return { via: 'box-tar' };
  return {
    via: 'archive',
    why: `the workspace (~${Math.ceil(onTmpfs / 1048576)} MiB in memory) is over ${BOX_TAR_MEMORY_SHARE * 100}% of agentSandbox.memoryMiB (${settings.memoryMiB}), and what the box's own tar writes into the in-memory /workspace would count against it`,
  };
}

/** A scan with what it left out that an apply must not write over (see `OBSTACLES`). */
function scanResult(scan: WorkspaceScan): { scan: WorkspaceScan; obstacles: Map<string, string> } {
  const obstacles = new Map<string, string>();
  for (const [relPath, reason] of scan.skipped) {
    const what = OBSTACLES[reason];
    if (what) obstacles.set(relPath, what);
  }
  return { scan, obstacles };
}

export class BoxSession {
  /**
   * Set by the engine server when the network settings changed while this box was in use and its network
   * mode (none / allowlist) cannot change in place: runs and terminals say so until the box is made anew.
   */
  egressNote: string | undefined;
  /** Where the box's image came from (set by the engine server): shown in the box's info and every run's result. */
  imageSource: ImageSourceInfo | undefined;
  /**
   * How long `open` took until the box was ready for runs, and how much of it creating and starting the box
   * took (alongside the scan), both from the scan's start (the benchmark's mirror time is the difference).
   */
  openedIn: { boxMs: number; totalMs: number } = { boxMs: 0, totalMs: 0 };
  private collected: CollectedState | undefined;
  /** Reads the box's tree for collect and catch-up, keeping the stamps that make it cheap. */
  private readonly reader: BoxTreeReader;
  /** The pending review's copy on disk. */
  private readonly persistence: ReviewPersistence;
  /** Knows which directories changed since the last scan, so catch-up lists only those again (or none). */
  private readonly watch: WorkspaceWatch;
  /** The last scan (callers never mutate what `scanHost` returns: catch-up may reuse it) and what it left out. */
  private lastScan: { scan: WorkspaceScan; obstacles: Map<string, string> } | undefined;
  private caseInsensitive: Promise<boolean> | undefined;
  private hostScanCount = 0;
  private partialScanCount = 0;
  /** What the box holds of git (see `BoxInfo.git`), and why when that is not what the setting asks for. */
  private git: { mode: GitHistoryMode; note?: string } = { mode: 'none' };

  private constructor(
    private readonly options: BoxSessionOptions,
    readonly box: Box,
    private readonly filter: SyncFilter,
    private readonly baseline: Manifest,
    private readonly hostState: Manifest,
    readonly mirrored: { files: number; bytes: number },
  ) {
    this.watch = options.watch ?? new WorkspaceWatch(options.folder);
    this.reader = new BoxTreeReader(boxReadAccess(options.engine, box), baseline, filter, {
      maxFileBytes: options.settings.maxFileSizeMiB * 1024 * 1024,
      readsWithBoxTar: (options.readChangedFiles ?? 'box-tar') === 'box-tar',
      // The image report found no /bin/sh: no listing or tar in the box; collect reads through the archive API.
      boxHasShell: box.image.hasShell !== false,
      log: options.log,
    });
    this.persistence = new ReviewPersistence(options.reviewStore, options.folder, options.log);
  }

  /**
   * Creates the box and mirrors the workspace into it. With `restore` (a review persisted from an earlier box),
   * the box then gets those pending changes back, against their old baseline, so the review goes on as it was.
   */
  static async open(options: BoxSessionOptions, progress: ProgressReporter, signal?: AbortSignal, restore?: PendingReview): Promise<BoxSession> {
    const { settings, folder } = options;
    const gitHistory: GitHistoryMode = settings.gitHistory ?? 'fresh';
    // Except in `full`, no `.git` is sent, caught up or collected: the box's own is box-only state.
    const filter = await SyncFilter.create(folder, {
      exclude: settings.exclude,
      useGitignore: settings.useGitignore,
      leaveOutGit: gitHistory !== 'full',
    });
    const started = performance.now();
    const phases: string[] = [];
    const phase = (name: string, since: number): number => {
      const now = performance.now();
      phases.push(`${name} ${Math.round(now - since)} ms`);
      return now;
    };
    // The box is created and started while the workspace is scanned: neither needs the other. A scan that
    // fails (cancelled, or a workspace that cannot fit) removes the box once it is up.
    progress('Starting box');
    let boxMs = 0;
    const creating = Box.create(options.engine, settings, {
      folder,
      ownerId: options.ownerId,
      env: options.env,
      signal,
      egress: options.egress,
      image: options.image,
    }).then((created) => {
      boxMs = performance.now() - started;
      return created;
    });
    const removeCreated = (): Promise<void> => creating.then((created) => created.remove()).catch(() => undefined);
    // Rejections are seen where it is awaited (or dropped by removeCreated after a failed scan).
    creating.catch(() => undefined);
    progress('Scanning workspace');
    // Listed with lstat only: packing reads every file anyway and reports the hash of what it sent, so the host
    // state is completed from that below instead of reading the whole tree twice.
    const hooks = await options.watch?.beginScan();
    let tree: WorkspaceScan | undefined;
    try {
      tree = await scanWorkspaceTree(folder, filter, {
        signal,
        hashFiles: false,
        beforeListing: hooks?.beforeListing,
        onProgress: (files) => progress('Scanning workspace', files),
      });
    } catch (error) {
      await removeCreated();
      throw error;
    } finally {
      options.watch?.endScan(tree?.manifest);
    }
    const mirrorScan: WorkspaceScan = tree;
    const scanned = mirrorScan.manifest;
    const files = [...scanned.values()].filter((e) => e.type === 'file');
    const totalBytes = files.reduce((n, e) => n + e.size, 0);
    const sizeBytes = settings.workspaceSizeMiB * 1024 * 1024;
    if (settings.workspaceVolume === 'tmpfs' && totalBytes > sizeBytes) {
      // Cannot fit, whatever the file system's overhead: the box started alongside the scan is removed.
      await removeCreated();
      throw workspaceOverflow(settings, files.length, totalBytes);
    }
    let mark = phase('scan', started);
    // Packing starts now and goes on while the box starts, up to MIRROR_PACK_AHEAD_BYTES. Directories are sent
    // opened (owner rwx) whichever way they go in, and get their modes after: the two ways leave the same tree.
    const sent: Manifest = new Map();
    let notSent = 0;
    let boxUp = false;
    // A box without a shell (its image report says so) can run neither tar nor chmod: the archive API alone,
    // which extracts as root, so directories need not be opened for it.
    const boxHasShell = options.image?.hasShell !== false;
    const tar = packWorkspace(folder, scanned.values(), {
      uid: BOX_UID,
      gid: BOX_GID,
      signal,
      openDirectories: boxHasShell,
      bufferBytes: MIRROR_PACK_AHEAD_BYTES,
      onProgress: (done, bytes) => boxUp && progress(`Mirroring workspace (${done}/${files.length} files)`, bytes, totalBytes),
      onEntry: (entry) => sent.set(entry.path, entry),
      onSkipped: (relPath, reason) => {
        notSent += 1;
        options.log(`[session] not sent: ${relPath} (${reason})`);
      },
    });
    // An error (cancellation) while nobody reads yet is kept in `tar.errored` and seen by whoever reads it.
    tar.on('error', () => undefined);
    let box: Box;
    try {
      box = await creating;
    } catch (error) {
      tar.destroy();
      throw error;
    }
    phases.push(`box ${Math.round(boxMs)} ms (from the start, alongside the scan)`);
    mark = performance.now();
    boxUp = true;
    progress(`Mirroring workspace (0/${files.length} files)`, 0, totalBytes);
    let mirrorListing: BoxHelperResult | undefined;
    try {
      const route = mirrorRoute(settings, { hasShell: boxHasShell, files: files.length, bytes: totalBytes, mirrorWith: options.mirrorWith });
      if (route.why) options.log(`[session] ${folder}: mirroring through the engine's archive API: ${route.why}`);
      let viaBoxTar = route.via === 'box-tar';
      // The same exec lists the box for the stamps once its tar is done (one round trip less).
      const extracted = viaBoxTar ? await extractWithBoxTar(box, () => tar, signal, MIRROR_LISTING) : undefined;
      if (extracted?.kind === 'no-tar') {
        options.log(`[session] ${folder}: the image has no tar; mirroring through the engine's archive API`);
        viaBoxTar = false;
      } else if (extracted) {
        mirrorListing = extracted.followUp;
      }
      if (!viaBoxTar) {
        if (tar.destroyed) throw tar.errored ?? new SandboxError('cancelled', 'Sending the workspace to the box was cancelled.');
        await box.putArchive(tar, { path: '/workspace', signal });
      }
      mark = phase(viaBoxTar ? 'send (box tar)' : 'send (archive API)', mark);
      if (boxHasShell) await restoreZeroModesInBox(box, sent.values(), signal, { openedDirectories: true });
    } catch (error) {
      tar.destroy();
      // A mirror that filled /workspace (ENOSPC in the engine's extraction) says so, with the setting that fixes it.
      const full = SandboxError.is(error, 'cancelled') ? undefined : await workspaceFullAfterFailure(box, settings.workspaceVolume, signal);
      await box.remove().catch(() => undefined);
      throw full ? workspaceOverflow(settings, files.length, totalBytes, error) : error;
    }
    let git: { mode: GitHistoryMode; note?: string } = { mode: gitHistory };
    if (gitHistory === 'fresh') {
      try {
        git = await BoxSession.makeFreshGit(options, box, scanned, progress, signal);
      } catch (error) {
        await box.remove().catch(() => undefined);
        throw error;
      }
    }
    mark = phase('modes and git', mark);
    const hostState = await hostStateAfterMirror(folder, scanned, sent, signal);
    const session = new BoxSession(options, box, filter, sent, hostState, { files: files.length, bytes: totalBytes });
    session.git = git;
    session.openedIn = { boxMs, totalMs: 0 };
    // The host state is the mirror's scan completed with the hashes of what was sent: when every entry went in,
    // it is what a rescan would find as long as the watch (begun before the scan) saw no event since, so the
    // first catch-up need not rescan. An entry not sent is missing from it: the first catch-up rescans then. A
    // copy (entries shared), as a rescan's result would be: the session updates its host state in place.
    if (notSent === 0 && hostState.size === scanned.size) session.lastScan = scanResult({ ...mirrorScan, manifest: new Map(hostState) });
    // Before anyone gets the box: a stamp taken after anything ran in it could vouch for a changed file.
    try {
      await session.reader.stampAfterMirror(signal, mirrorListing);
    } catch (error) {
      await box.remove().catch(() => undefined);
      throw error;
    }
    phase('host state and stamps', mark);
    session.openedIn.totalMs = performance.now() - started;
    options.log(
      `[session] ${folder}: mirrored ${files.length} files, ${totalBytes} bytes into ${box.containerId.slice(0, 12)} in ${Math.round(performance.now() - started)} ms (${phases.join(', ')})`,
    );
    if (restore && restore.changeSet.changes.length > 0) {
      try {
        await session.restore(restore, signal);
        options.log(`[session] ${folder}: restored ${restore.changeSet.changes.length} pending change(s) into the new box`);
      } catch (error) {
        await box.remove().catch(() => undefined);
        throw error;
      }
    }
    return session;
  }

  /** `gitHistory` `fresh`: one new repository in the box per host repository (see `freshRepository.ts`). */
  private static async makeFreshGit(
    options: BoxSessionOptions,
    box: Box,
    scanned: Manifest,
    progress: ProgressReporter,
    signal?: AbortSignal,
  ): Promise<{ mode: GitHistoryMode; note?: string }> {
    const repositories = findRepositories(options.folder, scanned);
    if (repositories.length === 0) return { mode: 'none' };
    if (box.image.hasShell === false) {
      return {
        mode: 'none',
        note: 'the image has no shell (/bin/sh) to make a fresh repository with, so the box has no .git (the workspace files are all present)',
      };
    }
    progress('Making a fresh git repository in the box');
    const result = await makeFreshRepositories(options.engine, box.containerId, options.folder, repositories, options.log, signal);
    options.log(
      `[session] ${options.folder}: fresh repositories in the box at ${result.made.map((d) => d || '.').join(', ') || 'none'}${result.note ? ` (${result.note})` : ''}`,
    );
    return { mode: result.made.length > 0 ? 'fresh' : 'none', note: result.note };
  }

  get info(): BoxInfo {
    return {
      folder: this.options.folder,
      containerId: this.box.containerId,
      volumeName: this.box.volumeName,
      image: this.box.image,
      mirrored: this.mirrored,
      git: this.git.mode,
      ...(this.git.note ? { gitNote: this.git.note } : {}),
      ...(this.imageSource ? { imageSource: this.imageSource } : {}),
    };
  }

  /** Scans of the workspace since the box was opened, full or partial (catch-up skips one when no file event came). */
  get hostScans(): number {
    return this.hostScanCount;
  }

  /** Of `hostScans`, those that listed only the directories whose watchers fired (see `WorkspaceWatch`). */
  get partialHostScans(): number {
    return this.partialScanCount;
  }

  /** The change set of the last collect, if any. */
  get lastChangeSet(): ChangeSet | undefined {
    return this.collected?.changeSet;
  }

  /**
   * Sends the box what the developer changed in the workspace since the baseline: only those paths. A path the
   * box changed too keeps the box's version and is reported as a conflict.
   */
  async catchUp(signal?: AbortSignal): Promise<{ sent: string[]; conflicts: string[] }> {
    const current = await this.scanHost(signal, { reuseIfUnchanged: true });
    const hostChanged = diffManifests(this.hostState, current);
    if (hostChanged.length === 0) {
      return { sent: [], conflicts: [] };
    }
    const boxChanged = await this.boxChangedAmong(hostChanged, signal);
    const conflicts = hostChanged.filter((p) => boxChanged.has(p));
    const toSync = hostChanged.filter((p) => !boxChanged.has(p));
    await this.pushWorkspaceState(toSync, current, signal);
    return { sent: toSync, conflicts };
  }

  /** Runs a command after catching up. */
  async exec(
    request: { command: string; argv?: string[]; cwd?: string; stdin?: string; timeoutSeconds?: number; runId: string; network?: 'none' },
    onOutput: (stream: 'stdout' | 'stderr', text: string) => void,
    signal?: AbortSignal,
  ): Promise<ExecResult> {
    const { settings } = this.options;
    const { sent, conflicts } = await this.catchUp(signal);
    const timeoutSeconds = request.timeoutSeconds ?? settings.runTimeoutSeconds;
    // An offline run in a box with a gateway: the gateway refuses everything until it ends (a no-op without one).
    const offline = request.network === 'none' && this.box.egress !== undefined;
    const endOffline = offline ? await this.box.egress!.beginOffline(request.runId, signal) : undefined;
    const policy: RunPolicy = offline ? offlinePolicy(this.policy) : this.policy;
    let outcome: ExecOutcome;
    try {
      outcome = await this.box.exec({
        command: request.command,
        ...(request.argv ? { argv: request.argv } : {}),
        cwd: request.cwd,
        stdin: request.stdin,
        timeoutMs: timeoutSeconds > 0 ? timeoutSeconds * 1000 : undefined,
        signal,
        // With a gateway, each run's proxy variables carry its id, so its attempts can be told apart, and the
        // model provider routes' base URLs come with placeholder keys; an offline run gets the proxy variables
        // emptied and no provider routes (the pause is what enforces it; this only spares its tools a refusal).
        env: !this.box.egress
          ? this.options.env
          : [
              ...this.options.env,
              ...(offline ? offlineProxyEnv() : [...boxProxyEnv(), ...runProxyEnv(request.runId), ...this.box.egress.providerEnv(request.runId)]),
            ],
        outputLimitBytes: settings.outputLimitKiB * 1024,
        onOutput,
      });
    } catch (error) {
      // Errors about the request or the box itself go to the caller; an engine failure mid-run is the run's outcome.
      if (SandboxError.isAny(error, [...CALLER_MUST_SEE, 'path-outside-workspace', 'no-shell'])) {
        throw error;
      }
      outcome = {
        outcome: 'engine-error',
        exitCode: null,
        stdout: '',
        stderr: '',
        truncated: false,
        durationMs: 0,
      };
      return { runId: request.runId, ...outcome, image: this.box.image, policy, error: errorText(error), caughtUp: sent, conflicts };
    } finally {
      await endOffline?.().catch((error: unknown) =>
        this.options.log(
          `[session] the egress gateway did not confirm the end of offline run ${request.runId} (the box stays offline): ${errorText(error)}`,
        ),
      );
    }
    const result: ExecResult = { runId: request.runId, ...outcome, image: this.box.image, policy, caughtUp: sent, conflicts };
    if (this.imageSource) result.imageSource = this.imageSource;
    if (this.git.note) result.gitNote = this.git.note;
    if (outcome.outcome === 'exited' && outcome.exitCode !== 0) {
      const workspaceFull = await workspaceFullAfterFailure(this.box, settings.workspaceVolume, signal);
      if (workspaceFull) result.workspaceFull = workspaceFull;
    }
    return result;
  }

  /** The limits and isolation every run in this box has. */
  get policy(): RunPolicy {
    const { settings, env } = this.options;
    // What the gateway enforces now: settings and keys changed since the box was made reach it in place.
    const gateway = this.box.egress;
    return {
      network: gateway ? 'allowlist' : 'none',
      ...(gateway ? { allowedHosts: gateway.configuration.egress.rules.map((rule) => rule.source), modelKeys: gateway.providers } : {}),
      ...(this.egressNote ? { egressNote: this.egressNote } : {}),
      user: `${BOX_UID}:${BOX_GID}`,
      memoryMiB: settings.memoryMiB,
      cpus: settings.cpus,
      pidsLimit: settings.pidsLimit,
      runtime: settings.runtime || 'runc',
      envNames: env.map((pair) => pair.slice(0, pair.indexOf('='))),
    };
  }

  /** How the last collect read the box. */
  get lastCollectInfo(): CollectInfo | undefined {
    return this.reader.lastCollectInfo;
  }

  /** Reads the box's tree (what may have changed, or all of it) and computes the change set against the baseline. */
  async collect(signal?: AbortSignal, keptBaseContents?: Map<string, Buffer>): Promise<ChangeSet> {
    const tree = await this.reader.read(signal);
    const firstPass = computeChangeSet(this.options.folder, this.baseline, tree);
    const baseContents = await this.readBaseContents(firstPass, keptBaseContents ?? this.collected?.baseContents);
    // Again with the base contents: package.json is then flagged only when its scripts changed.
    const changeSet = computeChangeSet(this.options.folder, this.baseline, tree, { baseContent: (p) => baseContents.get(p) });
    this.collected = { changeSet, tree, baseContents };
    await this.persist();
    return changeSet;
  }

  /**
   * The baseline content of changed files, read from the workspace where it still has it (hash equal to the
   * baseline), or kept from an earlier collect: later, when the developer has changed the file too, a conflict
   * can still show what both sides started from.
   */
  private async readBaseContents(changeSet: ChangeSet, earlier?: Map<string, Buffer>): Promise<Map<string, Buffer>> {
    const result = new Map<string, Buffer>();
    for (const change of changeSet.changes) {
      if (result.size >= BASE_CONTENT_MAX_FILES) break;
      const basePath = change.fromPath ?? change.path;
      const base = this.baseline.get(basePath);
      if (change.kind === 'added' || !base || base.type !== 'file' || base.size > BASE_CONTENT_MAX_BYTES) continue;
      const kept = earlier?.get(basePath);
      const content = kept && sha256(kept) === base.hash ? kept : await this.readWorkspaceFile(basePath, base.hash);
      if (content) result.set(basePath, content);
    }
    return result;
  }

  /** The baseline content of a changed file, when it was kept. */
  readBase(relPath: string): Buffer | undefined {
    return this.collected?.baseContents.get(relPath);
  }

  /** The box's content of a changed file from the last collect. */
  readProposal(path: string): Buffer {
    const collected = this.requireCollected();
    const change = collected.changeSet.changes.find((c) => c.path === path);
    if (!change) {
      throw new SandboxError('not-found', `"${path}" is not among the pending changes. Collect the box's changes again.`);
    }
    if (change.kind === 'deleted' || change.type !== 'file') {
      return Buffer.alloc(0);
    }
    const content = collected.tree.contents.get(path);
    if (content === undefined) {
      throw new SandboxError('not-found', `The box's content of "${path}" is no longer held. Collect the box's changes again.`);
    }
    return content;
  }

  /** Plans applying the selection against the workspace's current state (dirty editors count as changes). */
  async planApply(
    selection: { paths?: string[]; approveFlagged?: string[]; takeBoxVersion?: string[]; dirtyEditors?: { path: string; hash: string }[] },
    signal?: AbortSignal,
  ): Promise<ApplyPlan> {
    return (await this.planWithHashes(selection, signal)).plan;
  }

  /** The plan, and the touched workspace files as hashed for it (with their stamps: `applyToFolder` need not read them again). */
  private async planWithHashes(
    selection: { paths?: string[]; approveFlagged?: string[]; takeBoxVersion?: string[]; dirtyEditors?: { path: string; hash: string }[] },
    signal?: AbortSignal,
  ): Promise<{ plan: ApplyPlan; hashed: Map<string, StampedHash> }> {
    const collected = this.requireCollected();
    // A copy: this plan's view (dirty editors, taken box versions) must not leak into the cached scan.
    const current = new Map(await this.scanHost(signal));
    const hashed = await this.rehashTouchedFiles(current, collected.changeSet.changes, selection.paths, signal);
    for (const dirty of selection.dirtyEditors ?? []) {
      const entry = current.get(dirty.path);
      current.set(dirty.path, { ...(entry ?? { path: dirty.path, type: 'file', mode: 0o644, size: 0 }), hash: dirty.hash });
    }
    // Taking the box's version of a conflict: the workspace's own change is deliberately replaced.
    for (const p of selection.takeBoxVersion ?? []) {
      const base = this.baseline.get(p);
      if (base) current.set(p, base);
      else current.delete(p);
    }
    this.caseInsensitive ??= ignoresCase(this.options.folder);
    const plan = planApply({
      baseline: this.baseline,
      changes: collected.changeSet.changes,
      current,
      obstacles: this.lastScan?.obstacles,
      caseInsensitive: await this.caseInsensitive,
      selected: selection.paths,
      approveFlagged: selection.approveFlagged,
    });
    // A taken box version replaces the developer's file on purpose: no baseline content to insist on there.
    const taken = new Set(selection.takeBoxVersion ?? []);
    if (taken.size > 0) {
      plan.operations = plan.operations.map((op) => {
        if (op.baseHash === undefined || !(taken.has(op.path) || (op.fromPath !== undefined && taken.has(op.fromPath)))) return op;
        const { baseHash: _replacedOnPurpose, ...rest } = op;
        return rest;
      });
    }
    return { plan, hashed };
  }

  /**
   * Hashes again, from disk, every file in `current` that the selected changes would overwrite, delete, move
   * or chmod: the scan reuses hashes by stat stamp, and invariant 6 must not rest on a stamp (a clock set back,
   * a file system that keeps no ctime). Only these files are read. Their hard-link count is noted too: a mode
   * change through a hard link would change the other name's file as well. Returns the hashes with the stamp
   * each file had while it was read.
   */
  private async rehashTouchedFiles(
    current: Manifest,
    changes: readonly ChangeEntry[],
    paths: string[] | undefined,
    signal?: AbortSignal,
  ): Promise<Map<string, StampedHash>> {
    const hashed = new Map<string, StampedHash>();
    const selected = paths === undefined ? undefined : new Set(paths);
    const touched = changes
      .filter((change) => selected === undefined || selected.has(change.path) || (change.fromPath !== undefined && selected.has(change.fromPath)))
      .flatMap((change) => (change.fromPath === undefined ? [change.path] : [change.fromPath, change.path]));
    await forEachBounded(touched, REHASH_CONCURRENCY, async (p) => {
      const entry = current.get(p);
      if (entry?.type !== 'file') return;
      let result: Awaited<ReturnType<typeof hashStamped>> | undefined;
      try {
        result = await hashStamped(hostPath(this.options.folder, p), signal);
      } catch (error) {
        if (SandboxError.is(error)) throw error;
      }
      if (typeof result === 'object') {
        hashed.set(p, result);
        current.set(p, { ...entry, hash: result.hash, size: result.size, links: result.links });
      } else {
        // Gone, replaced by something else or changing since the scan: not the baseline's file (for now).
        current.set(p, { ...entry, hash: undefined });
      }
    });
    return hashed;
  }

  /** Applies the selection to the folder on disk, then advances the baseline for what was written. */
  async apply(selection: { paths?: string[]; approveFlagged?: string[]; takeBoxVersion?: string[] }, signal?: AbortSignal) {
    const { plan, hashed } = await this.planWithHashes(selection, signal);
    const applied = await applyToFolder(this.options.folder, plan, (p) => this.readProposal(p), { hashed });
    await this.markApplied(applied);
    return { applied, conflicts: plan.conflicts.map((c) => c.path), skipped: plan.skipped };
  }

  /** The workspace now holds the box's version of these paths: the baseline advances to it. */
  async markApplied(paths: string[]): Promise<void> {
    const collected = this.requireCollected();
    const done = new Set(paths);
    for (const change of collected.changeSet.changes) {
      if (!done.has(change.path)) continue;
      if (change.kind === 'renamed' && change.fromPath) {
        this.forget(change.fromPath);
      }
      const boxEntry = collected.tree.entries.get(change.path);
      if (change.kind === 'deleted' || !boxEntry) {
        this.forget(change.path);
      } else {
        this.adopt(boxEntry);
      }
      // Applying created the parent directories on the host too.
      for (const dir of ancestorsOf(change.path)) {
        const boxDir = collected.tree.entries.get(dir);
        if (boxDir && !this.baseline.has(dir)) this.adopt(boxDir);
      }
    }
    await this.dropPending(done);
  }

  /**
   * The workspace now holds what the developer settled on for these pending paths (after accepting one hunk,
   * or merging by hand): the baseline advances to the workspace's current version, and each path stays pending
   * only as far as the box still differs from it.
   */
  async advanceBaseline(paths: string[], signal?: AbortSignal): Promise<ChangeSet> {
    const collected = this.requireCollected();
    const current = await this.scanHost(signal);
    for (const p of paths) {
      const entry = current.get(p);
      if (entry) {
        this.baseline.set(p, entry);
        this.hostState.set(p, entry);
      } else {
        this.forget(p);
      }
    }
    const changeSet = computeChangeSet(this.options.folder, this.baseline, collected.tree, {
      baseContent: (p) => collected.baseContents.get(p),
    });
    this.collected = { changeSet, tree: collected.tree, baseContents: collected.baseContents };
    await this.persist();
    return changeSet;
  }

  /** Reverts paths in the box to the workspace's current version; the baseline follows the workspace. */
  async discard(paths: string[] | undefined, signal?: AbortSignal): Promise<void> {
    const pending = this.collected?.changeSet.changes ?? [];
    const selected = paths ? pending.filter((c) => paths.includes(c.path)) : pending;
    const affected = new Set<string>();
    for (const change of selected) {
      affected.add(change.path);
      if (change.fromPath) affected.add(change.fromPath);
    }
    if (affected.size === 0) return;
    const current = await this.scanHost(signal);
    await this.pushWorkspaceState([...affected], current, signal);
    // Directories the box made only for what was just reverted go too (a non-empty one stays).
    const madeDirs = [...new Set([...affected].flatMap((p) => ancestorsOf(p)))]
      .filter((dir) => !current.has(dir))
      .sort((a, b) => b.length - a.length);
    if (madeDirs.length > 0) {
      await this.box.exec({
        command: 'cd /workspace && xargs -0 -n1 rmdir 2>/dev/null; true',
        stdin: Buffer.from(madeDirs.map((d) => `${d}\0`).join('')),
        signal,
        outputLimitBytes: 64 * 1024,
      });
    }
    // Collect again: what is left pending is whatever the box still holds that differs.
    await this.collect(signal);
  }

  /** Removes the box and its volume. */
  async remove(): Promise<void> {
    this.watch.dispose();
    await this.box.remove();
  }

  /** Paths among `paths` whose content in the box differs from the baseline. */
  private async boxChangedAmong(paths: string[], signal?: AbortSignal): Promise<Set<string>> {
    if (paths.length > PER_PATH_CHECK_LIMIT) {
      const changeSet = await this.collect(signal);
      const changed = new Set<string>();
      for (const c of changeSet.changes) {
        changed.add(c.path);
        if (c.fromPath) changed.add(c.fromPath);
      }
      return changed;
    }
    // Paths a targeted listing proves unchanged need no archive; each other check is an engine round trip
    // (~20–80 ms), and a few at once cut catch-up time by about that factor.
    const proven = await this.reader.unchangedByListing(paths, signal);
    const toCheck = paths.filter((p) => !proven.has(p));
    const changed = new Set<string>();
    await forEachBounded(toCheck, PER_PATH_CHECK_CONCURRENCY, async (p) => {
      const inBox = await this.reader.statInBox(p, signal);
      if (!sameState(this.baseline.get(p), inBox)) changed.add(p);
    });
    return changed;
  }

  /** Makes the box hold the workspace's state (`current`) at `paths`; the baseline follows. */
  private async pushWorkspaceState(paths: string[], current: Manifest, signal?: AbortSignal): Promise<void> {
    const present: ManifestEntry[] = [];
    const absent: string[] = [];
    for (const p of paths) {
      const entry = current.get(p);
      if (entry) present.push(entry);
      else absent.push(p);
    }
    this.reader.dropStamps(paths);
    await removeInBox(this.box, absent, signal);
    const sent: ManifestEntry[] = [];
    if (present.length > 0) {
      const withParents = addParentDirectories(present, current);
      const tar = packWorkspace(this.options.folder, withParents, {
        uid: BOX_UID,
        gid: BOX_GID,
        signal,
        onEntry: (entry) => sent.push(entry),
        onSkipped: (relPath, reason) => this.options.log(`[session] not sent: ${relPath} (${reason})`),
      });
      await this.box.putArchive(tar, { path: '/workspace', signal });
      await restoreZeroModesInBox(this.box, sent, signal);
    }
    for (const p of absent) this.forget(p);
    for (const entry of sent) this.baseline.set(entry.path, entry);
    for (const entry of present) this.hostState.set(entry.path, entry);
  }

  /** The box's entry is now what both sides hold. */
  private adopt(boxEntry: ManifestEntry): void {
    this.baseline.set(boxEntry.path, boxEntry);
    // No mtime: the next scan hashes the file again and finds it equal.
    this.hostState.set(boxEntry.path, { ...boxEntry, mtimeMs: undefined });
  }

  private forget(relPath: string): void {
    this.baseline.delete(relPath);
    this.hostState.delete(relPath);
  }

  /**
   * Scans the workspace (hashes reused by size and mtime), watching every directory it reads. With
   * `reuseIfUnchanged` (catch-up only, which does not mutate the result) the last scan is returned as it was
   * when no file event came since, or patched by listing again only the directories whose watchers fired when
   * the watch can vouch for the rest; apply plans always rescan in full.
   */
  private async scanHost(signal?: AbortSignal, options: { reuseIfUnchanged?: boolean } = {}): Promise<Manifest> {
    const { scan, kind } = await this.watch.scan(this.filter, this.lastScan?.scan, {
      reuse: options.reuseIfUnchanged === true,
      previous: this.hostState,
      signal,
    });
    if (kind === 'reused') return scan.manifest;
    this.hostScanCount += 1;
    if (kind === 'partial') this.partialScanCount += 1;
    this.lastScan = scanResult(scan);
    return scan.manifest;
  }

  private async dropPending(paths: Set<string>): Promise<void> {
    if (!this.collected) return;
    const changeSet = this.collected.changeSet;
    changeSet.changes = changeSet.changes.filter((c) => !paths.has(c.path));
    for (const p of paths) this.collected.tree.contents.delete(p);
    await this.persist();
  }

  /** The pending review as it must survive a reload (see `pendingReview.ts`). */
  get pendingReview(): PendingReview | undefined {
    return this.collected ? pendingReviewOf(this.collected, this.baseline) : undefined;
  }

  private async persist(): Promise<void> {
    const review = this.pendingReview;
    if (review) await this.persistence.save(review);
  }

  /** Puts a persisted review's pending changes into this (freshly mirrored) box, against their old baseline. */
  private async restore(review: PendingReview, signal?: AbortSignal): Promise<void> {
    const plan = await restorePlan(review, (relPath, hash) => this.readWorkspaceFile(relPath, hash));
    for (const p of plan.lost) this.options.log(`[session] cannot restore ${p}: its content was not kept`);
    for (const [p, base] of plan.baseline) {
      if (base) this.baseline.set(p, base);
      else this.baseline.delete(p);
    }
    this.reader.dropStamps(plan.remove);
    this.reader.dropStamps(plan.write.map((w) => w.entry.path));
    await removeInBox(this.box, plan.remove, signal);
    if (plan.write.length > 0) {
      const archive = restoreArchive(plan.write, (dir) => (review.boxEntries.get(dir) ?? this.baseline.get(dir))?.mode);
      await this.box.putArchive(archive, { path: '/workspace', signal });
    }
    await this.collect(signal, review.baseContents);
  }

  /** The workspace file's bytes when they still have `hash` (a mode-only change keeps the base content). */
  private async readWorkspaceFile(relPath: string, hash: string | undefined): Promise<Buffer | undefined> {
    try {
      const file = hostPath(this.options.folder, relPath);
      if (!(await fs.lstat(file)).isFile()) return undefined;
      const content = await fs.readFile(file);
      return sha256(content) === hash ? content : undefined;
    } catch {
      return undefined;
    }
  }

  private requireCollected(): CollectedState {
    if (!this.collected) {
      throw new SandboxError('not-found', 'No changes were collected from this box yet. Run a command or collect first.');
    }
    return this.collected;
  }
}

/**
 * The workspace as of the first mirror, from an lstat-only scan and what was sent: a file's host hash is the
 * hash of the bytes sent (read from the file at that moment, with that fstat's size and mtime), except for git
 * config files, which are sent sanitized and are hashed on the host here. A file that could not be sent is
 * left out, so the next catch-up sends it.
 */
async function hostStateAfterMirror(folder: string, scanned: Manifest, sent: Manifest, signal?: AbortSignal): Promise<Manifest> {
  const hostState: Manifest = new Map();
  for (const [p, entry] of scanned) {
    if (entry.type !== 'file') {
      hostState.set(p, entry);
      continue;
    }
    const sentEntry = sent.get(p);
    if (sentEntry?.hash === undefined) continue;
    if (isGitConfigPath(p)) {
      try {
        const { hash, size } = await hashFile(hostPath(folder, p), signal);
        hostState.set(p, { ...entry, size, hash });
      } catch (error) {
        if (SandboxError.is(error)) throw error;
      }
      continue;
    }
    // Entries are never mutated in place, so host state and baseline share one object per file where they
    // agree (all but setuid/setgid bits, which are not sent): half the memory for a large tree.
    hostState.set(
      p,
      sentEntry.mode === entry.mode ? sentEntry : { ...entry, size: sentEntry.size, hash: sentEntry.hash, mtimeMs: sentEntry.mtimeMs },
    );
  }
  return hostState;
}

/** Paths whose entry differs between two manifests (added, removed or changed). */
export function diffManifests(before: Manifest, after: Manifest): string[] {
  const paths = new Set<string>();
  for (const [p, entry] of after) {
    if (!sameState(before.get(p), entry)) paths.add(p);
  }
  for (const p of before.keys()) {
    if (!after.has(p)) paths.add(p);
  }
  return [...paths].sort();
}

/** The entries plus every directory above them, so a tar that creates `a/b/c` also carries `a` and `a/b`. */
function addParentDirectories(entries: ManifestEntry[], current: Manifest): ManifestEntry[] {
  const seen = new Set(entries.map((e) => e.path));
  const parents: ManifestEntry[] = [];
  for (const entry of entries) {
    const parts = entry.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (seen.has(dir)) continue;
      seen.add(dir);
      parents.push(current.get(dir) ?? { path: dir, type: 'directory', mode: 0o755, size: 0 });
    }
  }
  return [...parents.sort((a, b) => a.path.localeCompare(b.path)), ...entries];
}

/**
 * The workspace does not fit in `/workspace`: the error names the numbers and the settings that fix it. On a
 * tmpfs workspace that is `agentSandbox.workspaceSizeMiB`; a disk volume is limited by the engine's disk.
 */
function workspaceOverflow(settings: BoxSettings, files: number, bytes: number, cause?: unknown): SandboxError {
  const size = `${files} files, ${formatMiB(bytes)} to mirror`;
  const leaveOut = 'or leave large folders out with agentSandbox.exclude (or agentSandbox.useGitignore)';
  if (settings.workspaceVolume === 'tmpfs') {
    return new SandboxError(
      'workspace-full',
      `The workspace does not fit in the box: ${size}, and /workspace holds ${settings.workspaceSizeMiB} MiB (agentSandbox.workspaceSizeMiB). Raise agentSandbox.workspaceSizeMiB, ${leaveOut}.`,
      { setting: 'agentSandbox.workspaceSizeMiB', cause },
    );
  }
  return new SandboxError(
    'workspace-full',
    `The workspace does not fit in the box: ${size}, and the Docker engine's disk is full. Free space on the engine's disk, ${leaveOut}.`,
    { setting: 'agentSandbox.exclude', cause },
  );
}

function formatMiB(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** The policy of an offline run in a box with a gateway: no network, no allowed hosts. */
function offlinePolicy(boxPolicy: RunPolicy): RunPolicy {
  const { allowedHosts: _allowedHosts, ...rest } = boxPolicy;
  return { ...rest, network: 'none', offline: true };
}
