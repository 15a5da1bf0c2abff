import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ChangeSet } from '../../shared/protocol';
import type { Manifest, ManifestEntry } from '../workspace/manifest';
import { sha256 } from '../util/hash';

/**
 * What is needed to review and apply a box's changes without the box: the change set, the baseline and box
 * entries of every changed path, and the box's content of changed files. It is what a window reload or an
 * engine server restart must not lose.
 */
export interface PendingReview {
  changeSet: ChangeSet;
  /** Baseline entries of changed paths (and rename sources); a path absent here was absent in the baseline. */
  baseline: Manifest;
  /** The box's entries of changed paths. */
  boxEntries: Manifest;
  /** The box's content of changed files, by path. */
  contents: Map<string, Buffer>;
  /** Baseline content of changed files, where it was kept (conflicts show it). */
  baseContents: Map<string, Buffer>;
}

interface StoredReview {
  version: 1;
  changeSet: ChangeSet;
  baseline: ManifestEntry[];
  boxEntries: ManifestEntry[];
  /** Path → SHA-256 of its content blob. */
  contents: Record<string, string>;
  /** Path → SHA-256 of its baseline content blob. */
  baseContents: Record<string, string>;
}

/** The name of a folder's directory under a storage's `reviews/` (the same in every storage that holds one). */
export function reviewDirName(folder: string): string {
  return sha256(folder).slice(0, 32);
}

/**
 * Persists pending reviews, one folder each, under a storage directory (the extension's workspace storage):
 * `<dir>/<sha256(folder)>/review.json` plus content blobs named by their SHA-256. Every write goes to a temp
 * file and is renamed into place, so a crash leaves the previous review, never a torn one.
 */
export class ReviewStore {
  constructor(private readonly dir: string) {}

  private folderDir(folder: string): string {
    return path.join(this.dir, reviewDirName(folder));
  }

  async save(folder: string, review: PendingReview): Promise<void> {
    const dir = this.folderDir(folder);
    const blobs = path.join(dir, 'blobs');
    await fs.mkdir(blobs, { recursive: true });
    const storeBlobs = async (from: Map<string, Buffer>): Promise<Record<string, string>> => {
      const hashes: Record<string, string> = {};
      for (const [relPath, content] of from) {
        const hash = sha256(content);
        hashes[relPath] = hash;
        const blob = path.join(blobs, hash);
        if (!(await exists(blob))) await writeAtomically(blob, content);
      }
      return hashes;
    };
    const contents = await storeBlobs(review.contents);
    const baseContents = await storeBlobs(review.baseContents);
    const stored: StoredReview = {
      version: 1,
      changeSet: review.changeSet,
      baseline: [...review.baseline.values()],
      boxEntries: [...review.boxEntries.values()],
      contents,
      baseContents,
    };
    await writeAtomically(path.join(dir, 'review.json'), Buffer.from(JSON.stringify(stored)));
    // Blobs no longer referenced (applied or rejected changes) are removed.
    const keep = new Set([...Object.values(contents), ...Object.values(baseContents)]);
    for (const name of await fs.readdir(blobs)) {
      if (!keep.has(name)) await fs.rm(path.join(blobs, name), { force: true });
    }
  }

  /** The stored review of a folder; undefined when there is none or it cannot be read (never throws). */
  async load(folder: string): Promise<PendingReview | undefined> {
    const dir = this.folderDir(folder);
    let stored: StoredReview;
    try {
      stored = JSON.parse(await fs.readFile(path.join(dir, 'review.json'), 'utf8')) as StoredReview;
    } catch {
      return undefined;
    }
    if (stored.version !== 1 || stored.changeSet?.folder !== folder) return undefined;
    const loadBlobs = async (hashes: Record<string, string> = {}): Promise<Map<string, Buffer>> => {
      const loaded = new Map<string, Buffer>();
      for (const [relPath, hash] of Object.entries(hashes)) {
        try {
          const content = await fs.readFile(path.join(dir, 'blobs', hash));
          if (sha256(content) === hash) loaded.set(relPath, content);
        } catch {
          // A missing blob leaves that one file unreadable; the rest of the review stays usable.
        }
      }
      return loaded;
    };
    const contents = await loadBlobs(stored.contents);
    const baseContents = await loadBlobs(stored.baseContents);
    return {
      changeSet: stored.changeSet,
      baseline: new Map(stored.baseline.map((e) => [e.path, e])),
      boxEntries: new Map(stored.boxEntries.map((e) => [e.path, e])),
      contents,
      baseContents,
    };
  }

  async clear(folder: string): Promise<void> {
    await fs.rm(this.folderDir(folder), { recursive: true, force: true });
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

export async function writeAtomically(file: string, data: Buffer): Promise<void> {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await fs.open(temp, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, file);
}
