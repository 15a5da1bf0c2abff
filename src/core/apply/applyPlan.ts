import type { ApplyOperation, ApplyPlan, ChangeEntry } from '../../shared/protocol';
import type { Manifest, ManifestEntry } from '../workspace/manifest';
import { sameState } from '../workspace/manifest';
import { ancestorsOf, foldHostPath, symlinkStaysInside, touchesGitDirectory, type TreeLookup } from '../workspace/pathGuard';

/** Input of `planApply`. */
export interface ApplyPlanInput {
  /** What the box was given. */
  baseline: Manifest;
  /** Changes from the last collect. */
  changes: ChangeEntry[];
  /** The workspace now: must hold every path of `changes` (and `fromPath` of renames) that exists on disk. */
  current: Manifest;
  /** Paths (or rename sources) to apply; all changes when omitted. */
  selected?: string[];
  /**
   * Paths on disk the workspace scan left out, with why: symlinks that lead outside the folder, fifos,
   * sockets, devices, unreadable entries. Nothing is written at or below them, by anyone's apply.
   */
  obstacles?: ReadonlyMap<string, string>;
  /**
   * The folder's file system ignores case (macOS, Windows): a new name that folds (`foldHostPath`: case,
   * NFC/NFD, NTFS trailing dots and spaces, streams) to an existing entry, or to another new name, would land
   * on that entry, so it is a conflict instead.
   */
  caseInsensitive?: boolean;
  /** Flagged paths approved deliberately. `.git` paths (in any spelling a host disk folds to `.git`) are never applied, approved or not. */
  approveFlagged?: string[];
}

/**
 * Plans applying changes, purely. A change is a conflict when the workspace's entry at any path it touches
 * differs from the baseline (content, type, permission bits, link target, or existence). Order of the
 * operations, so that each one finds what it needs:
 * 1. deletes of files and symlinks (incl. the old entry of a type change);
 * 2. mkdirs, parents first (explicit ones and `implied` parents of what is created);
 * 3. renames (their source is still there, their target's parent exists), then the mkdirs at or below a
 *    renamed file's old path (free only now);
 * 4. deletes of directories, deepest first (their content is gone by then);
 * 5. writes and symlinks (a path freed by a rename or delete is free by then);
 * 6. chmods, deepest first (a directory made read-only last).
 */
export function planApply(input: ApplyPlanInput): ApplyPlan {
  const selected = input.selected === undefined ? undefined : new Set(input.selected);
  const approved = new Set(input.approveFlagged ?? []);
  const conflicts: ApplyPlan['conflicts'] = [];
  const skipped: ApplyPlan['skipped'] = [];
  const phases: ApplyOperation[][] = [[], [], [], [], [], []];
  const created: string[] = [];
  // The workspace as a new link would be resolved on the host: what the scan left out as an obstacle (a link
  // out of the folder, a fifo) counts as leading outside.
  const hostLookup: TreeLookup = (p) => (input.obstacles?.has(p) ? { type: 'symlink', linkTarget: '/' } : input.current.get(p));

  // Case-folded names already on disk, and of the new names planned so far (case-insensitive disks only).
  const folded = new Map<string, string>();
  if (input.caseInsensitive) {
    for (const p of input.current.keys()) folded.set(foldHostPath(p), p);
  }
  for (const change of [...input.changes].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const paths = change.fromPath === undefined ? [change.path] : [change.fromPath, change.path];
    if (selected !== undefined && !paths.some((p) => selected.has(p))) {
      continue;
    }
    // Also `.GIT/…`, `.git./…` and the like: on a case-insensitive or NTFS/HFS+ disk they are `.git/…`.
    if (paths.some(touchesGitDirectory)) {
      skipped.push({ path: change.path, reason: 'git-internal: changes under .git/ are never applied' });
      continue;
    }
    const flags = change.flags.filter((flag) => flag !== 'git-internal');
    if (flags.length > 0 && !paths.some((p) => approved.has(p))) {
      skipped.push({ path: change.path, reason: `flagged (${flags.join(', ')}): needs a deliberate approval` });
      continue;
    }
    if (change.type === 'symlink' && change.kind !== 'deleted' && !symlinkStaysInside(change.path, change.linkTarget ?? '', hostLookup)) {
      skipped.push({
        path: change.path,
        reason: `symlink-outside: "${change.path}" -> ${JSON.stringify(change.linkTarget ?? '')} resolves outside the workspace through the links on this machine; symlinks that point outside are refused`,
      });
      continue;
    }
    const conflict =
      paths.map((p) => obstacleAt(p, input)).find((reason) => reason !== undefined) ??
      paths.map((p) => conflictAt(p, input.baseline.get(p), input.current.get(p))).find((reason) => reason !== undefined);
    if (conflict !== undefined) {
      conflicts.push({ path: change.path, reason: conflict });
      continue;
    }
    const hardLinked = changesModeOf(change) ? input.current.get(change.fromPath ?? change.path) : undefined;
    if (hardLinked?.links !== undefined && hardLinked.links > 1) {
      conflicts.push({
        path: change.path,
        reason: `"${hardLinked.path}" has ${hardLinked.links} hard links in the workspace: changing its mode would change the other names' file too (maybe outside the workspace), so it is left as it is`,
      });
      continue;
    }
    if (input.caseInsensitive && change.kind !== 'deleted' && change.kind !== 'mode') {
      const twin = folded.get(foldHostPath(change.path));
      if (twin !== undefined && twin !== change.path) {
        conflicts.push({
          path: change.path,
          reason: `"${change.path}" differs only by case, Unicode normalisation or trailing dots from "${twin}", and this folder's disk folds such names: it would overwrite it`,
        });
        continue;
      }
      folded.set(foldHostPath(change.path), change.path);
    }

    const base = input.baseline.get(change.fromPath ?? change.path);
    // What the file on disk must still hold when it is overwritten, deleted, moved or chmodded.
    const baseHash = base?.type === 'file' && base.hash !== undefined ? { baseHash: base.hash } : {};
    const removeOld = (): void => {
      if (base !== undefined) {
        phases[base.type === 'directory' ? 3 : 0].push({ kind: 'delete', path: change.path, type: base.type, ...baseHash });
      }
    };
    const createNew = (): void => {
      created.push(change.path);
      switch (change.type) {
        case 'directory':
          // A mode that keeps its owner out (500, 000) is set last, once what goes below has been written.
          if (change.mode !== undefined && (change.mode & 0o700) !== 0o700) {
            phases[1].push({ kind: 'mkdir', path: change.path, mode: change.mode | 0o700 });
            phases[5].push({ kind: 'chmod', path: change.path, mode: change.mode });
          } else {
            phases[1].push({ kind: 'mkdir', path: change.path, mode: change.mode });
          }
          break;
        case 'symlink':
          phases[4].push({ kind: 'symlink', path: change.path, linkTarget: change.linkTarget ?? '' });
          break;
        default:
          phases[4].push({ kind: 'write', path: change.path, mode: change.mode, hash: change.hash, ...(base?.type === 'file' ? baseHash : {}) });
      }
    };
    switch (change.kind) {
      case 'added':
        createNew();
        break;
      case 'deleted':
        removeOld();
        break;
      case 'renamed':
        created.push(change.path);
        phases[2].push({ kind: 'rename', path: change.path, fromPath: change.fromPath, mode: change.mode, hash: change.hash, ...baseHash });
        break;
      case 'mode':
        phases[5].push({ kind: 'chmod', path: change.path, mode: change.mode, ...baseHash });
        break;
      case 'modified':
        if (base !== undefined && base.type !== change.type) {
          removeOld();
          createNew();
        } else if (change.type === 'directory') {
          phases[5].push({ kind: 'chmod', path: change.path, mode: change.mode });
        } else {
          createNew();
        }
        break;
    }
  }

  const explicitDirectories = new Set(phases[1].map((op) => op.path));
  const implied = new Set<string>();
  for (const relPath of created) {
    for (const ancestor of ancestorsOf(relPath)) {
      const existing = input.current.get(ancestor) ?? input.baseline.get(ancestor);
      if (!explicitDirectories.has(ancestor) && existing?.type !== 'directory') {
        implied.add(ancestor);
      }
    }
  }
  phases[1].push(...[...implied].map((path): ApplyOperation => ({ kind: 'mkdir', path, implied: true })));

  const depth = (relPath: string): number => relPath.split('/').length;
  phases[1].sort((a, b) => depth(a.path) - depth(b.path) || compare(a.path, b.path));
  phases[3].sort((a, b) => depth(b.path) - depth(a.path) || compare(a.path, b.path));
  phases[5].sort((a, b) => depth(b.path) - depth(a.path) || compare(a.path, b.path));
  // A directory made where a renamed file was (the file moved away, a directory took its name) can be made
  // only once the rename has freed the name; so can the directories below it.
  const renamedFrom = new Set(phases[2].map((op) => op.fromPath));
  const freedByRename = (relPath: string): boolean => [...ancestorsOf(relPath), relPath].some((p) => renamedFrom.has(p));
  const mkdirsAfterRenames = phases[1].filter((op) => freedByRename(op.path));
  phases[1] = phases[1].filter((op) => !freedByRename(op.path));
  phases.splice(3, 0, mkdirsAfterRenames);
  return { operations: phases.flat(), conflicts, skipped };
}

/** True when applying the change sets the mode of an existing file (a chmod, or a rename that also changes the mode). */
function changesModeOf(change: ChangeEntry): boolean {
  return (
    change.type === 'file' && (change.kind === 'mode' || (change.kind === 'renamed' && change.mode !== undefined && change.mode !== change.baseMode))
  );
}

/**
 * Why writing at `relPath` could go through something on disk: the path or one of its ancestors is an obstacle
 * (e.g. a symlink out of the folder, which the scan leaves out), or an ancestor became a symlink or a file
 * since the box was synced. A writer that follows links (VS Code's file service does) would write elsewhere.
 */
function obstacleAt(relPath: string, input: ApplyPlanInput): string | undefined {
  for (const p of [...ancestorsOf(relPath), relPath]) {
    const obstacle = input.obstacles?.get(p);
    if (obstacle !== undefined) {
      return `"${p}" is ${obstacle} in the workspace; nothing is written at or through it`;
    }
  }
  for (const ancestor of ancestorsOf(relPath)) {
    const current = input.current.get(ancestor);
    if (current !== undefined && current.type !== 'directory' && !sameState(input.baseline.get(ancestor), current)) {
      return `"${ancestor}" became a ${current.type} in the workspace since the box was synced; nothing is written through it`;
    }
  }
  return undefined;
}

function conflictAt(relPath: string, base: ManifestEntry | undefined, current: ManifestEntry | undefined): string | undefined {
  if (sameState(base, current)) {
    return undefined;
  }
  if (base === undefined) {
    return `"${relPath}" was created in the workspace since the box was synced`;
  }
  if (current === undefined) {
    return `"${relPath}" was deleted in the workspace since the box was synced`;
  }
  if (base.type !== current.type) {
    return `"${relPath}" became a ${current.type} in the workspace since the box was synced`;
  }
  return `"${relPath}" was changed in the workspace since the box was synced`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
