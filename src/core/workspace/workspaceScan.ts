import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { SandboxError } from '../errors';
import { fileEntry, type Manifest, type ManifestEntry } from './manifest';
import { symlinkStaysInside } from './pathGuard';
import type { SyncFilter } from './syncFilter';
import { forEachBounded } from '../util/concurrency';
import { hostPath } from './hostPath';

/** Why the scan left an entry out (beyond the filter, which is silent). */
export type ScanSkipReason = 'symlink-outside' | 'special-file' | 'vanished' | 'unreadable';

/** Entries lstat()ed between two turns of the event loop. */
const SCAN_SLICE = 2000;

/** What identifies a directory on disk (a watch follows it; its path can come to name another one). */
export interface DirectoryIdentity {
  dev: number;
  ino: number;
}

/** Options for `scanWorkspace`. */
export interface ScanOptions {
  /** An earlier scan: a file whose stamp (size, mtime, ctime, inode) is unchanged keeps its hash without being read. */
  previous?: Manifest;
  signal?: AbortSignal;
  /** Called as files are hashed (or reused), with running totals. */
  onProgress?(files: number, bytes: number): void;
  /** Called for entries left out for a reason other than the filter. */
  onSkipped?(relPath: string, reason: ScanSkipReason): void;
  /** Files hashed in parallel (default 16). */
  concurrency?: number;
  /**
   * `false`: files are listed with lstat only and get no `hash` (for a scan whose files are read anyway right
   * after, e.g. the first mirror, where `packWorkspace` reports the hash of what it sent). Default true.
   */
  hashFiles?: boolean;
  /**
   * Called for each directory (`''` = the root) right before it is read, e.g. to start watching it, with the
   * identity its lstat (the root: stat) found just before.
   */
  beforeListing?(relDirectory: string, identity: DirectoryIdentity): void;
}

/**
 * A complete scan: its manifest, and what `rescanWorkspace` needs to patch it into the next one without
 * reading the directories that did not change.
 */
export interface WorkspaceScan {
  manifest: Manifest;
  /** Symlinks left out as leading outside: judged again after every rescan (other entries decide where they lead). */
  escaping: Manifest;
  /** Entries left out for a reason other than the filter (`onSkipped`), by path. */
  skipped: Map<string, ScanSkipReason>;
  /** Files with more than one hard link: a write through another of their names touches no event of their directory. */
  multiplyLinked: Set<string>;
}

/** Options for `rescanWorkspace`. */
export interface RescanOptions extends ScanOptions {
  /** Directories whose direct entries may have changed since `previous` (`''` = the root), e.g. whose watchers fired. */
  changed: Iterable<string>;
  /**
   * True when the directory at `relDirectory` is still the one whose subtree the previous scan describes and
   * whose changes `changed` reports (the watch on it follows this identity). Anything else is scanned anew.
   */
  isKnownDirectory(relDirectory: string, identity: DirectoryIdentity): boolean;
}

/**
 * Walks `root` with lstat, never following symlinks, and returns every kept entry (directories included, so
 * empty ones round-trip; `.git/` included). Excluded directories are not descended into. Sockets, fifos and
 * devices are skipped. A symlink is kept only if it is relative and, resolved through the scanned tree the way
 * the box's kernel would, stays inside the root: nothing in the box may point at host paths.
 */
export async function scanWorkspace(root: string, filter: SyncFilter, options: ScanOptions = {}): Promise<Manifest> {
  return (await scanWorkspaceTree(root, filter, options)).manifest;
}

/** `scanWorkspace`, keeping what a later `rescanWorkspace` patches. */
export async function scanWorkspaceTree(root: string, filter: SyncFilter, options: ScanOptions = {}): Promise<WorkspaceScan> {
  const walk = new TreeWalk(root, filter, options, new Map(), new Map());
  walk.throwIfAborted();
  const children = walk.listDirectory('', walk.rootIdentity());
  await walk.descend(children);
  return walk.finish(true);
}

/**
 * The scan `scanWorkspaceTree` would make now, from `previous` and the directories that changed since: each
 * changed directory's direct entries are listed and lstat()ed again (hashes reused by stamp, from `options.previous`
 * or else `previous`), a directory that is new there — by path or by identity — is scanned in full, a vanished
 * one is dropped with everything below it, and every other subtree is kept as it was. Files with several hard
 * links are looked at again wherever they are, and every symlink is judged again against the new tree.
 * Undefined when the tree cannot be patched (a file with a new hard link): scan it in full.
 */
export async function rescanWorkspace(
  root: string,
  filter: SyncFilter,
  previous: WorkspaceScan,
  options: RescanOptions,
): Promise<WorkspaceScan | undefined> {
  const manifest: Manifest = new Map(previous.manifest);
  for (const [relPath, entry] of previous.escaping) manifest.set(relPath, entry);
  const skipped = new Map([...previous.skipped].filter(([, reason]) => reason !== 'symlink-outside'));
  const walk = new TreeWalk(root, filter, { ...options, previous: options.previous ?? previous.manifest }, manifest, skipped);
  walk.throwIfAborted();
  // Every path the previous scan knew (entries and obstacles alike), in path order: a directory's subtree is
  // the contiguous run of paths that start with its path and a slash.
  const known = [...previous.manifest.keys()];
  if (previous.escaping.size > 0 || previous.skipped.size > 0) {
    known.push(...previous.escaping.keys(), ...previous.skipped.keys());
    known.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
  const subtree = (relDirectory: string): string[] => {
    if (relDirectory === '') return known;
    const prefix = `${relDirectory}/`;
    let low = 0;
    let high = known.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (known[middle] < prefix) low = middle + 1;
      else high = middle;
    }
    let end = low;
    while (end < known.length && known[end].startsWith(prefix)) end++;
    return known.slice(low, end);
  };
  const childrenOf = (relDirectory: string): string[] => {
    const from = relDirectory === '' ? 0 : relDirectory.length + 1;
    return subtree(relDirectory).filter((relPath) => relPath.indexOf('/', from) === -1);
  };
  const drop = (relPath: string, itself: boolean): void => {
    for (const below of subtree(relPath)) {
      manifest.delete(below);
      skipped.delete(below);
    }
    if (itself) {
      manifest.delete(relPath);
      skipped.delete(relPath);
    }
  };
  // Subtrees listed in full in this pass: a changed directory inside one needs nothing more.
  const scannedAnew = new Set<string>();
  const inScannedAnew = (relPath: string): boolean => {
    if (scannedAnew.has('')) return true;
    for (let at = relPath.length; at > 0; at = relPath.lastIndexOf('/', at - 1)) {
      if (scannedAnew.has(relPath.slice(0, at))) return true;
    }
    return false;
  };
  const depth = (relPath: string): number => (relPath === '' ? 0 : relPath.split('/').length);
  const pending: string[] = [];
  for (const relDirectory of [...new Set(options.changed)].sort((a, b) => depth(a) - depth(b))) {
    if (inScannedAnew(relDirectory)) continue;
    let identity: DirectoryIdentity | undefined;
    if (relDirectory === '') {
      identity = walk.rootIdentity();
    } else {
      // Gone or no longer a directory: its parent changed too, and was listed again first.
      if (manifest.get(relDirectory)?.type !== 'directory') continue;
      // Its own entry too: a directory's mtime moves with what it holds, which its parent hears nothing of.
      identity = walk.visitEntry(relDirectory);
      if (identity === undefined) {
        drop(relDirectory, false);
        continue;
      }
    }
    if (!options.isKnownDirectory(relDirectory, identity)) {
      drop(relDirectory, false);
      scannedAnew.add(relDirectory);
      pending.push(...walk.listDirectory(relDirectory, identity));
      continue;
    }
    const listed = walk.listDirectory(relDirectory, identity);
    const kept = new Set(listed);
    for (const old of childrenOf(relDirectory)) {
      if (!kept.has(old)) drop(old, true);
      else skipped.delete(old);
    }
    for (const relPath of listed) {
      const before = manifest.get(relPath);
      const found = walk.visitEntry(relPath);
      if (found && before?.type === 'directory' && options.isKnownDirectory(relPath, found)) {
        continue;
      }
      if (before?.type === 'directory') drop(relPath, false);
      if (found) {
        scannedAnew.add(relPath);
        pending.push(...walk.listDirectory(relPath, found));
      }
    }
  }
  // A file with other names may have been written through one of them, in a directory that did not change.
  for (const relPath of previous.multiplyLinked) {
    if (manifest.get(relPath)?.type === 'file' && !walk.visited.has(relPath)) walk.visitEntry(relPath);
  }
  await walk.descend(pending);
  // A new hard link: its other names may be anywhere, in directories that did not change. Only a full scan knows.
  if (walk.linkedFiles.some((relPath) => !previous.multiplyLinked.has(relPath))) return undefined;
  return walk.finish(false);
}

/** One scan's walk over the tree: the listing, lstat and hashing rules every scan shares. */
class TreeWalk {
  private readonly toHash: { relPath: string; mode: number; stamp: FileStamp }[] = [];
  /** Files found with more than one hard link. */
  readonly linkedFiles: string[] = [];
  /** Entries lstat()ed in this walk. */
  readonly visited = new Set<string>();
  private files = 0;
  private bytes = 0;

  constructor(
    private readonly root: string,
    private readonly filter: SyncFilter,
    private readonly options: ScanOptions,
    private readonly manifest: Manifest,
    private readonly skipped: Map<string, ScanSkipReason>,
  ) {}

  throwIfAborted(): void {
    if (this.options.signal?.aborted) {
      throw new SandboxError('cancelled', 'Scanning the workspace was cancelled.');
    }
  }

  /** The root's identity (stat: the folder itself may be reached through a link). */
  rootIdentity(): DirectoryIdentity {
    try {
      const stat = statSync(this.root);
      return { dev: stat.dev, ino: stat.ino };
    } catch (error) {
      throw new SandboxError('not-found', `Cannot read the workspace folder ${this.root}: ${(error as Error).message}.`, { cause: error });
    }
  }

  private skip(relPath: string, reason: ScanSkipReason): void {
    this.skipped.set(relPath, reason);
    this.options.onSkipped?.(relPath, reason);
  }

  private countFile(size: number): void {
    this.files += 1;
    this.bytes += size;
    this.options.onProgress?.(this.files, this.bytes);
  }

  /** Lists a directory; its kept children (by the filter, on d_type) are visited by the caller. */
  listDirectory(relDirectory: string, identity: DirectoryIdentity): string[] {
    let children: import('node:fs').Dirent[];
    this.options.beforeListing?.(relDirectory, identity);
    try {
      children = readdirSync(hostPath(this.root, relDirectory), { withFileTypes: true });
    } catch (error) {
      if (relDirectory === '') {
        throw new SandboxError('not-found', `Cannot read the workspace folder ${this.root}: ${(error as Error).message}.`, { cause: error });
      }
      this.skip(relDirectory, isVanished(error) ? 'vanished' : 'unreadable');
      this.manifest.delete(relDirectory);
      return [];
    }
    const kept: string[] = [];
    for (const child of children) {
      const relPath = relDirectory === '' ? child.name : `${relDirectory}/${child.name}`;
      // The dirent type comes from the directory itself (d_type), so it never follows a symlink.
      if (!this.filter.isExcluded(relPath, child.isDirectory())) {
        kept.push(relPath);
      }
    }
    return kept;
  }

  /** Records one entry from its lstat; returns the identity of a directory to descend into. */
  visitEntry(relPath: string): DirectoryIdentity | undefined {
    const { manifest, options } = this;
    const absolute = hostPath(this.root, relPath);
    this.visited.add(relPath);
    let stat: Stats;
    try {
      stat = lstatSync(absolute);
    } catch (error) {
      this.skip(relPath, isVanished(error) ? 'vanished' : 'unreadable');
      manifest.delete(relPath);
      return undefined;
    }
    const mode = stat.mode & 0o7777;
    if (stat.isDirectory()) {
      if (this.filter.isExcluded(relPath, true)) {
        manifest.delete(relPath);
        return undefined;
      }
      manifest.set(relPath, { path: relPath, type: 'directory', mode, size: 0, mtimeMs: stat.mtimeMs });
      return { dev: stat.dev, ino: stat.ino };
    }
    if (stat.isSymbolicLink()) {
      try {
        const linkTarget = readlinkSync(absolute);
        manifest.set(relPath, { path: relPath, type: 'symlink', mode, size: Buffer.byteLength(linkTarget), linkTarget, mtimeMs: stat.mtimeMs });
      } catch (error) {
        this.skip(relPath, isVanished(error) ? 'vanished' : 'unreadable');
        manifest.delete(relPath);
      }
      return undefined;
    }
    if (stat.isFile()) {
      if (stat.nlink > 1) this.linkedFiles.push(relPath);
      const previous = options.previous?.get(relPath);
      const stamp = fileStamp(stat);
      if (options.hashFiles === false) {
        manifest.set(relPath, fileEntry(relPath, { mode, size: stat.size, mtimeMs: stamp.mtimeMs }, stamp));
        this.countFile(stat.size);
      } else if (previous?.type === 'file' && previous.hash !== undefined && previous.size === stat.size && sameFileStamp(previous, stamp)) {
        manifest.set(relPath, fileEntry(relPath, { mode, size: stat.size, hash: previous.hash, mtimeMs: stamp.mtimeMs }, stamp));
        this.countFile(stat.size);
      } else {
        this.toHash.push({ relPath, mode, stamp });
      }
      return undefined;
    }
    this.skip(relPath, 'special-file');
    manifest.delete(relPath);
    return undefined;
  }

  /**
   * Visits `pending` and everything below it. The walk lstat()s synchronously, in slices between which the
   * event loop runs (requests, cancellation): one thread-pool round trip per entry costs 3–5× the lstat itself
   * (bench/: a 10k-file rescan took ~250–450 ms of CPU asynchronously, ~90 ms like this). Reading file contents
   * stays asynchronous (`finish`).
   */
  async descend(pending: string[]): Promise<void> {
    let sinceYield = 0;
    while (pending.length > 0) {
      const relPath = pending.pop()!;
      const directory = this.visitEntry(relPath);
      if (directory) {
        for (const child of this.listDirectory(relPath, directory)) pending.push(child);
      }
      if (++sinceYield >= SCAN_SLICE) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
        this.throwIfAborted();
      }
    }
  }

  /** Hashes what needs it, judges every symlink against the finished tree, and returns the scan in path order. */
  async finish(fresh: boolean): Promise<WorkspaceScan> {
    const { manifest, options } = this;
    await forEachBounded(this.toHash, options.concurrency ?? 16, async ({ relPath, mode, stamp }) => {
      this.throwIfAborted();
      try {
        const { hash, size } = await hashFile(hostPath(this.root, relPath), options.signal);
        manifest.set(relPath, fileEntry(relPath, { mode, size, hash, mtimeMs: stamp.mtimeMs }, stamp));
        this.countFile(size);
      } catch (error) {
        if (SandboxError.is(error)) throw error;
        this.skip(relPath, isVanished(error) ? 'vanished' : 'unreadable');
        manifest.delete(relPath);
      }
    });
    const links: Manifest = new Map();
    for (const entry of manifest.values()) if (entry.type === 'symlink') links.set(entry.path, entry);
    const escaping: Manifest = new Map();
    dropEscapingSymlinks(manifest, (relPath, reason) => {
      escaping.set(relPath, links.get(relPath)!);
      this.skip(relPath, reason);
    });
    // A rescan keeps the previous order and adds at the end: sorted again only when that broke the order.
    const sorted =
      fresh || !inPathOrder(manifest.keys()) ? new Map([...manifest.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : manifest;
    const multiplyLinked = new Set(this.linkedFiles.filter((relPath) => sorted.get(relPath)?.type === 'file'));
    return { manifest: sorted, escaping, skipped: this.skipped, multiplyLinked };
  }
}

function inPathOrder(keys: Iterable<string>): boolean {
  let last: string | undefined;
  for (const key of keys) {
    if (last !== undefined && !(last < key)) return false;
    last = key;
  }
  return true;
}

/** What a rescan compares to trust an earlier hash, besides the size. */
type FileStamp = Required<Pick<ManifestEntry, 'mtimeMs' | 'ctimeMs' | 'ino'>>;

function fileStamp(stat: Stats): FileStamp {
  return { mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, ino: stat.ino };
}

/**
 * The hash-reuse rule, git's index rule: size (checked by the caller), mtime, ctime and inode all unchanged.
 * mtime alone is not enough: `touch -r`, `cp -p` and `rsync -t` put it back after a same-size edit, and a
 * file the developer changed must never keep the baseline's hash (design.md invariant 6). Only the kernel
 * sets ctime, and an edit saved by rename has a new inode. An entry without a recorded ctime or inode (an old
 * persisted manifest) is hashed again.
 */
function sameFileStamp(previous: ManifestEntry, stamp: FileStamp): boolean {
  return previous.mtimeMs === stamp.mtimeMs && previous.ctimeMs === stamp.ctimeMs && previous.ino === stamp.ino;
}

/**
 * Removes symlinks that leave the tree. Removing one can change how another resolves (a link through it now
 * resolves lexically), so this repeats until nothing changes. Each round judges every link against the same
 * tree and only then removes what leaves it, so the result does not depend on the order of the entries (a
 * link through one that leaves goes too, even if it would stay inside once that one is gone).
 */
export function dropEscapingSymlinks(manifest: Manifest, onSkipped?: (relPath: string, reason: ScanSkipReason) => void): void {
  const lookup = (relPath: string): ManifestEntry | undefined => manifest.get(relPath);
  for (;;) {
    const escaping: string[] = [];
    for (const entry of manifest.values()) {
      if (entry.type === 'symlink' && !symlinkStaysInside(entry.path, entry.linkTarget ?? '', lookup)) escaping.push(entry.path);
    }
    if (escaping.length === 0) return;
    for (const relPath of escaping) {
      manifest.delete(relPath);
      onSkipped?.(relPath, 'symlink-outside');
    }
  }
}

/** SHA-256 of a file, opened without following a symlink swapped in since the lstat. */
export async function hashFile(absolute: string, signal?: AbortSignal): Promise<{ hash: string; size: number }> {
  const handle = await fs.open(absolute, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(256 * 1024);
    let size = 0;
    for (;;) {
      if (signal?.aborted) {
        throw new SandboxError('cancelled', 'Scanning the workspace was cancelled.');
      }
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, size);
      if (bytesRead === 0) {
        break;
      }
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { hash: hash.digest('hex'), size };
  } finally {
    await handle.close();
  }
}

/** SHA-256 (hex) of a buffer. */

function isVanished(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}
