import type { ChangeEntry, ChangeSet, RefusedEntry } from '../../shared/protocol';
import type { Manifest, ManifestEntry } from '../workspace/manifest';
import { ancestorsOf, touchesGitDirectory } from '../workspace/pathGuard';
import { isBinary } from './binary';
import { flagsFor } from './flags';

/** What creating a file's parents makes (umask 022): an added directory with this mode needs no entry of its own. */
const DEFAULT_DIRECTORY_MODE = 0o755;

/** SHA-256 of the empty file: equal hashes prove nothing about a rename. */
const EMPTY_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** The parsed box tree that `computeChangeSet` compares with the baseline (see `readBoxTree`). */
export interface BoxTreeSnapshot {
  entries: Manifest;
  contents: Map<string, Buffer>;
  refused: RefusedEntry[];
  ignored: string[];
}

/** Options for `computeChangeSet`. */
export interface ChangeSetOptions {
  /**
   * Baseline content of a path, when the caller has it: lets `package.json` be flagged only when its
   * `scripts` changed (without it, every modified `package.json` is flagged) and marks deleted files binary.
   */
  baseContent?(relPath: string): Buffer | undefined;
}

/**
 * Compares the box's tree with the baseline. Rules, so that review and apply agree:
 * - a path only in the box is `added`, only in the baseline `deleted`, in both with other content or link
 *   target `modified`, with only other permission bits `mode`;
 * - a path whose type changed (file ↔ directory ↔ symlink) is one `modified` entry carrying the new `type`; the
 *   old type is the baseline's (apply deletes the old entry, then creates the new one);
 * - a deleted file and an added file with the same non-empty hash become one `renamed` entry (same base name
 *   preferred when several match), unless either is in `.git` (never applied: each half stays on its own);
 * - an added directory is reported only when no change below it is listed (creating what is below creates it)
 *   or when its mode is not the default 755 (which creating what is below would give it);
 *   a deleted directory is always reported (apply removes it after its content, and only if it is then empty);
 *   permission changes of directories are always reported;
 * - baseline paths at or below a refused or ignored path are not proposed as deleted: the box holds
 *   something there that is not proposed, not nothing.
 */
export function computeChangeSet(folder: string, baseline: Manifest, box: BoxTreeSnapshot, options: ChangeSetOptions = {}): ChangeSet {
  const shadowing = new Set<string>([...box.refused.map((entry) => entry.path), ...box.ignored]);
  const isShadowed = (relPath: string): boolean =>
    shadowing.size > 0 && (shadowing.has(relPath) || ancestorsOf(relPath).some((ancestor) => shadowing.has(ancestor)));

  const holdsShadowed = (directory: string): boolean => [...shadowing].some((relPath) => relPath.startsWith(`${directory}/`));

  const changes = new Map<string, Omit<ChangeEntry, 'binary' | 'flags'>>();
  for (const entry of box.entries.values()) {
    const base = baseline.get(entry.path);
    if (base === undefined) {
      changes.set(entry.path, { ...describeBox(entry), kind: 'added' });
      continue;
    }
    const kind = compare(base, entry);
    if (kind !== undefined) {
      changes.set(entry.path, { ...describeBox(entry), ...describeBase(base), kind });
    }
  }
  for (const base of baseline.values()) {
    if (!box.entries.has(base.path) && !isShadowed(base.path) && !(base.type === 'directory' && holdsShadowed(base.path))) {
      changes.set(base.path, { path: base.path, kind: 'deleted', type: base.type, ...describeBase(base) });
    }
  }

  pairRenames(changes);
  dropImpliedDirectories(changes);

  const result: ChangeEntry[] = [];
  for (const change of changes.values()) {
    const boxContent = box.contents.get(change.path);
    const baseContent = change.kind === 'added' ? undefined : options.baseContent?.(change.fromPath ?? change.path);
    const shown = change.kind === 'deleted' ? baseContent : boxContent;
    result.push({
      ...change,
      binary: change.type === 'file' && shown !== undefined ? isBinary(shown) : false,
      flags: flagsFor(change, { base: baseContent, box: boxContent }),
    });
  }
  result.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { folder, changes: result, refused: [...box.refused], ignoredCount: box.ignored.length };
}

function compare(base: ManifestEntry, entry: ManifestEntry): ChangeEntry['kind'] | undefined {
  if (base.type !== entry.type) {
    return 'modified';
  }
  switch (entry.type) {
    case 'file':
      if (base.hash !== entry.hash) {
        return 'modified';
      }
      return (base.mode & 0o7777) !== (entry.mode & 0o7777) ? 'mode' : undefined;
    case 'symlink':
      // A symlink's own permission bits mean nothing on Linux; only the target counts.
      return base.linkTarget !== entry.linkTarget ? 'modified' : undefined;
    default:
      return (base.mode & 0o7777) !== (entry.mode & 0o7777) ? 'mode' : undefined;
  }
}

function describeBox(entry: ManifestEntry): Pick<ChangeEntry, 'path' | 'type' | 'mode' | 'size' | 'hash' | 'linkTarget'> {
  return {
    path: entry.path,
    type: entry.type,
    mode: entry.mode & 0o7777,
    ...(entry.type === 'directory' ? {} : { size: entry.size }),
    ...(entry.type === 'file' ? { hash: entry.hash } : {}),
    ...(entry.type === 'symlink' ? { linkTarget: entry.linkTarget } : {}),
  };
}

function describeBase(base: ManifestEntry): Pick<ChangeEntry, 'baseMode' | 'baseHash'> {
  return { baseMode: base.mode & 0o7777, ...(base.type === 'file' && base.hash !== undefined ? { baseHash: base.hash } : {}) };
}

function pairRenames(changes: Map<string, Omit<ChangeEntry, 'binary' | 'flags'>>): void {
  const deletedByHash = new Map<string, string[]>();
  for (const change of changes.values()) {
    // Never across `.git` (any spelling): apply skips every change there, so a rename into or out of it would
    // take its other half — a deletion the developer wants, or a file outside `.git` — down with it for good.
    if (
      change.kind === 'deleted' &&
      change.type === 'file' &&
      change.baseHash !== undefined &&
      change.baseHash !== EMPTY_HASH &&
      !touchesGitDirectory(change.path)
    ) {
      deletedByHash.set(change.baseHash, [...(deletedByHash.get(change.baseHash) ?? []), change.path]);
    }
  }
  if (deletedByHash.size === 0) {
    return;
  }
  for (const added of [...changes.values()].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    if (added.kind !== 'added' || added.type !== 'file' || added.hash === undefined || touchesGitDirectory(added.path)) {
      continue;
    }
    const candidates = deletedByHash.get(added.hash);
    if (candidates === undefined || candidates.length === 0) {
      continue;
    }
    const name = baseName(added.path);
    const index = Math.max(
      0,
      candidates.findIndex((candidate) => baseName(candidate) === name),
    );
    const [fromPath] = candidates.splice(index, 1);
    const deleted = changes.get(fromPath)!;
    changes.delete(fromPath);
    changes.set(added.path, { ...added, kind: 'renamed', fromPath, baseMode: deleted.baseMode, baseHash: deleted.baseHash });
  }
}

function dropImpliedDirectories(changes: Map<string, Omit<ChangeEntry, 'binary' | 'flags'>>): void {
  const withListedDescendants = new Set<string>();
  for (const change of changes.values()) {
    for (const listed of change.fromPath === undefined ? [change.path] : [change.path, change.fromPath]) {
      for (const ancestor of ancestorsOf(listed)) {
        withListedDescendants.add(ancestor);
      }
    }
  }
  for (const change of [...changes.values()]) {
    // Creating what is below makes the directory with the default 755; any other mode (700, say) must be carried.
    if (
      change.type === 'directory' &&
      change.kind === 'added' &&
      withListedDescendants.has(change.path) &&
      (change.mode ?? DEFAULT_DIRECTORY_MODE) === DEFAULT_DIRECTORY_MODE
    ) {
      changes.delete(change.path);
    }
  }
}

function baseName(relPath: string): string {
  return relPath.slice(relPath.lastIndexOf('/') + 1);
}
