import { promises as fs } from 'node:fs';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import type { RefusedReason } from '../../shared/protocol';
import { SandboxError } from '../errors';
import { hostPath } from './hostPath';

/**
 * Path safety shared by collect (names from a possibly hostile tar) and apply (writes to the real workspace).
 * Workspace-relative paths are POSIX, have no leading `./`, no trailing `/`, no empty, `.` or `..` segment.
 */

/** A checked name: either a safe workspace-relative path or why it cannot be one. */
export type RelativeCheck = { ok: true; path: string } | { ok: false; reason: RefusedReason };

/**
 * Turns a name from the box into a safe workspace-relative POSIX path, or says why it cannot be one.
 * `..` is refused anywhere (even `a/../b`): a name that needs it is not one a real tree produces.
 * Backslashes are refused because a Windows host would read them as separators, a drive letter (`C:`) at the
 * start of any segment because a Windows host would read it as a drive.
 */
export function checkRelative(name: string): RelativeCheck {
  if (name.length === 0 || name.includes('\0') || name.includes('\\') || !isFaithfulName(name)) {
    return { ok: false, reason: 'invalid-name' };
  }
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name)) {
    return { ok: false, reason: 'absolute-path' };
  }
  const segments: string[] = [];
  for (const segment of name.split('/')) {
    if (segment === '..') {
      return { ok: false, reason: 'parent-traversal' };
    }
    // A drive letter on any segment, not only the first: a caller strips a prefix (`workspace/C:x` -> `C:x`),
    // and the result must pass this check again (apply re-checks every path it writes).
    if (/^[a-zA-Z]:/.test(segment)) {
      return { ok: false, reason: 'absolute-path' };
    }
    if (segment !== '' && segment !== '.') {
      segments.push(segment);
    }
  }
  return segments.length === 0 ? { ok: false, reason: 'invalid-name' } : { ok: true, path: segments.join('/') };
}

/**
 * False when a name holds U+FFFD, the mark a UTF-8 decoder leaves for bytes that are not UTF-8 (tar-stream
 * decodes names that way): such a name no longer says which file the box had, and writing it would create a
 * different path. A name that really holds U+FFFD is refused too; that is rare and safe.
 */
export function isFaithfulName(name: string): boolean {
  return !name.includes('\uFFFD');
}

/**
 * `checkRelative` as a plain value: the safe path, or the reason. Prefer `checkRelative` where a file could
 * legitimately be named like a reason (e.g. `fifo`).
 */
export function toSafeRelative(name: string): string | RefusedReason {
  const checked = checkRelative(name);
  return checked.ok ? checked.path : checked.reason;
}

/** True when `abs` is `root` itself or below it (lexically; callers check symlinks separately). */
export function isInside(root: string, abs: string): boolean {
  const relative = path.relative(path.resolve(root), path.resolve(abs));
  return relative === '' || (relative !== '..' && !relative.startsWith('..' + path.sep) && !path.isAbsolute(relative));
}

/** Ancestors of a relative path, shallowest first: `a/b/c` → `a`, `a/b`. */
export function ancestorsOf(relPath: string): string[] {
  const parts = relPath.split('/');
  const result: string[] = [];
  for (let i = 1; i < parts.length; i++) {
    result.push(parts.slice(0, i).join('/'));
  }
  return result;
}

/** Parent of a relative path; '' for top-level entries. */
export function parentOf(relPath: string): string {
  const index = relPath.lastIndexOf('/');
  return index < 0 ? '' : relPath.slice(0, index);
}

/** What a tree lookup tells the symlink resolver about one path. */
export type TreeLookup = (relPath: string) => { type: 'file' | 'directory' | 'symlink'; linkTarget?: string } | undefined;

/**
 * Resolves the symlink at `linkPath` the way the kernel would, inside a tree known only through `lookup`,
 * and says whether it stays inside the root. Symlinks met on the way are followed (with the kernel's limit of
 * 40 hops, a loop counts as outside); paths the tree does not hold are resolved lexically from there on.
 * This is stricter than a lexical check: `sub/up -> ..` plus `sub/l -> up/../x` escapes although
 * `sub/up/../x` looks inside.
 */
export function symlinkStaysInside(linkPath: string, linkTarget: string, lookup: TreeLookup): boolean {
  if (linkTarget.length === 0 || linkTarget.startsWith('/') || linkTarget.includes('\0')) {
    return false;
  }
  const stack = parentOf(linkPath) === '' ? [] : parentOf(linkPath).split('/');
  let pending = linkTarget.split('/');
  let hops = 0;
  while (pending.length > 0) {
    const segment = pending.shift()!;
    if (segment === '' || segment === '.') {
      continue;
    }
    if (segment === '..') {
      if (stack.length === 0) {
        return false;
      }
      stack.pop();
      continue;
    }
    stack.push(segment);
    const entry = lookup(stack.join('/'));
    if (entry?.type === 'symlink') {
      if (++hops > 40) {
        return false;
      }
      const target = entry.linkTarget ?? '';
      if (target.length === 0 || target.startsWith('/')) {
        return false;
      }
      stack.pop();
      pending = [...target.split('/'), ...pending];
    }
  }
  return true;
}

/**
 * The absolute path of a plain workspace-relative path, refusing anything else; pure (the ancestors are not
 * looked at: `guardedAbsolute` or `ensureParentDirectories` do that).
 */
export function plainAbsolute(root: string, relPath: string): string {
  const checked = checkRelative(relPath);
  if (!checked.ok || checked.path !== relPath) {
    throw new SandboxError('path-outside-workspace', `Refusing to write "${relPath}": it is not a plain workspace-relative path.`);
  }
  const absolute = hostPath(root, relPath);
  if (!isInside(root, absolute) || path.resolve(absolute) === path.resolve(root)) {
    throw new SandboxError('path-outside-workspace', `Refusing to write "${relPath}": it resolves outside the workspace ${root}.`);
  }
  return absolute;
}

/**
 * Checks, with lstat, that every existing ancestor of `relPath` below `root` is a real directory (not a
 * symlink, not a file) and that the path stays inside `root`; returns the absolute path. Missing ancestors are
 * fine (the caller creates them with `ensureParentDirectories`). Throws `path-outside-workspace` otherwise.
 */
export async function guardedAbsolute(
  root: string,
  relPath: string,
  /** How an ancestor is looked at: lstat, or a caller's memo of it. */
  lstat: (absolute: string) => Promise<Stats | undefined> = lstatOrUndefined,
): Promise<string> {
  const absolute = plainAbsolute(root, relPath);
  for (const ancestor of ancestorsOf(relPath)) {
    const stat = await lstat(hostPath(root, ancestor));
    if (stat === undefined) {
      break;
    }
    if (stat.isSymbolicLink()) {
      throw new SandboxError(
        'path-outside-workspace',
        `Refusing to write "${relPath}": its parent "${ancestor}" is a symbolic link, and apply never writes through links.`,
      );
    }
    if (!stat.isDirectory()) {
      throw new SandboxError(
        'path-outside-workspace',
        `Refusing to write "${relPath}": its parent "${ancestor}" is not a directory in the workspace.`,
      );
    }
  }
  return absolute;
}

/** Creates the missing ancestors of `relPath` one by one, re-checking each with lstat (never through a link). */
export async function ensureParentDirectories(root: string, relPath: string): Promise<void> {
  for (const ancestor of ancestorsOf(relPath)) {
    const absolute = hostPath(root, ancestor);
    // Usually the parent exists: lstat first (a failing mkdir costs an exception per ancestor per file).
    let stat = await lstatOrUndefined(absolute);
    if (stat === undefined) {
      try {
        await fs.mkdir(absolute);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw error;
        }
      }
      stat = await fs.lstat(absolute);
    }
    if (!stat.isDirectory()) {
      throw new SandboxError(
        'path-outside-workspace',
        `Refusing to write "${relPath}": its parent "${ancestor}" is ${stat.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}.`,
      );
    }
  }
}

/** lstat, or undefined when nothing is there (a missing or non-directory parent counts as nothing). */
export async function lstatOrUndefined(absolute: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(absolute);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') {
      return undefined;
    }
    throw error;
  }
}

/** Code points HFS+ ignores in names (the list git checks in `is_hfs_dotgit`). */
const HFS_IGNORABLE = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;

/**
 * One path segment as some host file system resolves it: Unicode normalised to NFC (APFS and HFS+ store NFD,
 * and `é` typed either way names one file), HFS+ ignorable code points dropped, case folded (APFS, NTFS), an
 * NTFS alternate data stream (`name:stream`, `name::$DATA`) cut off and NTFS trailing dots and spaces
 * stripped (`CLAUDE.md.` and `CLAUDE.md ` open `CLAUDE.md`). The one home of this folding: the `.git` check,
 * the flags for host-executed and agent-read files, the secrets deny-list and case twins all use it, so a
 * spelling one of them knows cannot slip past another. Linux names are not folded on disk; matching the
 * folded name as well as the raw one only ever flags, refuses or withholds more.
 */
export function foldHostName(segment: string): string {
  return segment
    .normalize('NFC')
    .replace(HFS_IGNORABLE, '')
    .toLowerCase()
    .split(':')[0]
    .replace(/[. ]+$/, '');
}

/** `foldHostName` of every segment of a workspace-relative path. */
export function foldHostPath(relPath: string): string {
  return relPath.split('/').map(foldHostName).join('/');
}

/**
 * True when a host file system may resolve the path into a `.git` directory: a segment that is `.git` once
 * folded by `foldHostName`, or NTFS's 8.3 name `git~1` — the spellings git itself refuses (CVE-2014-9390).
 * `.GIT/hooks/pre-commit` is a hook on a case-insensitive disk.
 */
export function touchesGitDirectory(relPath: string): boolean {
  return relPath.split('/').some((segment) => {
    const folded = foldHostName(segment);
    return folded === '.git' || folded === 'git~1';
  });
}
