import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import type { ChangeSet } from '../../shared/protocol';
import { BOX_GID, BOX_UID } from '../box/boxConfig';
import type { BoxTree } from '../changes/boxTree';
import type { PendingReview, ReviewStore } from '../review/reviewStore';
import { errorText } from '../util/errorText';
import type { Manifest, ManifestEntry } from '../workspace/manifest';
import { ancestorsOf } from '../workspace/pathGuard';

/**
 * A box's pending review beyond the box: what of the session's state it is made of (`pendingReviewOf`), its copy
 * on disk (`ReviewPersistence`), and how a new box gets it back (`restorePlan`, `restoreArchive`). The session
 * decides when; this file holds the what, and is unit-tested without a box.
 */

/** What the session holds of its last collect that a review is made of. */
export interface CollectedForReview {
  changeSet: ChangeSet;
  /** The box tree of that collect (all entries; contents of changed files only). */
  tree: BoxTree;
  /** Baseline content of changed files, where it was kept. */
  baseContents: Map<string, Buffer>;
}

/** The pending review as it must survive a reload: change set, baseline and box entries, contents of changed paths (and rename sources). */
export function pendingReviewOf(collected: CollectedForReview, baseline: Manifest): PendingReview {
  const { changeSet, tree, baseContents } = collected;
  const review: PendingReview = { changeSet, baseline: new Map(), boxEntries: new Map(), contents: new Map(), baseContents: new Map() };
  for (const change of changeSet.changes) {
    for (const p of change.fromPath ? [change.path, change.fromPath] : [change.path]) {
      const base = baseline.get(p);
      if (base) review.baseline.set(p, base);
      const boxEntry = tree.entries.get(p);
      if (boxEntry) review.boxEntries.set(p, boxEntry);
      const content = tree.contents.get(p);
      if (content) review.contents.set(p, content);
      const baseContent = baseContents.get(p);
      if (baseContent) review.baseContents.set(p, baseContent);
    }
  }
  return review;
}

/** A folder's pending review on disk: saved while it has anything pending, cleared once it has not. */
export class ReviewPersistence {
  constructor(
    private readonly store: ReviewStore | undefined,
    private readonly folder: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Never throws: the review itself is intact in memory; only its copy for a later reload could not be written. */
  async save(review: PendingReview): Promise<void> {
    if (!this.store) return;
    try {
      if (review.changeSet.changes.length === 0 && review.changeSet.refused.length === 0) {
        await this.store.clear(this.folder);
      } else {
        await this.store.save(this.folder, review);
      }
    } catch (error) {
      this.log(`[session] could not persist the pending review of ${this.folder}: ${errorText(error)}`);
    }
  }
}

/** What putting a review back into a freshly mirrored box takes. */
export interface RestorePlan {
  /** Paths to remove in the box (deletions, rename sources). */
  remove: string[];
  /** Entries to write into the box, files with their content. */
  write: { entry: ManifestEntry; content?: Buffer }[];
  /** The review's baseline entries of every changed path; `undefined`: absent from that baseline. */
  baseline: Map<string, ManifestEntry | undefined>;
  /** Changed files whose box content was not kept (and the workspace no longer has): they cannot come back. */
  lost: string[];
}

/**
 * Sorts a persisted review into removals and writes for the new box. A file's content comes from the review,
 * or from the workspace when it was not kept and the workspace file still has the box's hash (a mode-only change).
 */
export async function restorePlan(
  review: PendingReview,
  readWorkspaceFile: (relPath: string, hash: string | undefined) => Promise<Buffer | undefined>,
): Promise<RestorePlan> {
  const plan: RestorePlan = { remove: [], write: [], baseline: new Map(), lost: [] };
  for (const change of review.changeSet.changes) {
    if (change.fromPath) plan.remove.push(change.fromPath);
    const boxEntry = review.boxEntries.get(change.path);
    if (change.kind === 'deleted' || !boxEntry) {
      plan.remove.push(change.path);
    } else {
      const content =
        boxEntry.type === 'file' ? (review.contents.get(change.path) ?? (await readWorkspaceFile(change.path, boxEntry.hash))) : undefined;
      if (boxEntry.type === 'file' && !content) {
        plan.lost.push(change.path);
        continue;
      }
      plan.write.push({ entry: boxEntry, content });
    }
    for (const p of change.fromPath ? [change.path, change.fromPath] : [change.path]) {
      plan.baseline.set(p, review.baseline.get(p));
    }
  }
  return plan;
}

/**
 * The archive that writes a restore plan's entries into /workspace, owned by the box user, with every parent
 * directory in the mode the box (or else the baseline) had, 755 when neither knew it.
 */
export function restoreArchive(write: RestorePlan['write'], dirMode: (dir: string) => number | undefined): Readable {
  const pack = tarStream.pack();
  const dirs = new Set<string>();
  for (const { entry, content } of write) {
    for (const dir of ancestorsOf(entry.path)) {
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      pack.entry({ name: dir, type: 'directory', mode: (dirMode(dir) ?? 0o755) & 0o777, uid: BOX_UID, gid: BOX_GID });
    }
    const header = { name: entry.path, mode: entry.mode & 0o777, uid: BOX_UID, gid: BOX_GID };
    if (entry.type === 'file') pack.entry({ ...header, type: 'file', size: content!.length }, content!);
    else if (entry.type === 'symlink') pack.entry({ ...header, type: 'symlink', linkname: entry.linkTarget ?? '' });
    else pack.entry({ ...header, type: 'directory' });
  }
  pack.finalize();
  // tar-stream's pack is a streamx stream; the archive API takes a Node stream.
  return Readable.from(pack, { objectMode: false });
}
