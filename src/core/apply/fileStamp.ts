import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import type { Stats } from 'node:fs';
import { SandboxError } from '../errors';
import { lstatOrUndefined } from '../workspace/pathGuard';

/** What identifies a file's content state without reading it; only the kernel sets ctime. */
export interface FileStamp {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** A file's content hash, and the stamp it carried while it was read (the same before and after). */
export interface StampedHash {
  hash: string;
  size: number;
  /** Hard links of the file. */
  links: number;
  stamp: FileStamp;
}

export function stampOf(stat: Stats): FileStamp {
  return { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs };
}

export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** Largest read at once; a smaller file is read with one buffer of its size. */
const READ_CHUNK_BYTES = 256 * 1024;

/**
 * Hashes the regular file at `absolute` without following a link there (`O_NOFOLLOW`). The stamp of the open
 * file (fstat) must still be the path's stamp (lstat) once it is read: otherwise the file was written or
 * replaced meanwhile and the hash proves nothing. Returns `'gone'` when nothing is there, `'not-a-file'` for a
 * link, directory or other type, `'changed'` when it changed while read.
 */
export async function hashStamped(absolute: string, signal?: AbortSignal): Promise<StampedHash | 'gone' | 'not-a-file' | 'changed'> {
  let handle: fs.FileHandle;
  try {
    // O_NONBLOCK: a fifo put at the path never blocks the open.
    handle = await fs.open(absolute, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'gone';
    if (code === 'ELOOP' || code === 'ENXIO') return 'not-a-file';
    throw error;
  }
  let before: Stats;
  const hash = createHash('sha256');
  let size = 0;
  try {
    before = await handle.stat();
    if (!before.isFile()) return 'not-a-file';
    // One more byte than the stamp's size: a read that fills it shows the file grew.
    const buffer = Buffer.allocUnsafe(Math.min(before.size + 1, READ_CHUNK_BYTES));
    for (;;) {
      if (signal?.aborted) throw new SandboxError('cancelled', 'Reading the workspace was cancelled.');
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, size);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
      // A short read of a regular file is its end (a file written meanwhile fails the stamp check below).
      if (bytesRead < buffer.length) break;
    }
  } finally {
    await handle.close();
  }
  const after = await lstatOrUndefined(absolute);
  if (after === undefined || size !== before.size || !sameStamp(stampOf(before), stampOf(after))) return 'changed';
  return { hash: hash.digest('hex'), size, links: after.nlink, stamp: stampOf(after) };
}
