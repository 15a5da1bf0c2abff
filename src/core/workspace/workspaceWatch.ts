import { watch, type FSWatcher } from 'node:fs';
import { Disposable, toDisposable } from '../lifecycle';
import { hostPath } from './hostPath';

/** Beyond this many directories the watch gives up (inotify watches are a per-user budget shared with VS Code). */
export const MAX_WATCHED_DIRECTORIES = 20_000;

/**
 * Knows when nothing in the workspace changed since the last full scan, so a run's catch-up can skip the
 * rescan (an lstat of every entry: ~20 ms for 1k files, ~1 s for 50k). One non-recursive watcher per scanned
 * directory, started right before the scan reads that directory, so no change can fall between reading and
 * watching. It answers "unchanged" only after a complete scan during which no event came, with every
 * directory watched and no watcher failed, and while no event has come since. Anything else (an event, a
 * watcher error, too many directories, an unsupported file system) means "rescan": a missed watch costs a
 * scan, never a stale box. Changes that no file event reports (a write through a hard link from outside the
 * folder, some network file systems) are not seen here; applying always rescans in full.
 */
export class WorkspaceWatch extends Disposable {
  private readonly watchers = new Map<string, FSWatcher>();
  private events = 0;
  private failed = false;
  /** Set for good when watching cannot work here (watch budget, file descriptors, too many directories). */
  private gaveUp = false;
  private scan: { seen: Set<string>; eventsAtStart: number } | undefined;
  /** The event count right after the last clean scan; -1 when there is none to trust. */
  private cleanAt = -1;

  constructor(
    private readonly root: string,
    private readonly maxDirectories = MAX_WATCHED_DIRECTORIES,
  ) {
    super();
    this._register(toDisposable(() => this.closeAll()));
  }

  /** Starts a full scan; pass the returned hook as `scanWorkspace`'s `beforeListing`. */
  beginScan(): (relDirectory: string) => void {
    this.failed = this.gaveUp;
    const scan = { seen: new Set<string>(), eventsAtStart: this.events };
    this.scan = scan;
    return (relDirectory) => {
      scan.seen.add(relDirectory);
      if (!this.watchers.has(relDirectory)) this.add(relDirectory);
    };
  }

  /** Ends the scan begun last; `complete` is false when it threw or was cancelled. */
  endScan(complete: boolean): void {
    const scan = this.scan;
    this.scan = undefined;
    if (!scan) return;
    for (const [relDirectory, watcher] of this.watchers) {
      if (!scan.seen.has(relDirectory)) {
        watcher.close();
        this.watchers.delete(relDirectory);
      }
    }
    this.cleanAt = complete && !this.failed && this.events === scan.eventsAtStart ? this.events : -1;
  }

  /**
   * True when the workspace is known unchanged since the last clean scan. Waits two turns of the event loop
   * first, so that file events already queued when the caller's request arrived have been counted.
   */
  async unchanged(): Promise<boolean> {
    for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    return !this.isDisposed && !this.failed && this.cleanAt >= 0 && this.cleanAt === this.events;
  }

  /** Forgets the last clean scan (e.g. after writing the folder through another path). */
  invalidate(): void {
    this.cleanAt = -1;
  }

  /** How many directories are watched (for tests and the log). */
  get watchedDirectories(): number {
    return this.watchers.size;
  }

  private add(relDirectory: string): void {
    if (this.isDisposed || this.failed) return;
    if (this.watchers.size >= this.maxDirectories) {
      this.fail(true);
      return;
    }
    const absolute = hostPath(this.root, relDirectory);
    try {
      const watcher = watch(absolute, { persistent: false }, () => {
        this.events += 1;
      });
      watcher.on('error', () => this.fail());
      this.watchers.set(relDirectory, watcher);
    } catch (error) {
      // A directory gone since it was listed fails this scan only; a spent budget or no support, every scan.
      const code = (error as NodeJS.ErrnoException).code;
      this.fail(code !== 'ENOENT' && code !== 'ENOTDIR');
    }
  }

  private fail(forGood = false): void {
    this.failed = true;
    this.gaveUp ||= forGood;
    this.cleanAt = -1;
    this.closeAll();
  }

  private closeAll(): void {
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }
}
