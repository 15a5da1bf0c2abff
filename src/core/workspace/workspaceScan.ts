import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs, lstatSync, readdirSync, readlinkSync } from 'node:fs';
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
  /** Called for each directory (`''` = the root) right before it is read, e.g. to start watching it. */
  beforeListing?(relDirectory: string): void;
}

/**
 * Walks `root` with lstat, never following symlinks, and returns every kept entry (directories included, so
 * empty ones round-trip; `.git/` included). Excluded directories are not descended into. Sockets, fifos and
 * devices are skipped. A symlink is kept only if it is relative and, resolved through the scanned tree the way
 * the box's kernel would, stays inside the root: nothing in the box may point at host paths.
 */
export async function scanWorkspace(root: string, filter: SyncFilter, options: ScanOptions = {}): Promise<Manifest> {
  const manifest: Manifest = new Map();
  const toHash: { relPath: string; mode: number; stamp: FileStamp }[] = [];
  let files = 0;
  let bytes = 0;

  const throwIfAborted = (): void => {
    if (options.signal?.aborted) {
      throw new SandboxError('cancelled', 'Scanning the workspace was cancelled.');
    }
  };
  const countFile = (size: number): void => {
    files += 1;
    bytes += size;
    options.onProgress?.(files, bytes);
  };

  /** Lists a directory; its kept children (by the filter, on d_type) are visited by the caller. */
  const listDirectory = (relDirectory: string): string[] => {
    let children: import('node:fs').Dirent[];
    options.beforeListing?.(relDirectory);
    try {
      children = readdirSync(hostPath(root, relDirectory), { withFileTypes: true });
    } catch (error) {
      if (relDirectory === '') {
        throw new SandboxError('not-found', `Cannot read the workspace folder ${root}: ${(error as Error).message}.`, { cause: error });
      }
      options.onSkipped?.(relDirectory, isVanished(error) ? 'vanished' : 'unreadable');
      manifest.delete(relDirectory);
      return [];
    }
    const kept: string[] = [];
    for (const child of children) {
      const relPath = relDirectory === '' ? child.name : `${relDirectory}/${child.name}`;
      // The dirent type comes from the directory itself (d_type), so it never follows a symlink.
      if (!filter.isExcluded(relPath, child.isDirectory())) {
        kept.push(relPath);
      }
    }
    return kept;
  };

  /** Records one entry from its lstat; returns true for a directory to descend into. */
  const visitEntry = (relPath: string): boolean => {
    const absolute = hostPath(root, relPath);
    let stat: Stats;
    try {
      stat = lstatSync(absolute);
    } catch (error) {
      options.onSkipped?.(relPath, isVanished(error) ? 'vanished' : 'unreadable');
      return false;
    }
    const mode = stat.mode & 0o7777;
    if (stat.isDirectory()) {
      if (filter.isExcluded(relPath, true)) {
        return false;
      }
      manifest.set(relPath, { path: relPath, type: 'directory', mode, size: 0, mtimeMs: stat.mtimeMs });
      return true;
    }
    if (stat.isSymbolicLink()) {
      try {
        const linkTarget = readlinkSync(absolute);
        manifest.set(relPath, { path: relPath, type: 'symlink', mode, size: Buffer.byteLength(linkTarget), linkTarget, mtimeMs: stat.mtimeMs });
      } catch (error) {
        options.onSkipped?.(relPath, isVanished(error) ? 'vanished' : 'unreadable');
      }
      return false;
    }
    if (stat.isFile()) {
      const previous = options.previous?.get(relPath);
      const stamp = fileStamp(stat);
      if (options.hashFiles === false) {
        manifest.set(relPath, fileEntry(relPath, { mode, size: stat.size, mtimeMs: stamp.mtimeMs }, stamp));
        countFile(stat.size);
      } else if (previous?.type === 'file' && previous.hash !== undefined && previous.size === stat.size && sameFileStamp(previous, stamp)) {
        manifest.set(relPath, fileEntry(relPath, { mode, size: stat.size, hash: previous.hash, mtimeMs: stamp.mtimeMs }, stamp));
        countFile(stat.size);
      } else {
        toHash.push({ relPath, mode, stamp });
      }
      return false;
    }
    options.onSkipped?.(relPath, 'special-file');
    return false;
  };

  throwIfAborted();
  // The walk lstat()s synchronously, in slices between which the event loop runs (requests, cancellation):
  // one thread-pool round trip per entry costs 3–5× the lstat itself (bench/: a 10k-file rescan took ~250–450
  // ms of CPU asynchronously, ~90 ms like this). Reading file contents stays asynchronous below.
  const pending = listDirectory('');
  let sinceYield = 0;
  while (pending.length > 0) {
    const relPath = pending.pop()!;
    if (visitEntry(relPath)) {
      for (const child of listDirectory(relPath)) pending.push(child);
    }
    if (++sinceYield >= SCAN_SLICE) {
      sinceYield = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
      throwIfAborted();
    }
  }

  await forEachBounded(toHash, options.concurrency ?? 16, async ({ relPath, mode, stamp }) => {
    throwIfAborted();
    try {
      const { hash, size } = await hashFile(hostPath(root, relPath), options.signal);
      manifest.set(relPath, fileEntry(relPath, { mode, size, hash, mtimeMs: stamp.mtimeMs }, stamp));
      countFile(size);
    } catch (error) {
      if (SandboxError.is(error)) throw error;
      options.onSkipped?.(relPath, isVanished(error) ? 'vanished' : 'unreadable');
    }
  });
  dropEscapingSymlinks(manifest, options.onSkipped);
  return new Map([...manifest.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
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
 * resolves lexically), so this repeats until nothing changes.
 */
export function dropEscapingSymlinks(manifest: Manifest, onSkipped?: (relPath: string, reason: ScanSkipReason) => void): void {
  const lookup = (relPath: string): ManifestEntry | undefined => manifest.get(relPath);
  for (let changed = true; changed;) {
    changed = false;
    for (const entry of manifest.values()) {
      if (entry.type === 'symlink' && !symlinkStaysInside(entry.path, entry.linkTarget ?? '', lookup)) {
        manifest.delete(entry.path);
        onSkipped?.(entry.path, 'symlink-outside');
        changed = true;
      }
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
