import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import { SandboxError } from '../errors';
import type { Manifest, ManifestEntry } from './manifest';
import { symlinkStaysInside } from './pathGuard';
import type { SyncFilter } from './syncFilter';

/** Why the scan left an entry out (beyond the filter, which is silent). */
export type ScanSkipReason = 'symlink-outside' | 'special-file' | 'vanished' | 'unreadable';

/** Options for `scanWorkspace`. */
export interface ScanOptions {
  /** An earlier scan: a file whose size and mtime are unchanged keeps its hash without being read. */
  previous?: Manifest;
  signal?: AbortSignal;
  /** Called as files are hashed (or reused), with running totals. */
  onProgress?(files: number, bytes: number): void;
  /** Called for entries left out for a reason other than the filter. */
  onSkipped?(relPath: string, reason: ScanSkipReason): void;
  /** Parallel lstat/read operations (default 16). */
  concurrency?: number;
  /**
   * `false`: files are listed with lstat only and get no `hash` (for a scan whose files are read anyway right
   * after, e.g. the first mirror, where `packWorkspace` reports the hash of what it sent). Default true.
   */
  hashFiles?: boolean;
}

/**
 * Walks `root` with lstat, never following symlinks, and returns every kept entry (directories included, so
 * empty ones round-trip; `.git/` included). Excluded directories are not descended into. Sockets, fifos and
 * devices are skipped. A symlink is kept only if it is relative and, resolved through the scanned tree the way
 * the box's kernel would, stays inside the root: nothing in the box may point at host paths.
 */
export async function scanWorkspace(root: string, filter: SyncFilter, options: ScanOptions = {}): Promise<Manifest> {
  const manifest: Manifest = new Map();
  const concurrency = Math.max(1, options.concurrency ?? 16);
  const queue: string[] = [];
  let files = 0;
  let bytes = 0;

  const throwIfAborted = (): void => {
    if (options.signal?.aborted) {
      throw new SandboxError('cancelled', 'Scanning the workspace was cancelled.');
    }
  };

  const visitDirectory = async (relDirectory: string): Promise<void> => {
    let children: import('node:fs').Dirent[];
    try {
      children = await fs.readdir(toAbsolute(root, relDirectory), { withFileTypes: true });
    } catch (error) {
      if (relDirectory === '') {
        throw new SandboxError('not-found', `Cannot read the workspace folder ${root}: ${(error as Error).message}.`, { cause: error });
      }
      options.onSkipped?.(relDirectory, isVanished(error) ? 'vanished' : 'unreadable');
      manifest.delete(relDirectory);
      return;
    }
    for (const child of children) {
      const relPath = relDirectory === '' ? child.name : `${relDirectory}/${child.name}`;
      // The dirent type comes from the directory itself (d_type), so it never follows a symlink.
      if (!filter.isExcluded(relPath, child.isDirectory())) {
        queue.push(relPath);
      }
    }
  };

  const visitEntry = async (relPath: string): Promise<void> => {
    const absolute = toAbsolute(root, relPath);
    let stat: Stats;
    try {
      stat = await fs.lstat(absolute);
    } catch (error) {
      options.onSkipped?.(relPath, isVanished(error) ? 'vanished' : 'unreadable');
      return;
    }
    const mode = stat.mode & 0o7777;
    if (stat.isDirectory()) {
      if (filter.isExcluded(relPath, true)) {
        return;
      }
      manifest.set(relPath, { path: relPath, type: 'directory', mode, size: 0, mtimeMs: stat.mtimeMs });
      await visitDirectory(relPath);
    } else if (stat.isSymbolicLink()) {
      try {
        const linkTarget = await fs.readlink(absolute);
        manifest.set(relPath, { path: relPath, type: 'symlink', mode, size: Buffer.byteLength(linkTarget), linkTarget, mtimeMs: stat.mtimeMs });
      } catch (error) {
        options.onSkipped?.(relPath, isVanished(error) ? 'vanished' : 'unreadable');
      }
    } else if (stat.isFile()) {
      const previous = options.previous?.get(relPath);
      let hash: string | undefined;
      let size = stat.size;
      if (options.hashFiles === false) {
        hash = undefined;
      } else if (previous?.type === 'file' && previous.hash !== undefined && previous.size === stat.size && previous.mtimeMs === stat.mtimeMs) {
        hash = previous.hash;
      } else {
        try {
          ({ hash, size } = await hashFile(absolute, options.signal));
        } catch (error) {
          if (SandboxError.is(error)) {
            throw error;
          }
          options.onSkipped?.(relPath, isVanished(error) ? 'vanished' : 'unreadable');
          return;
        }
      }
      manifest.set(relPath, hash === undefined ? { path: relPath, type: 'file', mode, size, mtimeMs: stat.mtimeMs } : { path: relPath, type: 'file', mode, size, hash, mtimeMs: stat.mtimeMs });
      files += 1;
      bytes += size;
      options.onProgress?.(files, bytes);
    } else {
      options.onSkipped?.(relPath, 'special-file');
    }
  };

  throwIfAborted();
  await visitDirectory('');
  let failure: unknown;
  let active = 0;
  let wakeUp: (() => void)[] = [];
  const worker = async (): Promise<void> => {
    while (failure === undefined) {
      const next = queue.pop();
      if (next === undefined) {
        // Another worker may still be listing a directory; wait for it to finish rather than quitting early.
        if (active === 0) {
          return;
        }
        await new Promise<void>((resolve) => wakeUp.push(resolve));
        continue;
      }
      active += 1;
      try {
        throwIfAborted();
        await visitEntry(next);
      } catch (error) {
        failure ??= error;
      } finally {
        active -= 1;
        const waiting = wakeUp;
        wakeUp = [];
        waiting.forEach((resolve) => resolve());
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure !== undefined) {
    throw failure;
  }
  dropEscapingSymlinks(manifest, options.onSkipped);
  return new Map([...manifest.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Removes symlinks that leave the tree. Removing one can change how another resolves (a link through it now
 * resolves lexically), so this repeats until nothing changes.
 */
export function dropEscapingSymlinks(manifest: Manifest, onSkipped?: (relPath: string, reason: ScanSkipReason) => void): void {
  const lookup = (relPath: string): ManifestEntry | undefined => manifest.get(relPath);
  for (let changed = true; changed; ) {
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
export function sha256(content: Buffer | string): string {
  return createHash('sha256').update(content).digest('hex');
}

function toAbsolute(root: string, relPath: string): string {
  return relPath === '' ? root : path.join(root, ...relPath.split('/'));
}

function isVanished(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}
