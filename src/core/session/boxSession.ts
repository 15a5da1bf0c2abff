import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import type { ApplyPlan, BoxInfo, BoxSettings, ChangeEntry, ChangeSet, ExecResult, GitHistoryMode, RunPolicy } from '../../shared/protocol';
import { planApply } from '../apply/applyPlan';
import { applyToFolder } from '../apply/applyToFolder';
import { Box, type BoxCreateOptions } from '../box/box';
import { boxProxyEnv, offlineProxyEnv, runProxyEnv } from '../egress/gatewayConfig';
import { runBoxHelperRaw, type ExecOutcome } from '../box/boxExec';
import { workspaceFullAfterFailure } from '../box/boxDisk';
import { BoxTreeBuilder, readBoxTree, type BoxTree } from '../changes/boxTree';
import {
  CANDIDATES_TAR_SCRIPT,
  LISTING_EXIT,
  LISTING_SCRIPT,
  parseBoxListing,
  sameStamp,
  stampRecordable,
  type BoxListing,
  type ListedEntry,
} from '../changes/boxListing';
import { computeChangeSet } from '../changes/changeSet';
import type { DockerEngine } from '../docker/dockerEngine';
import { removeInBox, restoreZeroModesInBox } from './fileOps';
import { BOX_GID, BOX_UID } from '../box/boxConfig';
import { CALLER_MUST_SEE, SandboxError } from '../errors';
import type { PendingReview, ReviewStore } from '../review/reviewStore';
import { comparePaths, sameState, type Manifest, type ManifestEntry } from '../workspace/manifest';
import { ancestorsOf, checkRelative, parentOf } from '../workspace/pathGuard';
import { SyncFilter } from '../workspace/syncFilter';
import { isGitConfigPath } from '../workspace/gitConfigSanitizer';
import { hashFile, scanWorkspace, type ScanSkipReason } from '../workspace/workspaceScan';
import { ignoresCase } from '../workspace/folderCase';
import { WorkspaceWatch } from '../workspace/workspaceWatch';
import { packWorkspace } from '../workspace/workspaceTar';
import { extractWithBoxTar } from '../box/boxTarExtract';
import { findRepositories, makeFreshRepositories } from './freshRepository';
import { forEachBounded } from '../util/concurrency';
import { sha256 } from '../util/hash';

/** Packed workspace that may wait while the box starts (memory bought for time: all of a small tree). */
const MIRROR_PACK_AHEAD_BYTES = 8 * 1024 * 1024;
/** Above this many host edits, catch-up asks the box for its whole tree instead of one path at a time. */
const PER_PATH_CHECK_LIMIT = 200;
/** Per-path checks in flight at once. */
/** Workspace files hashed at once before an apply. */
const REHASH_CONCURRENCY = 8;
const PER_PATH_CHECK_CONCURRENCY = 8;
/**
 * How many files a stamped collect reads one archive each before one archive of the whole tree is cheaper.
 * Measured on Docker 20.10 (50k files, 529 MB, a busy 2-core machine): the engine serves single-path archives
 * about one at a time, ~100 ms each, while the whole tree streams and hashes in ~13–15 s; so the break-even is
 * near one file per 5 MiB of tree plus one per 1,000 paths, kept between these bounds.
 */
const STAMPED_FETCH_MIN = 16;
const STAMPED_FETCH_MAX = 2_000;
const STAMPED_FETCH_BYTES_PER_FILE = 5 * 1024 * 1024;
const STAMPED_FETCH_PATHS_PER_FILE = 1_000;
/** Files up to this size are read with the box's tar, in chunks of up to this many bytes (held in memory). */
const BOX_TAR_MAX_FILE_BYTES = 8 * 1024 * 1024;
const BOX_TAR_MAX_CHUNK_BYTES = 64 * 1024 * 1024;
/** With the box's tar (see `BoxSession.readCandidatesInBox`), up to this share of the paths is read that way. */
const STAMPED_FETCH_SHARE = 0.25;
/** Single-path archives in flight at once during a stamped collect. */
const STAMPED_FETCH_CONCURRENCY = 8;
/** A listing of the box larger than this is not used (~100 bytes a path: about 2.5 million paths). */
const LISTING_MAX_BYTES = 256 * 1024 * 1024;
const LISTING_TIMEOUT_MS = 120_000;
/** Linux's PATH_MAX, including the terminating NUL. */
const PATH_MAX = 4096;
/** Bytes of paths per targeted listing (catch-up), so the command line stays far below the kernel's limit. */
const TARGETED_LISTING_MAX_ARG_BYTES = 64 * 1024;

/** How the last collect read the box (not on the wire; tests and the benchmark look at it). */
export interface CollectInfo {
  /** `stamps`: a listing, and one archive per path that may have changed; `full`: one archive of the whole tree. */
  strategy: 'stamps' | 'full';
  /** Why a full collect was taken. */
  reason?: string;
  /** Paths in the listing (0 without one). */
  listed: number;
  /** Files read (stamps only): `fetchedInBox` of them through one tar in the box, the rest one archive each. */
  fetched: number;
  fetchedInBox?: number;
  /** Stamps known to match the baseline after this collect. */
  knownStamps: number;
}

/** A path's stamp as last seen when the box's entry there was proven equal to `base` (the baseline's object). */
interface KnownStamp {
  /** The listing's record when the stamp was recorded (compared with `sameStamp`). */
  stamp: ListedEntry;
  base: ManifestEntry;
}

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
   * How the workspace is mirrored in: `box-tar` (default) streamed into the image's own tar run as the box user
   * (`extractWithBoxTar`; the archive API when the image has none), `archive` the engine's archive API.
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
}

/** Progress callback for long work: files and bytes so far. */
export type ProgressReporter = (message: string, done?: number, total?: number) => void;

/** What the box has that differs from the baseline, as of the last collect. */
interface CollectedState {
  changeSet: ChangeSet;
  /** The parsed box tree of that collect (all entries; contents of changed files only). */
  tree: BoxTree;
  /** Baseline content of changed files, read from the workspace while it still had it (conflicts show it). */
  baseContents: Map<string, Buffer>;
}

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

export class BoxSession {
  /**
   * Set by the engine server when the network settings changed while this box was in use and its network
   * mode (none / allowlist) cannot change in place: runs and terminals say so until the box is made anew.
   */
  egressNote: string | undefined;
  private collected: CollectedState | undefined;
  /**
   * Box stamps (see `boxListing.ts`) of files whose box content was proven equal to their baseline entry. A
   * stamp counts only while the baseline still holds that very entry object (entries are never mutated, so any
   * baseline change invalidates it), and paths the session itself writes drop theirs. A missing stamp costs one
   * archive read; a wrong one would hide a change, so every doubt drops it.
   */
  private readonly stamps = new Map<string, KnownStamp>();
  /** Knows when the workspace did not change since the last full scan, so catch-up can skip rescanning. */
  private readonly watch: WorkspaceWatch;
  /** The last full scan (callers never mutate what `scanHost` returns: catch-up may reuse it) and what it left out. */
  private lastScan: { manifest: Manifest; obstacles: Map<string, string> } | undefined;
  private caseInsensitive: Promise<boolean> | undefined;
  private hostScanCount = 0;
  /** Whether the image's find can list (GNU find); undefined until the first try. */
  private listingSupported: boolean | undefined;
  /** Whether the image's tar can read candidate files (see `readCandidatesInBox`); undefined until tried. */
  private boxTarWorks: boolean | undefined;
  private collectInfo: CollectInfo | undefined;
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
    progress('Scanning workspace');
    // Listed with lstat only: packing reads every file anyway and reports the hash of what it sent, so the host
    // state is completed from that below instead of reading the whole tree twice.
    const beforeListing = options.watch?.beginScan();
    let scanned: Manifest | undefined;
    try {
      scanned = await scanWorkspace(folder, filter, {
        signal,
        hashFiles: false,
        beforeListing,
        onProgress: (files) => progress('Scanning workspace', files),
      });
    } finally {
      options.watch?.endScan(scanned !== undefined);
    }
    const files = [...scanned.values()].filter((e) => e.type === 'file');
    const totalBytes = files.reduce((n, e) => n + e.size, 0);
    const sizeBytes = settings.workspaceSizeMiB * 1024 * 1024;
    if (settings.workspaceVolume === 'tmpfs' && totalBytes > sizeBytes) {
      // Cannot fit, whatever the file system's overhead: no box is started for it.
      throw workspaceOverflow(settings, files.length, totalBytes);
    }
    let mark = phase('scan', started);
    // Packing starts now and goes on while the box starts, up to MIRROR_PACK_AHEAD_BYTES. Directories are sent
    // opened (owner rwx) whichever way they go in, and get their modes after: the two ways leave the same tree.
    const sent: Manifest = new Map();
    let boxUp = false;
    const tar = packWorkspace(folder, scanned.values(), {
      uid: BOX_UID,
      gid: BOX_GID,
      signal,
      openDirectories: true,
      bufferBytes: MIRROR_PACK_AHEAD_BYTES,
      onProgress: (done, bytes) => boxUp && progress(`Mirroring workspace (${done}/${files.length} files)`, bytes, totalBytes),
      onEntry: (entry) => sent.set(entry.path, entry),
      onSkipped: (relPath, reason) => options.log(`[session] not sent: ${relPath} (${reason})`),
    });
    // An error (cancellation) while nobody reads yet is kept in `tar.errored` and seen by whoever reads it.
    tar.on('error', () => undefined);
    progress('Starting box');
    let box: Box;
    try {
      box = await Box.create(options.engine, settings, { folder, ownerId: options.ownerId, env: options.env, signal, egress: options.egress });
    } catch (error) {
      tar.destroy();
      throw error;
    }
    mark = phase('box', mark);
    boxUp = true;
    progress(`Mirroring workspace (0/${files.length} files)`, 0, totalBytes);
    try {
      // The image's tar, streamed (about half the archive API's time); the archive API when there is none.
      let viaBoxTar = (options.mirrorWith ?? 'box-tar') === 'box-tar';
      if (viaBoxTar && (await extractWithBoxTar(box, () => tar, signal)) === 'no-tar') {
        options.log(`[session] ${folder}: the image has no tar; mirroring through the engine's archive API`);
        viaBoxTar = false;
      }
      if (!viaBoxTar) {
        if (tar.destroyed) throw tar.errored ?? new SandboxError('cancelled', 'Sending the workspace to the box was cancelled.');
        await box.putArchive(tar, { path: '/workspace', signal });
      }
      mark = phase(viaBoxTar ? 'send (box tar)' : 'send (archive API)', mark);
      await restoreZeroModesInBox(box, sent.values(), signal, { openedDirectories: true });
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
    // Before anyone gets the box: a stamp taken after anything ran in it could vouch for a changed file.
    try {
      await session.stampAfterMirror(signal);
    } catch (error) {
      await box.remove().catch(() => undefined);
      throw error;
    }
    phase('host state and stamps', mark);
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
    };
  }

  /** Full scans of the workspace since the box was opened (catch-up skips one when no file event came). */
  get hostScans(): number {
    return this.hostScanCount;
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
    request: { command: string; cwd?: string; stdin?: string; timeoutSeconds?: number; runId: string; network?: 'none' },
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
      if (SandboxError.isAny(error, [...CALLER_MUST_SEE, 'path-outside-workspace'])) {
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
    if (this.git.note) result.gitNote = this.git.note;
    if (outcome.outcome === 'exited' && outcome.exitCode !== 0) {
      const workspaceFull = await workspaceFullAfterFailure(this.box, settings.workspaceVolume, signal);
      if (workspaceFull) result.workspaceFull = workspaceFull;
    }
    return result;
  }

  private get readsWithBoxTar(): boolean {
    return (this.options.readChangedFiles ?? 'box-tar') === 'box-tar';
  }

  private get maxFileBytes(): number {
    return this.options.settings.maxFileSizeMiB * 1024 * 1024;
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
    return this.collectInfo;
  }

  /** Reads the box's tree (what may have changed, or all of it) and computes the change set against the baseline. */
  async collect(signal?: AbortSignal, keptBaseContents?: Map<string, Buffer>): Promise<ChangeSet> {
    const tree = await this.readTree(signal);
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
    const collected = this.requireCollected();
    // A copy: this plan's view (dirty editors, taken box versions) must not leak into the cached scan.
    const current = new Map(await this.scanHost(signal));
    await this.rehashTouchedFiles(current, collected.changeSet.changes, selection.paths, signal);
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
    return plan;
  }

  /**
   * Hashes again, from disk, every file in `current` that the selected changes would overwrite, delete, move
   * or chmod: the scan reuses hashes by stat stamp, and invariant 6 must not rest on a stamp (a clock set back,
   * a file system that keeps no ctime). Only these files are read. Their hard-link count is noted too: a mode
   * change through a hard link would change the other name's file as well.
   */
  private async rehashTouchedFiles(
    current: Manifest,
    changes: readonly ChangeEntry[],
    paths: string[] | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    const selected = paths === undefined ? undefined : new Set(paths);
    const touched = changes
      .filter((change) => selected === undefined || selected.has(change.path) || (change.fromPath !== undefined && selected.has(change.fromPath)))
      .flatMap((change) => (change.fromPath === undefined ? [change.path] : [change.fromPath, change.path]));
    await forEachBounded(touched, REHASH_CONCURRENCY, async (p) => {
      const entry = current.get(p);
      if (entry?.type !== 'file') return;
      try {
        const absolute = path.join(this.options.folder, ...p.split('/'));
        const { hash, size } = await hashFile(absolute, signal);
        const { nlink } = await fs.lstat(absolute);
        current.set(p, { ...entry, hash, size, links: nlink });
      } catch (error) {
        if (SandboxError.is(error)) throw error;
        // Gone or replaced by something else since the scan: not the baseline's file any more.
        current.set(p, { ...entry, hash: undefined });
      }
    });
  }

  /** Applies the selection to the folder on disk, then advances the baseline for what was written. */
  async apply(selection: { paths?: string[]; approveFlagged?: string[]; takeBoxVersion?: string[] }, signal?: AbortSignal) {
    const plan = await this.planApply(selection, signal);
    const applied = await applyToFolder(this.options.folder, plan, (p) => this.readProposal(p));
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

  /**
   * Right after the mirror, before anything has run in the box, the box holds exactly what was sent: one
   * listing then proves every file whose type, mode and size match its baseline entry, so the first collect
   * already reads only what changed. Nothing else writes to /workspace while the session is being opened, so
   * the clock that bounds recordable ctimes is the one after the walk.
   */
  private async stampAfterMirror(signal?: AbortSignal): Promise<void> {
    const listed = await this.tryListing(undefined, signal);
    if (!listed?.complete) return;
    const { listing } = listed;
    for (const entry of listing.entries) {
      const base = this.baseline.get(entry.path);
      if (
        base?.type === 'file' &&
        base.size === entry.size &&
        base.mode === entry.mode &&
        (entry.mode & 0o6000) === 0 &&
        entry.nlink === 1 &&
        stampRecordable(entry, listing, listing.clockAfterMs) &&
        // A name the box tree would refuse is never taken on a stamp (see planFromListing's fast path).
        checkRelative(entry.path).ok
      ) {
        this.stamps.set(entry.path, { stamp: entry, base });
      }
    }
  }

  /** The stamp known for `relPath`, if it is still valid for the baseline's current entry there. */
  private knownStamp(relPath: string): ListedEntry | undefined {
    const known = this.stamps.get(relPath);
    if (known === undefined) return undefined;
    if (this.baseline.get(relPath) !== known.base) {
      this.stamps.delete(relPath);
      return undefined;
    }
    return known.stamp;
  }

  /** The session wrote these paths into the box (or removed them): what was proven about them no longer holds. */
  private dropStamps(paths: Iterable<string>): void {
    for (const p of paths) this.stamps.delete(p);
  }

  /**
   * Runs `LISTING_SCRIPT` (the whole workspace, or exactly `paths` when given). Undefined when the image cannot
   * list (remembered: no GNU find) or the listing failed; `complete` is false when find reported an error
   * (then a path missing from the listing may still exist).
   */
  private async tryListing(paths: string[] | undefined, signal?: AbortSignal): Promise<{ listing: BoxListing; complete: boolean } | undefined> {
    if (this.listingSupported === false) return undefined;
    try {
      const result = await runBoxHelperRaw(
        this.options.engine,
        this.box.containerId,
        LISTING_SCRIPT,
        (paths ?? []).map((p) => `/workspace/${p}`),
        { signal, timeoutMs: LISTING_TIMEOUT_MS, maxStdoutBytes: LISTING_MAX_BYTES },
      );
      if (result.exitCode === LISTING_EXIT.noGnuFind) {
        this.listingSupported = false;
        this.options.log(`[session] ${this.box.image} has no GNU find: collect reads the whole tree each time`);
        return undefined;
      }
      if (result.exitCode !== 0 && result.exitCode !== LISTING_EXIT.findFailed) {
        this.options.log(`[session] listing the box failed (exit ${result.exitCode}): ${result.stderr.trim().slice(0, 300)}`);
        return undefined;
      }
      this.listingSupported = true;
      return { listing: parseBoxListing(result.stdout), complete: result.exitCode === 0 };
    } catch (error) {
      if (SandboxError.isAny(error, CALLER_MUST_SEE)) throw error;
      this.options.log(`[session] listing the box failed: ${errorText(error)}`);
      return undefined;
    }
  }

  /**
   * The box's tree. With a listing (GNU find in the image): every directory, symlink and refused type comes
   * from the listing, files whose stamp is unchanged since they were proven equal to the baseline take the
   * baseline's entry, and only the other files are read, one archive each. Without a listing, or when too many
   * files would have to be read, one archive of the whole tree, as before; a listing taken just before it
   * still records the stamps of what it found equal.
   *
   * The order is the point: LIST FIRST, THEN READ CONTENT. A change after a file's stat either shows in the
   * content read afterwards (so it is reported, and its stamp is not recorded), or comes after the read and
   * gives the file a ctime newer than the listed one (so the next listing differs). Reading content first and
   * listing after could pair the stamp of a newer change with older content and hide that change for good.
   */
  private async readTree(signal?: AbortSignal): Promise<BoxTree> {
    const listed = await this.tryListing(undefined, signal);
    if (!listed) {
      return this.readWholeTree(undefined, this.listingSupported === false ? 'no GNU find in the image' : 'no listing', signal);
    }
    if (!listed.complete) {
      // find could not read everything (e.g. a directory without permissions): a path it missed is not deleted.
      return this.readWholeTree(undefined, 'incomplete listing', signal);
    }
    const { listing } = listed;
    const plan = await this.planFromListing(listing, signal);
    if (typeof plan === 'string') {
      return this.readWholeTree(listing, plan, signal);
    }
    const { builder, fetch } = plan;
    let treeBytes = 0;
    for (const e of listing.entries) treeBytes += e.kind === 'f' ? e.size : 0;
    const archiveLimit = Math.round(
      Math.min(
        STAMPED_FETCH_MAX,
        Math.max(STAMPED_FETCH_MIN, treeBytes / STAMPED_FETCH_BYTES_PER_FILE + listing.entries.length / STAMPED_FETCH_PATHS_PER_FILE),
      ),
    );
    // Through the box's tar, reading a file costs about its bytes: worth it up to a share of the tree.
    const files = listing.entries.length;
    const limit =
      this.readsWithBoxTar && this.boxTarWorks !== false
        ? Math.min(STAMPED_FETCH_MAX, Math.max(archiveLimit, Math.round(files * STAMPED_FETCH_SHARE)))
        : archiveLimit;
    if (fetch.length > limit) {
      return this.readWholeTree(listing, `${fetch.length} files may have changed (limit ${limit})`, signal);
    }
    // The archive API resolves a path with the kernel: one beyond PATH_MAX cannot be asked for by name.
    if (fetch.some((e) => Buffer.byteLength(e.path) + '/workspace/'.length >= PATH_MAX)) {
      return this.readWholeTree(listing, 'a path too long to read on its own', signal);
    }
    const readInBox = await this.readCandidatesInBox(fetch, builder, signal);
    const perPath = fetch.filter((e) => !readInBox.has(e.path));
    if (perPath.length > archiveLimit) {
      return this.readWholeTree(listing, `${perPath.length} files to read one archive each (limit ${archiveLimit})`, signal);
    }
    try {
      await forEachBounded(perPath, STAMPED_FETCH_CONCURRENCY, async ({ path: relPath }) => {
        let stream: Readable;
        try {
          stream = await this.box.getArchive(`/workspace/${relPath}`, signal);
        } catch (error) {
          // Removed since the listing: the box no longer has it.
          if (SandboxError.is(error, 'not-found')) {
            builder.forget(relPath);
            return;
          }
          throw error;
        }
        await builder.addArchive(stream, { prefix: '', under: parentOf(relPath) });
      });
    } catch (error) {
      if (SandboxError.isAny(error, CALLER_MUST_SEE)) throw error;
      // One path the engine would not give on its own (e.g. a name it cannot resolve): the whole archive can.
      this.options.log(`[session] reading a changed path on its own failed (${errorText(error)}); reading the whole tree`);
      return this.readWholeTree(listing, 'a single-path read failed', signal);
    }
    const tree = builder.finish();
    // A stamp of a path the box removed stays until its baseline entry changes: harmless, as a file made there
    // later has another inode or a newer ctime.
    for (const entry of fetch) this.recordStamp(entry, tree, listing);
    this.collectInfo = {
      strategy: 'stamps',
      listed: listing.entries.length,
      fetched: fetch.length,
      fetchedInBox: readInBox.size,
      knownStamps: this.stamps.size,
    };
    return tree;
  }

  /**
   * Reads the files a listing marked as possibly changed with one exec of the image's tar (names as arguments,
   * in chunks), instead of one engine archive request each (~50–100 ms apiece, served about one at a time).
   * Returns the paths read; the others — all of them when the image has no working tar, when tar fails or
   * outgrows what the listing promised, or when its archive holds anything but the names asked for — are left
   * to the archive API. Its output goes through the same builder checks as any archive. Trust: it is a box
   * process's account, like the listing; whatever it could misreport, a run in the box could have written into
   * those files itself, so it can hide a change the box made but never make anything unsafe acceptable. It runs
   * after the listing, which is what recording stamps needs (see `readTree`).
   */
  private async readCandidatesInBox(fetch: ListedEntry[], builder: BoxTreeBuilder, signal?: AbortSignal): Promise<Set<string>> {
    const done = new Set<string>();
    // Its output is held in memory whole: large files stream through the archive API instead.
    const small = fetch.filter((e) => e.size <= BOX_TAR_MAX_FILE_BYTES);
    if (!this.readsWithBoxTar || small.length < 2 || this.boxTarWorks === false) return done;
    for (let start = 0; start < small.length;) {
      const names: string[] = [];
      let argBytes = 0;
      let contentBytes = 0;
      while (
        start < small.length &&
        (names.length === 0 ||
          (argBytes + Buffer.byteLength(small[start].path) < TARGETED_LISTING_MAX_ARG_BYTES &&
            contentBytes + small[start].size < BOX_TAR_MAX_CHUNK_BYTES))
      ) {
        argBytes += Buffer.byteLength(small[start].path) + 1;
        contentBytes += small[start].size;
        names.push(small[start++].path);
      }
      // Each file as listed, rounded to blocks, a header and a long-name record each, and the end blocks.
      const cap = contentBytes + names.length * 4 * 512 + argBytes * 2 + 64 * 1024;
      let result: { exitCode: number | null; stdout: Buffer; stderr: string };
      try {
        result = await runBoxHelperRaw(this.options.engine, this.box.containerId, CANDIDATES_TAR_SCRIPT, names, {
          signal,
          maxStdoutBytes: cap,
          timeoutMs: LISTING_TIMEOUT_MS,
        });
      } catch (error) {
        if (SandboxError.isAny(error, CALLER_MUST_SEE)) throw error;
        this.options.log(`[session] reading changed files with the box's tar failed: ${errorText(error)}`);
        return done;
      }
      if (result.exitCode !== 0) {
        if (result.exitCode === 126 || result.exitCode === 127) this.boxTarWorks = false;
        this.options.log(`[session] the box's tar ended with ${result.exitCode}: ${result.stderr.trim().slice(0, 300)}`);
        return done;
      }
      const seen = new Set<string>();
      try {
        await builder.addArchive(Readable.from([result.stdout], { objectMode: false }), { prefix: '', only: new Set(names), seen });
      } catch (error) {
        if (SandboxError.isAny(error, CALLER_MUST_SEE)) throw error;
        this.options.log(`[session] the box's tar of changed files was not usable: ${errorText(error)}`);
        return done;
      }
      // A name missing from it is read through the archive API (which also replaces what this chunk added).
      if (names.some((n) => !seen.has(n))) return done;
      this.boxTarWorks = true;
      for (const n of names) done.add(n);
    }
    return done;
  }

  /**
   * Sorts a listing into what the builder settles from the listing alone and the files whose content must be
   * read. A string when the listing holds something only the whole archive can say (an unknown type).
   */
  private async planFromListing(listing: BoxListing, signal?: AbortSignal): Promise<{ builder: BoxTreeBuilder; fetch: ListedEntry[] } | string> {
    const builder = new BoxTreeBuilder({ baseline: this.baseline, filter: this.filter, maxFileBytes: this.maxFileBytes, signal });
    // Hard links: the engine's tar carries the first name of an inode (walking each directory in name order,
    // depth first) as the file and every later name as a hard link, which is refused. Same here.
    const firstName = new Map<string, string>();
    const linked = listing.entries.filter((e) => e.kind !== 'd' && e.nlink > 1).sort((a, b) => comparePaths(a.path, b.path));
    for (const e of linked) {
      if (!firstName.has(e.inode)) firstName.set(e.inode, e.path);
    }
    const fetch: ListedEntry[] = [];
    for (const e of listing.entries) {
      // Fast path, most of a large tree: a file whose stamp is unchanged since it was proven equal to this very
      // baseline entry. Its name passed the tree's checks and the filter when the stamp was recorded (both
      // depend on the name only), and the stamp covers type, mode (recorded without setuid/setgid) and links.
      if (e.kind === 'f' && e.nlink === 1) {
        const known = this.stamps.get(e.path);
        if (known !== undefined && this.baseline.get(e.path) === known.base && sameStamp(known.stamp, e)) {
          builder.adoptBaseline(e.path);
          continue;
        }
      }
      const common = { name: e.path, mode: e.mode, mtimeMs: e.mtimeMs };
      const first = e.nlink > 1 && e.kind !== 'd' ? firstName.get(e.inode) : undefined;
      if (first !== undefined && first !== e.path) {
        await builder.addListed({ ...common, type: 'link', linkname: first });
        continue;
      }
      switch (e.kind) {
        case 'd':
          await builder.addListed({ ...common, type: 'directory' });
          break;
        case 'l':
          await builder.addListed({ ...common, type: 'symlink', linkname: e.linkTarget, size: e.size });
          break;
        case 'p':
          await builder.addListed({ ...common, type: 'fifo' });
          break;
        case 'c':
          await builder.addListed({ ...common, type: 'character-device' });
          break;
        case 'b':
          await builder.addListed({ ...common, type: 'block-device' });
          break;
        case 's':
          // The engine's tar leaves sockets out; so does this.
          break;
        case 'f': {
          const relPath = await builder.addListed({ ...common, type: 'file', size: e.size });
          if (relPath === undefined) break;
          const known = relPath === e.path ? this.knownStamp(relPath) : undefined;
          if (known !== undefined && sameStamp(known, e)) {
            builder.adoptBaseline(relPath);
          } else {
            fetch.push({ ...e, path: relPath });
          }
          break;
        }
        default:
          return `a path of type ${JSON.stringify(e.kind)}`;
      }
    }
    return { builder, fetch };
  }

  /** Records a listed file's stamp when what was read after the listing equals the baseline. */
  private recordStamp(listed: ListedEntry, tree: BoxTree, listing: BoxListing): void {
    const base = this.baseline.get(listed.path);
    const entry = tree.entries.get(listed.path);
    if (
      base?.type === 'file' &&
      entry?.type === 'file' &&
      sameState(base, entry) &&
      entry.size === listed.size &&
      entry.mode === listed.mode &&
      listed.nlink === 1 &&
      stampRecordable(listed, listing, listing.clockBeforeMs)
    ) {
      this.stamps.set(listed.path, { stamp: listed, base });
    } else {
      this.stamps.delete(listed.path);
    }
  }

  /** One archive of the whole tree; with a listing taken before it, also records the stamps it proves. */
  private async readWholeTree(listing: BoxListing | undefined, reason: string, signal?: AbortSignal): Promise<BoxTree> {
    const stream = await this.box.getArchive('/workspace', signal);
    const tree = await readBoxTree(stream, {
      prefix: 'workspace/',
      baseline: this.baseline,
      filter: this.filter,
      maxFileBytes: this.maxFileBytes,
      signal,
    });
    if (listing) {
      this.stamps.clear();
      for (const entry of listing.entries) {
        if (entry.kind === 'f') this.recordStamp(entry, tree, listing);
      }
    }
    this.collectInfo = { strategy: 'full', reason, listed: listing?.entries.length ?? 0, fetched: 0, knownStamps: this.stamps.size };
    return tree;
  }

  /**
   * Paths among `paths` the box provably still holds as in the baseline, from one targeted listing: a file by
   * its known stamp, a directory by type and mode, a symlink by its target. The rest are left to the caller.
   */
  private async unchangedByListing(paths: string[], signal?: AbortSignal): Promise<Set<string>> {
    const unchanged = new Set<string>();
    if (this.listingSupported !== true) return unchanged;
    const checkable = paths.filter((p) => {
      const base = this.baseline.get(p);
      return base !== undefined && (base.type !== 'file' || this.knownStamp(p) !== undefined);
    });
    for (let start = 0; start < checkable.length;) {
      const chunk: string[] = [];
      let bytes = 0;
      while (start < checkable.length && (chunk.length === 0 || bytes + checkable[start].length < TARGETED_LISTING_MAX_ARG_BYTES)) {
        bytes += checkable[start].length + 12;
        chunk.push(checkable[start++]);
      }
      const listed = await this.tryListing(chunk, signal);
      if (!listed) return unchanged;
      for (const e of listed.listing.entries) {
        const base = this.baseline.get(e.path);
        if (!base || !chunk.includes(e.path)) continue;
        const same =
          base.type === 'file'
            ? sameStampOrNone(this.knownStamp(e.path), e)
            : base.type === 'directory'
              ? e.kind === 'd' && e.mode === base.mode
              : e.kind === 'l' && e.linkTarget === base.linkTarget;
        if (same) unchanged.add(e.path);
      }
    }
    return unchanged;
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
    const proven = await this.unchangedByListing(paths, signal);
    const toCheck = paths.filter((p) => !proven.has(p));
    const changed = new Set<string>();
    await forEachBounded(toCheck, PER_PATH_CHECK_CONCURRENCY, async (p) => {
      const inBox = await this.statInBox(p, signal);
      if (!sameState(this.baseline.get(p), inBox)) changed.add(p);
    });
    return changed;
  }

  /** The box's entry at `path` (undefined when absent), read through a one-path archive. */
  private async statInBox(path: string, signal?: AbortSignal): Promise<ManifestEntry | undefined> {
    let stream: Readable;
    try {
      stream = await this.box.getArchive(`/workspace/${path}`, signal);
    } catch (error) {
      if (SandboxError.is(error, 'not-found')) return undefined;
      throw error;
    }
    const name = path.split('/').pop() ?? path;
    const tree = await readBoxTree(stream, { prefix: '', baseline: new Map(), filter: this.filter, maxFileBytes: this.maxFileBytes, signal });
    return tree.entries.get(name);
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
    this.dropStamps(paths);
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
   * when no file event came since; apply plans always rescan in full.
   */
  private async scanHost(signal?: AbortSignal, options: { reuseIfUnchanged?: boolean } = {}): Promise<Manifest> {
    if (options.reuseIfUnchanged && this.lastScan && (await this.watch.unchanged())) {
      return this.lastScan.manifest;
    }
    this.hostScanCount += 1;
    const obstacles = new Map<string, string>();
    const beforeListing = this.watch.beginScan();
    let complete = false;
    try {
      const manifest = await scanWorkspace(this.options.folder, this.filter, {
        previous: this.hostState,
        signal,
        beforeListing,
        onSkipped: (relPath, reason) => {
          const what = OBSTACLES[reason];
          if (what) obstacles.set(relPath, what);
        },
      });
      complete = true;
      this.lastScan = { manifest, obstacles };
      return manifest;
    } finally {
      this.watch.endScan(complete);
    }
  }

  private async dropPending(paths: Set<string>): Promise<void> {
    if (!this.collected) return;
    const changeSet = this.collected.changeSet;
    changeSet.changes = changeSet.changes.filter((c) => !paths.has(c.path));
    for (const p of paths) this.collected.tree.contents.delete(p);
    await this.persist();
  }

  /** The pending review as it must survive a reload: change set, baseline and box entries, contents. */
  get pendingReview(): PendingReview | undefined {
    if (!this.collected) return undefined;
    const { changeSet, tree, baseContents } = this.collected;
    const review: PendingReview = { changeSet, baseline: new Map(), boxEntries: new Map(), contents: new Map(), baseContents: new Map() };
    for (const change of changeSet.changes) {
      for (const p of change.fromPath ? [change.path, change.fromPath] : [change.path]) {
        const base = this.baseline.get(p);
        if (base) review.baseline.set(p, base);
        const boxEntry = tree.entries.get(p);
        if (boxEntry) review.boxEntries.set(p, boxEntry);
        const content = tree.contents.get(p);
        if (content) review.contents.set(p, content);
        const baseContent = baseContents.get(p);
        if (baseContent) review.baseContents.set(p, baseContent);
      }
    }
    return review;
  }

  private async persist(): Promise<void> {
    const store = this.options.reviewStore;
    const review = this.pendingReview;
    if (!store || !review) return;
    try {
      if (review.changeSet.changes.length === 0 && review.changeSet.refused.length === 0) {
        await store.clear(this.options.folder);
      } else {
        await store.save(this.options.folder, review);
      }
    } catch (error) {
      // The review itself is intact in memory; only its copy for a later reload could not be written.
      this.options.log(`[session] could not persist the pending review of ${this.options.folder}: ${errorText(error)}`);
    }
  }

  /** Puts a persisted review's pending changes into this (freshly mirrored) box, against their old baseline. */
  private async restore(review: PendingReview, signal?: AbortSignal): Promise<void> {
    const remove: string[] = [];
    const write: { entry: ManifestEntry; content?: Buffer }[] = [];
    for (const change of review.changeSet.changes) {
      if (change.fromPath) remove.push(change.fromPath);
      const boxEntry = review.boxEntries.get(change.path);
      if (change.kind === 'deleted' || !boxEntry) {
        remove.push(change.path);
      } else {
        const content =
          boxEntry.type === 'file' ? (review.contents.get(change.path) ?? (await this.readWorkspaceFile(change.path, boxEntry.hash))) : undefined;
        if (boxEntry.type === 'file' && !content) {
          this.options.log(`[session] cannot restore ${change.path}: its content was not kept`);
          continue;
        }
        write.push({ entry: boxEntry, content });
      }
      for (const p of change.fromPath ? [change.path, change.fromPath] : [change.path]) {
        const base = review.baseline.get(p);
        if (base) this.baseline.set(p, base);
        else this.baseline.delete(p);
      }
    }
    this.dropStamps(remove);
    this.dropStamps(write.map((w) => w.entry.path));
    await removeInBox(this.box, remove, signal);
    if (write.length > 0) {
      const pack = tarStream.pack();
      const dirs = new Set<string>();
      for (const { entry, content } of write) {
        for (const dir of ancestorsOf(entry.path)) {
          if (dirs.has(dir)) continue;
          dirs.add(dir);
          const mode = (review.boxEntries.get(dir) ?? this.baseline.get(dir))?.mode ?? 0o755;
          pack.entry({ name: dir, type: 'directory', mode: mode & 0o777, uid: BOX_UID, gid: BOX_GID });
        }
        const header = { name: entry.path, mode: entry.mode & 0o777, uid: BOX_UID, gid: BOX_GID };
        if (entry.type === 'file') pack.entry({ ...header, type: 'file', size: content!.length }, content!);
        else if (entry.type === 'symlink') pack.entry({ ...header, type: 'symlink', linkname: entry.linkTarget ?? '' });
        else pack.entry({ ...header, type: 'directory' });
      }
      pack.finalize();
      // tar-stream's pack is a streamx stream; the archive API takes a Node stream.
      await this.box.putArchive(Readable.from(pack, { objectMode: false }), { path: '/workspace', signal });
    }
    await this.collect(signal, review.baseContents);
  }

  /** The workspace file's bytes when they still have `hash` (a mode-only change keeps the base content). */
  private async readWorkspaceFile(relPath: string, hash: string | undefined): Promise<Buffer | undefined> {
    try {
      const file = path.join(this.options.folder, ...relPath.split('/'));
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
        const { hash, size } = await hashFile(path.join(folder, ...p.split('/')), signal);
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

function sameStampOrNone(known: ListedEntry | undefined, listed: ListedEntry): boolean {
  return known !== undefined && sameStamp(known, listed);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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
