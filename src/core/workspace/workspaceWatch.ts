import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { Disposable, toDisposable } from '../lifecycle';
import { hostPath } from './hostPath';
import type { Manifest } from './manifest';
import type { SyncFilter } from './syncFilter';
import { rescanWorkspace, scanWorkspaceTree, type DirectoryIdentity, type WorkspaceScan } from './workspaceScan';

/** Beyond this many directories the watch gives up (inotify watches are a per-user budget shared with VS Code). */
export const MAX_WATCHED_DIRECTORIES = 20_000;

/** The kernel's inotify queue length when /proc does not say (Linux's default). */
const DEFAULT_QUEUED_EVENTS = 16_384;

/** Events one inotify queue holds before it overflows (`/proc/sys/fs/inotify/max_queued_events`). */
export function inotifyQueueLimit(): number {
  try {
    const value = Number.parseInt(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'), 10);
    return Number.isSafeInteger(value) && value > 0 ? value : DEFAULT_QUEUED_EVENTS;
  } catch {
    return DEFAULT_QUEUED_EVENTS;
  }
}

/**
 * What every `WorkspaceWatch` in this process shares: libuv reads all of a loop's watches through one inotify
 * queue. `delivered` counts events handed to any watcher here, `closed` watchers closed; `flushed` is what the
 * last `flushEvents` saw: `delivered` when it ended (every event queued before it began had been read), and
 * `closed` both when it began and when it ended.
 */
const processWide = { delivered: 0, closed: 0, flushed: { delivered: 0, closedBefore: 0, closedAfter: 0 } };

/**
 * Two turns of the event loop: the second runs after a poll phase that began after this call, and libuv's
 * inotify reader reads the queue until it is empty whenever it is readable, so every event queued before this
 * call has been handed to its watcher (or found none) by the time it returns.
 */
async function flushEvents(): Promise<void> {
  const closedBefore = processWide.closed;
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  processWide.flushed = { delivered: processWide.delivered, closedBefore, closedAfter: processWide.closed };
}

interface Watched {
  watcher: FSWatcher;
  identity: DirectoryIdentity;
}

/** What a scan gets from `beginScan`: pass both to `scanWorkspaceTree` / `rescanWorkspace`. */
export interface ScanHooks {
  beforeListing(relDirectory: string, identity: DirectoryIdentity): void;
  isKnownDirectory(relDirectory: string, identity: DirectoryIdentity): boolean;
}

/**
 * Knows which directories of the workspace changed since the last scan, so a run's catch-up lists only those
 * again (`rescanWorkspace`) or nothing at all. One non-recursive watcher per scanned directory, started right
 * before the scan reads that directory, so no change can fall between reading and watching; each records the
 * directory it was started for when it fires. A rescan of those directories is exact when every change made
 * since the last scan began fired the watcher of the directory it was made in. Anything that may break that
 * means a full rescan: no complete scan yet, a scan that threw, a watcher error, too many directories, an
 * unsupported file system, `invalidate()` — and a possible overflow of the kernel's queue, argued below. A
 * missed watch costs a scan, never a stale box. Changes that no file event reports (a write through a hard link
 * from outside the folder, some network file systems) are not seen here; applying always rescans in full.
 *
 * Directories are known by path and identity (device, inode). An inotify watch follows its directory's inode:
 * moved away (`mv d d.old`), it goes on reporting under the old path `d`, which only costs a needless listing of
 * whatever is at `d` now. The move itself changed both parents, whose watchers fired: the parent of `d.old`
 * is listed again and finds a directory no watcher of that path knows by that identity, so it is scanned in full
 * (and watched); the new `d` (`mkdir d`, or `rm -rf d && mkdir d`) has another inode than the watch on `d`, so
 * it is scanned in full too and the stale watcher is replaced. The same holds for the root. A directory made
 * anew may get the inode of the one just removed (`rm -rf d && mkdir d` often does), whose watch the kernel
 * dropped with it: so a directory whose name came in a create/delete/move event of its parent counts as new
 * whatever its identity. After a possible overflow that event may be lost too: the next full scan then renews
 * every watcher.
 *
 * Overflow. libuv gives each event loop one inotify descriptor, so every watcher in this process (every
 * workspace of the engine server) shares one kernel queue of `max_queued_events` entries. When it is full the
 * kernel drops new events and queues a single IN_Q_OVERFLOW with wd -1, which libuv's reader skips as an event
 * for no watcher (`uv__inotify_read` in src/unix/linux.c): nothing here ever hears of it. But an overflow at
 * time T needs `max_queued_events` entries in the queue at T, and each of them is read after T: either handed
 * to a watcher (counted in `processWide.delivered`) or, when its watch was removed in between, to none. An
 * entry is for no watcher only when its watcher was closed after it was queued and before it was read. So, if
 * the counting window starts at a flush (every entry queued before it was read by then), no watcher was closed
 * since (`processWide.closed` unchanged) and fewer than `max_queued_events` events were delivered since (read
 * after another flush), no overflow happened in the window: every entry of an overflowing queue would have been
 * counted in it. A scan's window starts at the flush it begins with, and the next check ends it with another:
 * events are counted from the end of the first (windows meet, so each event counts in one) and closings from
 * its start (a watcher closed while it ran may hold entries it did not read) to the end of the second. Any
 * check that fails means a full rescan.
 * This holds while every `fs.watch` in the process is a `WorkspaceWatch`'s (true of the engine server and the
 * CLI: outside `src/host`, which runs in VS Code's process, nothing else watches files), since another
 * watcher's events would fill the queue uncounted.
 * Closing a watcher (a directory gone or replaced, a workspace closed) thus costs every workspace one full
 * rescan; events in excluded directories are never queued at all (they are not watched).
 */
export class WorkspaceWatch extends Disposable {
  private readonly watchers = new Map<string, Watched>();
  /** Directories whose watcher fired since the current (or last) scan began. */
  private fired = new Set<string>();
  /**
   * Paths named by a create, delete or move event of their parent's watcher since then (`dir/` alone: the event
   * named nothing). A directory made anew there may have the inode of the one removed (file systems reuse them),
   * so its identity cannot tell it from the one watched: it counts as new either way.
   */
  private renamed = new Set<string>();
  /** Events may have been lost (a queue overflow): the next complete scan watches every directory anew. */
  private lost = false;
  private failed = false;
  /** Set for good when watching cannot work here (watch budget, file descriptors, too many directories). */
  private gaveUp = false;
  /** True after a complete scan, until anything makes its result untrustworthy. */
  private trusted = false;
  /** Where the last scan's counting window began (see the class comment). */
  private window = { delivered: 0, closed: 0 };
  private readonly queueLimit: number;
  private readonly maxDirectories: number;

  /** `queueLimit` stands in for the kernel's `max_queued_events` (tests make it small). */
  constructor(
    private readonly root: string,
    options: { maxDirectories?: number; queueLimit?: number } = {},
  ) {
    super();
    this.maxDirectories = options.maxDirectories ?? MAX_WATCHED_DIRECTORIES;
    this.queueLimit = options.queueLimit ?? inotifyQueueLimit();
    this._register(toDisposable(() => this.closeAll()));
  }

  /**
   * Starts a scan, full or partial, once the file events already queued have been handled (its counting window
   * starts there); pass the hooks to it, and end it with `endScan`. `changed` is what `changedDirectories` would
   * say at this very point, taken together with starting the new window so no event falls between.
   */
  async beginScan(): Promise<ScanHooks & { changed: Set<string> | undefined }> {
    await flushEvents();
    const changed = this.trustedChanges();
    this.lost ||= processWide.flushed.delivered - this.window.delivered >= this.queueLimit;
    this.failed = this.gaveUp;
    this.trusted = false;
    this.window = { delivered: processWide.flushed.delivered, closed: processWide.flushed.closedBefore };
    this.fired = new Set();
    const renamed = this.renamed;
    this.renamed = new Set();
    const lost = this.lost;
    const known = (relDirectory: string, identity: DirectoryIdentity): boolean => {
      const watched = this.watchers.get(relDirectory);
      if (lost || watched === undefined || !sameIdentity(watched.identity, identity) || renamed.has(relDirectory)) return false;
      return !renamed.has(`${relDirectory.slice(0, Math.max(0, relDirectory.lastIndexOf('/')))}/`);
    };
    return {
      changed,
      beforeListing: (relDirectory, identity) => {
        if (known(relDirectory, identity)) return;
        // The new watcher first: on the same inode it shares the old one's kernel watch, which then stays.
        const old = this.watchers.get(relDirectory);
        this.add(relDirectory, identity);
        if (old === undefined) return;
        if (this.watchers.get(relDirectory) === old) this.watchers.delete(relDirectory);
        this.closeWatcher(old.watcher);
      },
      isKnownDirectory: (relDirectory, identity) => !this.failed && known(relDirectory, identity),
    };
  }

  /**
   * Ends the scan begun last with its result (`undefined` when it threw or was cancelled). Watchers of
   * directories the result does not hold are closed.
   */
  endScan(manifest: Map<string, { type: string }> | undefined): void {
    if (manifest === undefined || this.failed) return;
    this.lost = false;
    for (const relDirectory of [...this.watchers.keys()]) {
      if (relDirectory !== '' && manifest.get(relDirectory)?.type !== 'directory') this.close(relDirectory);
    }
    this.trusted = true;
  }

  /**
   * The directories to list again for the workspace to be as it is now: empty when nothing changed since the
   * last scan, `undefined` when only a full rescan can tell (see the class comment). Waits for the file events
   * already queued when it is called first.
   */
  async changedDirectories(): Promise<Set<string> | undefined> {
    await flushEvents();
    return this.trustedChanges();
  }

  /** The directories that fired, when nothing may have been missed since the last scan began (right after a flush). */
  private trustedChanges(): Set<string> | undefined {
    const { delivered, closedAfter: closed } = processWide.flushed;
    if (this.isDisposed || this.failed || !this.trusted) return undefined;
    if (closed !== this.window.closed || delivered - this.window.delivered >= this.queueLimit) return undefined;
    return new Set(this.fired);
  }

  /**
   * Scans the workspace, watching every directory it reads. With `reuse`, `last` (this watch's previous scan)
   * is returned as it is when nothing fired since, or patched by listing again only the directories that fired
   * when the watch can vouch for the rest (`rescanWorkspace`); anything else is a full scan.
   */
  async scan(
    filter: SyncFilter,
    last: WorkspaceScan | undefined,
    options: { reuse: boolean; previous?: Manifest; signal?: AbortSignal },
  ): Promise<{ scan: WorkspaceScan; kind: 'reused' | 'partial' | 'full' }> {
    if (options.reuse && last && (await this.changedDirectories())?.size === 0) return { scan: last, kind: 'reused' };
    const { changed, ...hooks } = await this.beginScan();
    let scan: WorkspaceScan | undefined;
    try {
      if (options.reuse && last && changed) {
        // Undefined when a file has a new hard link (its other names may be anywhere): then in full.
        scan = await rescanWorkspace(this.root, filter, last, { signal: options.signal, changed, ...hooks });
        if (scan) return { scan, kind: 'partial' };
      }
      scan = await scanWorkspaceTree(this.root, filter, { previous: options.previous, signal: options.signal, beforeListing: hooks.beforeListing });
      return { scan, kind: 'full' };
    } finally {
      this.endScan(scan?.manifest);
    }
  }

  /** True when the workspace is known unchanged since the last clean scan. */
  async unchanged(): Promise<boolean> {
    return (await this.changedDirectories())?.size === 0;
  }

  /** Forgets the last scan (e.g. after writing the folder through another path): the next one is full. */
  invalidate(): void {
    this.trusted = false;
  }

  /** How many directories are watched (for tests and the log). */
  get watchedDirectories(): number {
    return this.watchers.size;
  }

  private add(relDirectory: string, identity: DirectoryIdentity): void {
    if (this.isDisposed || this.failed) return;
    if (this.watchers.size >= this.maxDirectories) {
      this.fail(true);
      return;
    }
    const absolute = hostPath(this.root, relDirectory);
    try {
      const watcher = watch(absolute, { persistent: false }, (eventType, name) => {
        processWide.delivered += 1;
        this.fired.add(relDirectory);
        if (eventType === 'rename') {
          const prefix = relDirectory === '' ? '' : `${relDirectory}/`;
          this.renamed.add(typeof name === 'string' && name !== '' ? `${prefix}${name}` : `${relDirectory}/`);
        }
      });
      watcher.on('error', () => this.fail());
      this.watchers.set(relDirectory, { watcher, identity });
    } catch (error) {
      // A directory gone since it was listed fails this scan only; a spent budget or no support, every scan.
      const code = (error as NodeJS.ErrnoException).code;
      this.fail(code !== 'ENOENT' && code !== 'ENOTDIR');
    }
  }

  private close(relDirectory: string): void {
    const watched = this.watchers.get(relDirectory);
    if (!watched) return;
    this.watchers.delete(relDirectory);
    this.closeWatcher(watched.watcher);
  }

  private closeWatcher(watcher: FSWatcher): void {
    watcher.close();
    processWide.closed += 1;
  }

  private fail(forGood = false): void {
    this.failed = true;
    this.gaveUp ||= forGood;
    this.trusted = false;
    this.closeAll();
  }

  private closeAll(): void {
    for (const relDirectory of [...this.watchers.keys()]) this.close(relDirectory);
  }
}

function sameIdentity(a: DirectoryIdentity, b: DirectoryIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}
