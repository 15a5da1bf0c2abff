import type { EntryType } from '../../shared/protocol';

/** One workspace entry as sent to the box (baseline) or found in the box or on disk. */
export interface ManifestEntry {
  /** POSIX, workspace-relative, no leading `./`, no trailing `/`. */
  path: string;
  type: EntryType;
  /** Permission bits (`mode & 0o7777`). */
  mode: number;
  /** Bytes for files; 0 for directories, the target's length for symlinks. */
  size: number;
  /** SHA-256 (hex) of the content; files only. */
  hash?: string;
  /** Symlinks only: the target exactly as stored in the link. */
  linkTarget?: string;
  /** Modification time in ms since the epoch, when known. */
  mtimeMs?: number;
  /**
   * Status-change time in ms and inode number from the workspace scan, when known: with size and mtime the
   * stamp a rescan trusts to reuse the hash (git's index does the same). `touch -r`, `cp -p` or `rsync -t`
   * restore mtime, but not ctime, and a file replaced by rename has another inode.
   */
  ctimeMs?: number;
  ino?: number;
  /** Hard links to the file on disk, where an apply plan looked (the files it touches). */
  links?: number;
}

/**
 * A regular file's entry, always built by this one literal so that every file entry of a large tree shares one
 * hidden class. A spread (`{ ...entry, hash }`) in a hot loop gives each object a map of its own once V8's
 * inline cache gives up: on the 50k-file tree that was 50k maps, descriptor and property arrays (~15 MiB of
 * the server's heap). Optional stamps are left out when unknown, as the spread did.
 */
export function fileEntry(
  path: string,
  content: { mode: number; size: number; hash?: string; mtimeMs?: number },
  stamp: { ctimeMs?: number; ino?: number } = {},
): ManifestEntry {
  const { mode, size, hash, mtimeMs } = content;
  const { ctimeMs, ino } = stamp;
  if (mtimeMs !== undefined && ctimeMs !== undefined && ino !== undefined) {
    // The two shapes of a scan: with the hash, and listed only (lstat, before the mirror reads the file).
    return hash !== undefined
      ? { path, type: 'file', mode, size, hash, mtimeMs, ctimeMs, ino }
      : { path, type: 'file', mode, size, mtimeMs, ctimeMs, ino };
  }
  const entry: ManifestEntry = { path, type: 'file', mode: content.mode, size: content.size };
  if (content.hash !== undefined) entry.hash = content.hash;
  if (content.mtimeMs !== undefined) entry.mtimeMs = content.mtimeMs;
  if (stamp.ctimeMs !== undefined) entry.ctimeMs = stamp.ctimeMs;
  if (stamp.ino !== undefined) entry.ino = stamp.ino;
  return entry;
}

/** Entries by path. */
export type Manifest = Map<string, ManifestEntry>;

/** Builds a manifest from entries (a later entry for the same path wins). */
export function manifestOf(entries: Iterable<ManifestEntry>): Manifest {
  const manifest: Manifest = new Map();
  for (const entry of entries) {
    manifest.set(entry.path, entry);
  }
  return manifest;
}

/** Entries sorted by path; a directory always precedes what it holds. */
export function sortedEntries(manifest: Manifest | Iterable<ManifestEntry>): ManifestEntry[] {
  const entries = manifest instanceof Map ? [...manifest.values()] : [...manifest];
  return entries.sort((a, b) => comparePaths(a.path, b.path));
}

/**
 * Orders paths segment by segment, so `a/b` sorts right after `a` and before `a-b` would break that.
 * (Plain string order puts `a-b` between `a` and `a/b`, which is still parent-first, but segment order keeps a
 * directory's content contiguous.)
 */
export function comparePaths(a: string, b: string): number {
  const as = a.split('/');
  const bs = b.split('/');
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    if (as[i] !== bs[i]) {
      return as[i] < bs[i] ? -1 : 1;
    }
  }
  return as.length - bs.length;
}

/** True when two entries describe the same state (type, permission bits, content or link target). */
export function sameState(a: ManifestEntry | undefined, b: ManifestEntry | undefined): boolean {
  if (a === undefined || b === undefined) {
    return a === b;
  }
  if (a.type !== b.type) {
    return false;
  }
  // A symlink's own mode means nothing on Linux and differs by platform; only its target counts.
  if (a.type === 'symlink') {
    return a.linkTarget === b.linkTarget;
  }
  return (a.mode & 0o7777) === (b.mode & 0o7777) && (a.type !== 'file' || a.hash === b.hash);
}
