// Builders for the core's data shapes, shared by every tier's tests: manifest entries, manifests, change entries and
// change sets. Values are the plainest valid ones; a test states only what it is about.
import type { ChangeEntry, ChangeSet } from '../../src/shared/protocol';
import type { Manifest, ManifestEntry } from '../../src/core/workspace/manifest';
import { sha256 } from '../../src/core/util/hash';

/** A regular file's manifest entry, its size and hash taken from `content`. */
export function file(path: string, content: string | Buffer, mode = 0o644): ManifestEntry {
  return { path, type: 'file', mode, size: Buffer.byteLength(content), hash: sha256(content) };
}

export function dir(path: string, mode = 0o755): ManifestEntry {
  return { path, type: 'directory', mode, size: 0 };
}

export function link(path: string, linkTarget: string): ManifestEntry {
  return { path, type: 'symlink', mode: 0o777, size: linkTarget.length, linkTarget };
}

export function manifest(...entries: ManifestEntry[]): Manifest {
  return new Map(entries.map((e) => [e.path, e]));
}

/** A text file's change entry with no flags. */
export function change(path: string, kind: ChangeEntry['kind'] = 'modified', extra: Partial<ChangeEntry> = {}): ChangeEntry {
  return { path, kind, type: 'file', binary: false, flags: [], ...extra };
}

export function changeSet(changes: ChangeEntry[], extra: Partial<ChangeSet> = {}): ChangeSet {
  return { folder: '/w', changes, refused: [], ignoredCount: 0, ...extra };
}
