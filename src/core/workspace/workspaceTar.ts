import { createHash } from 'node:crypto';
import { close as closeCb, closeSync, fstat as fstatCb, fstatSync, read as readCb, readFile as readFileCb, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { SandboxError } from '../errors';
import { isGitConfigPath, sanitizeGitConfig } from './gitConfigSanitizer';
import type { ManifestEntry } from './manifest';
import { comparePaths, fileEntry } from './manifest';
import { WorkspaceOpener } from './workspaceOpener';
import { sha256 } from '../util/hash';
import { TarWriter, type TarMember } from './tarWriter';

const fstatAsync = promisify(fstatCb);
const readFileAsync = promisify(readFileCb);
const readAsync = promisify(readCb);
const closeAsync = promisify(closeCb);

type TarHeader = Omit<TarMember, 'type'>;

/** Files up to this size are read whole before their header is written, so header and body always agree. */
export const WHOLE_FILE_LIMIT = 8 * 1024 * 1024;

/**
 * The next file is read while the current entry is written. A wider window (16 files / 8 MiB) measured no
 * faster once small files are read synchronously, and it left ~38 MiB of buffers live after a full GC (server
 * peak RSS +30 MiB mirroring 50k files; see docs/benchmarks.md), so the window is one file, at most 1 MiB.
 */
const READ_AHEAD_FILES = 1;
const READ_AHEAD_BYTES = 1024 * 1024;
/** Files up to this size (by the scan) are read with blocking calls; see `readSmallSync`. */
const SYNC_READ_LIMIT = 256 * 1024;

/** Options for `packWorkspace`. */
export interface PackOptions {
  /** Owner written into every header (the box's user, e.g. 1000). */
  uid: number;
  gid: number;
  signal?: AbortSignal;
  /** Running totals of files and bytes sent. */
  onProgress?(files: number, bytes: number): void;
  /**
   * Called for every entry as actually sent: the hash and size of the bytes in the tar (which differ from the
   * scan for a sanitized `.git/config` or a file that changed meanwhile). Build the baseline from these.
   */
  onEntry?(entry: ManifestEntry): void;
  /** Called for an entry that could not be sent (vanished, became another type, unreadable). */
  onSkipped?(relPath: string, reason: string): void;
  /**
   * Directories go out with owner rwx added, for an extraction by the box user (busybox tar gives a directory
   * its mode when it makes it, so a read-only one could not get its entries). `onEntry` still reports the real
   * mode; `restoreLockedModesInBox` sets it once everything is in.
   */
  openDirectories?: boolean;
  /** Packed output that may wait for a reader (e.g. packing on while the box starts); a few chunks by default. */
  bufferBytes?: number;
}

/**
 * Streams the given entries as a tar whose names are workspace-relative (the box extracts it at
 * `/workspace`): directories, regular files read from disk without following a symlink in any component of
 * their path (`WorkspaceOpener`: a directory swapped for a link since the scan is skipped, not followed), and
 * symlinks as links (their target read again the same way, and sent only if the scan saw that target). Modes (without setuid/setgid) and mtimes are kept; owner is `uid`/`gid`. Git config files are sent
 * sanitized. Entries are written parents first whatever order they come in.
 */
export function packWorkspace(root: string, entries: Iterable<ManifestEntry>, options: PackOptions): Readable {
  const pack = new TarWriter(options.bufferBytes);
  const sorted = [...entries].sort((a, b) => comparePaths(a.path, b.path));
  const onAbort = (): void => {
    pack.destroy(new SandboxError('cancelled', 'Sending the workspace to the box was cancelled.'));
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const opener = new WorkspaceOpener(root);
  void (async () => {
    let files = 0;
    let bytes = 0;
    const readAhead = new Map<ManifestEntry, Promise<WholeRead>>();
    let nextToRead = 0;
    let bytesAhead = 0;
    // A directory of this list that could not be sent takes its entries with it: without its own entry the
    // engine would create it owned by root, and the box user could never change it (seen under a rename race).
    const skippedDirectories = new Set<string>();
    const underSkipped = (relPath: string): boolean => {
      for (let slash = relPath.lastIndexOf('/'); slash > 0; slash = relPath.lastIndexOf('/', slash - 1)) {
        if (skippedDirectories.has(relPath.slice(0, slash))) return true;
      }
      return false;
    };
    for (const [index, entry] of sorted.entries()) {
      if (options.signal?.aborted || pack.destroyed) {
        return;
      }
      if (skippedDirectories.size > 0 && underSkipped(entry.path)) {
        if (readAhead.delete(entry)) bytesAhead -= entry.size;
        if (entry.type === 'directory') skippedDirectories.add(entry.path);
        options.onSkipped?.(entry.path, 'its directory could not be sent');
        continue;
      }
      nextToRead = Math.max(nextToRead, index);
      while (nextToRead < sorted.length && readAhead.size < READ_AHEAD_FILES && (readAhead.size === 0 || bytesAhead < READ_AHEAD_BYTES)) {
        const upcoming = sorted[nextToRead++];
        if (upcoming.type !== 'file' || upcoming.size > WHOLE_FILE_LIMIT) continue;
        const read = readWhole(opener, upcoming);
        // Consumed in order below; a read left behind by cancellation must not become an unhandled rejection.
        read.catch(() => undefined);
        readAhead.set(upcoming, read);
        bytesAhead += upcoming.size;
      }
      const header: TarHeader = {
        name: entry.path,
        mode: entry.mode & 0o1777,
        uid: options.uid,
        gid: options.gid,
        mtime: new Date(entry.mtimeMs ?? Date.now()),
      };
      if (entry.type === 'directory') {
        const skipped = attempt(() => opener.checkDirectory(entry.path));
        if (skipped !== undefined) {
          skippedDirectories.add(entry.path);
          options.onSkipped?.(entry.path, skipped);
          continue;
        }
        await pack.member({ ...header, type: 'directory', mode: options.openDirectories ? header.mode | 0o700 : header.mode });
        options.onEntry?.({ ...entry, mode: header.mode });
      } else if (entry.type === 'symlink') {
        let target: string | undefined;
        const skipped = attempt(() => void (target = opener.readLink(entry.path)));
        if (skipped !== undefined || target !== entry.linkTarget) {
          options.onSkipped?.(entry.path, skipped ?? 'link target changed since the scan');
          continue;
        }
        await pack.member({ ...header, type: 'symlink', linkname: entry.linkTarget ?? '' });
        options.onEntry?.({ ...entry });
      } else {
        const read = readAhead.get(entry);
        if (read !== undefined) {
          readAhead.delete(entry);
          bytesAhead -= entry.size;
        }
        const sent = await writeFile(pack, opener, entry, header, options, read === undefined ? undefined : await read);
        if (sent !== undefined) {
          files += 1;
          bytes += sent.size;
          options.onEntry?.(sent);
          options.onProgress?.(files, bytes);
        }
      }
    }
    pack.finish();
  })()
    .catch((error: unknown) => pack.destroy(error instanceof Error ? error : new Error(String(error))))
    .finally(() => {
      opener.close();
      options.signal?.removeEventListener('abort', onAbort);
    });
  return pack.readable;
}

async function writeFile(
  pack: TarWriter,
  opener: WorkspaceOpener,
  entry: ManifestEntry,
  header: TarHeader,
  options: PackOptions,
  prefetched?: WholeRead,
): Promise<ManifestEntry | undefined> {
  if (prefetched !== undefined && prefetched.kind !== 'large') {
    if (prefetched.kind === 'skipped') {
      options.onSkipped?.(entry.path, prefetched.reason);
      return undefined;
    }
    return writeWhole(pack, entry, header, prefetched.content, prefetched.stat);
  }
  let fd: number;
  try {
    // No link followed in any component: a file or directory swapped for a symlink since the scan must not
    // smuggle the link's target in.
    fd = opener.openFile(entry.path);
  } catch (error) {
    options.onSkipped?.(entry.path, cannotOpen(error));
    return undefined;
  }
  try {
    const stat = await fstatAsync(fd);
    if (!stat.isFile()) {
      options.onSkipped?.(entry.path, 'no longer a regular file');
      return undefined;
    }
    const mode = stat.mode & 0o1777;
    if (stat.size <= WHOLE_FILE_LIMIT || isGitConfigPath(entry.path)) {
      return await writeWhole(pack, entry, header, await readFileAsync(fd), stat);
    }
    // Large file: the header promises fstat's size; a file that shrinks meanwhile is padded with zeros and
    // one that grows is cut, so the tar stays valid. The reported hash is of the bytes actually sent.
    const size = stat.size;
    const hash = createHash('sha256');
    pack.header({ ...header, type: 'file', mode, size });
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    let position = 0;
    while (position < size) {
      if (options.signal?.aborted || pack.destroyed) {
        return undefined;
      }
      const { bytesRead } = await readAsync(fd, buffer, 0, Math.min(buffer.length, size - position), position);
      const chunk = bytesRead === 0 ? Buffer.alloc(Math.min(buffer.length, size - position)) : Buffer.from(buffer.subarray(0, bytesRead));
      hash.update(chunk);
      position += chunk.length;
      await pack.body(chunk);
    }
    await pack.endBody(size);
    return fileEntry(entry.path, { mode, size, hash: hash.digest('hex'), mtimeMs: stat.mtimeMs }, entry);
  } finally {
    await closeAsync(fd);
  }
}

/** A small file read ahead: its bytes and fstat, or why it cannot be sent, or 'large' (it grew: stream it). */
type WholeRead = { kind: 'read'; content: Buffer; stat: { mode: number; mtimeMs: number } } | { kind: 'skipped'; reason: string } | { kind: 'large' };

/** Opens, checks and reads a file the way `writeFile` does (never through a symlink), for the read-ahead. */
async function readWhole(opener: WorkspaceOpener, entry: ManifestEntry): Promise<WholeRead> {
  if (entry.size <= SYNC_READ_LIMIT) {
    return readSmallSync(opener, entry);
  }
  let fd: number;
  try {
    fd = opener.openFile(entry.path);
  } catch (error) {
    return { kind: 'skipped', reason: cannotOpen(error) };
  }
  try {
    const stat = await fstatAsync(fd);
    if (!stat.isFile()) {
      return { kind: 'skipped', reason: 'no longer a regular file' };
    }
    if (stat.size > WHOLE_FILE_LIMIT && !isGitConfigPath(entry.path)) {
      return { kind: 'large' };
    }
    return { kind: 'read', content: await readFileAsync(fd), stat };
  } finally {
    await closeAsync(fd);
  }
}

/**
 * `readWhole` for a small file, with blocking calls: a promise FileHandle costs ~100 µs of main-thread time per
 * file (open, fstat, read, close, its finalizer), several times the syscalls themselves (bench/: packing a
 * 10k-file tree took ~2.8 s of CPU, over half of it there). A small file from the page cache reads in a few
 * µs, so the event loop is held only briefly; big files keep the asynchronous path.
 */
function readSmallSync(opener: WorkspaceOpener, entry: ManifestEntry): WholeRead {
  let fd: number;
  try {
    fd = opener.openFile(entry.path);
  } catch (error) {
    return { kind: 'skipped', reason: cannotOpen(error) };
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      return { kind: 'skipped', reason: 'no longer a regular file' };
    }
    if (stat.size > WHOLE_FILE_LIMIT && !isGitConfigPath(entry.path)) {
      return { kind: 'large' };
    }
    return { kind: 'read', content: readFileSync(fd), stat };
  } finally {
    closeSync(fd);
  }
}

/** Writes a file read whole (sanitized if it is a git config) and returns the entry as sent. */
async function writeWhole(
  pack: TarWriter,
  entry: ManifestEntry,
  header: TarHeader,
  raw: Buffer,
  stat: { mode: number; mtimeMs: number },
): Promise<ManifestEntry> {
  const mode = stat.mode & 0o1777;
  const content = isGitConfigPath(entry.path) ? Buffer.from(sanitizeGitConfig(raw.toString('utf8')), 'utf8') : raw;
  await pack.member({ ...header, type: 'file', mode, size: content.length }, content);
  return fileEntry(entry.path, { mode, size: content.length, hash: sha256(content), mtimeMs: stat.mtimeMs }, entry);
}

/** Runs a synchronous check; the reason it failed, or undefined. */
function attempt(check: () => void): string | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    return cannotOpen(error);
  }
}

/** `ELOOP`/`ENOTDIR`: a link where the scan saw a directory or file, in some component of the path. */
function cannotOpen(error: unknown): string {
  return `cannot open: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
}
