import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs, lstatSync, readlinkSync } from 'node:fs';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import { SandboxError } from '../errors';
import {
  ancestorsOf,
  checkRelative,
  ensureParentDirectories,
  guardedAbsolute,
  isFaithfulName,
  isInside,
  lstatOrUndefined,
  plainAbsolute,
  symlinkStaysInside,
  type TreeLookup,
} from '../workspace/pathGuard';
import { forEachBounded } from '../util/concurrency';
import type { ApplyOperation, ApplyPlan } from '../../shared/protocol';
import { sha256 } from '../util/hash';
import { hostPath } from '../workspace/hostPath';
import { hashStamped, sameStamp, stampOf, type FileStamp, type StampedHash } from './fileStamp';

/** Files hashed or staged at once. */
const APPLY_CONCURRENCY = 16;

/**
 * Carries out a plan on disk (for standalone clients; VS Code applies through `WorkspaceEdit`). Per operation:
 * the path must be a plain relative path whose existing parents are real directories inside `root` (checked
 * with lstat; a symlinked parent throws `path-outside-workspace` before anything is written for it); links are
 * never followed (files are replaced by rename, chmod goes through an `O_NOFOLLOW` handle).
 *
 * New file contents are staged first: each is checked against the planned hash and written to a temp file
 * (O_EXCL, fsynced) in the deepest directory of its path that exists already, before any operation touches the
 * workspace. Only then do the operations run, a write being a rename of its staged file over the target, so a
 * reader sees the old file or the new one, never half of one. A full disk (`disk-full`), a content that is not
 * the reviewed one or a failing read therefore stops the apply with the workspace unchanged, and no temp file
 * is left behind on any error. Writing a file's bytes is what needs space; the renames, deletes and chmods
 * that follow rarely do (a mkdir may), and a `disk-full` there says how many changes were already applied.
 *
 * Every file an operation replaces, deletes, moves or chmods (`baseHash` in the plan) is hashed before anything
 * is written and must still hold the baseline's content, and its stamp is checked again right before the
 * operation: a file the developer changed after the plan is never overwritten (`workspace-changed`). A file
 * in `options.hashed` (hashed by the caller while planning, with the stamp it had while read) is not read
 * again when its stamp is still that one: any write since moves its ctime, a replacement its inode.
 *
 * The writes of the plan (one phase: distinct paths, their parents made before) are renamed into place a few
 * at a time, each right after its own conflict check; the other operations run one at a time in plan order.
 *
 * A directory delete that finds the directory not empty (the developer kept something in it) leaves it and
 * does not report it. Returns the paths applied, in order; implied parent directories are not listed. Stops
 * at the first error (writes already under way finish, and count as applied).
 */
export async function applyToFolder(
  root: string,
  plan: ApplyPlan,
  readContent: (relPath: string) => Buffer | Promise<Buffer>,
  options: { hashed?: ReadonlyMap<string, StampedHash> } = {},
): Promise<string[]> {
  const applied: string[] = [];
  const staged = new Map<ApplyOperation, string>();
  const verified = new Map<ApplyOperation, FileStamp | undefined>();
  let current: { operation: ApplyOperation; bytes?: number } | undefined;
  // Links the plan deletes before it writes below their path (a link to a directory that became a directory).
  const replacedLinks = new Set(plan.operations.filter((op) => op.kind === 'delete' && op.type === 'symlink').map((op) => op.path));
  // Reading before anything is written: a directory's check (no link, no file) is made once for all its files.
  const directoryStat = onceEach(lstatOrUndefined);
  try {
    // Invariant 6 does not rest on the scan's stat stamps: every file about to be replaced, deleted, moved or
    // chmodded is hashed now, before anything is written, and must still hold the baseline's content.
    // Hashing and staging read and write independent files: a few at a time (each staged file is fsynced,
    // and waiting on one sync at a time made a 1,000-file apply 12× slower than tar).
    await forEachBounded(plan.operations, APPLY_CONCURRENCY, async (operation) => {
      await refuseHardLinkedModeChange(root, operation);
      if (operation.baseHash === undefined) return;
      verified.set(operation, await verifyBaseContent(root, operation, options.hashed?.get(baseHashPath(operation)), directoryStat));
    });
    const writes = plan.operations.filter((operation) => operation.kind === 'write');
    // One flush of the file system for all staged files where the platform has one (`syncFileSystem`), else an
    // fsync each: the staged bytes are on disk before the first rename either way.
    const batched = writes.length > 1 && (await canSyncFileSystem());
    await forEachBounded(writes, APPLY_CONCURRENCY, async (operation) => {
      const attempt: { operation: ApplyOperation; bytes?: number } = { operation };
      try {
        const content = await readContent(operation.path);
        attempt.bytes = content.length;
        const hash = sha256(content);
        if (operation.hash !== undefined && hash !== operation.hash) {
          throw new SandboxError(
            'internal',
            `Not writing "${operation.path}": its content (sha256 ${hash.slice(0, 12)}…) is not the reviewed one (${operation.hash.slice(0, 12)}…). Collect again and review the new version.`,
          );
        }
        staged.set(
          operation,
          await stage(
            root,
            operation.path,
            content,
            operation.mode ?? 0o644,
            replacedLinks,
            (temporary) => staged.set(operation, temporary),
            batched,
          ),
        );
      } catch (error) {
        throw diskFullError(error, root, attempt, 0) ?? error;
      }
    });
    if (batched) {
      current = undefined;
      await syncFileSystem(root);
    }
    // The operations run in the plan's order; a run of writes a few at a time (each after its own conflict
    // check). The directories they changed are synced once at the end.
    const changedDirectories = new Set<string>();
    const run = async (operation: ApplyOperation): Promise<boolean> => {
      try {
        // A write checks right before its rename, once its parents were walked (and made) with lstat.
        const check = verified.has(operation) ? () => reverifyBaseContent(root, operation, verified.get(operation)) : undefined;
        if (operation.kind !== 'write') await check?.();
        const done = await applyOperation(root, operation, staged.get(operation), changedDirectories, operation.kind === 'write' ? check : undefined);
        staged.delete(operation);
        return done;
      } catch (error) {
        current ??= { operation };
        throw error;
      }
    };
    const noteApplied = (operation: ApplyOperation): void => {
      if (!operation.implied && !applied.includes(operation.path)) applied.push(operation.path);
    };
    for (let i = 0; i < plan.operations.length;) {
      const operation = plan.operations[i] as ApplyOperation;
      let end = i + 1;
      while (operation.kind === 'write' && end < plan.operations.length && plan.operations[end]?.kind === 'write') end++;
      if (end - i === 1) {
        current = { operation };
        if (await run(operation)) noteApplied(operation);
        current = undefined;
      } else {
        const group = plan.operations.slice(i, end);
        const done: boolean[] = [];
        try {
          await forEachBounded(group, APPLY_CONCURRENCY, async (write, index) => {
            done[index] = await run(write);
          });
        } finally {
          // Also after a failure: the writes that finished are applied, in plan order.
          group.forEach((write, index) => done[index] && noteApplied(write));
        }
      }
      i = end;
    }
    current = undefined;
    if (batched && changedDirectories.size > 1) {
      await syncFileSystem(root);
    } else {
      await forEachBounded([...changedDirectories], APPLY_CONCURRENCY, syncDirectory);
    }
    return applied;
  } catch (error) {
    if (error instanceof BaseChanged) throw workspaceChanged(error.relPath, error.what, applied.length);
    throw diskFullError(error, root, current, applied.length) ?? error;
  } finally {
    await Promise.all([...staged.values()].map((temporary) => fs.rm(temporary, { force: true }).catch(() => undefined)));
  }
}

function hardLinkRefusal(relPath: string, links: number): SandboxError {
  return new SandboxError(
    'path-outside-workspace',
    `Not changing the mode of "${relPath}": it has ${links} hard links, and a mode change would change the file under its other names too (maybe outside the workspace).`,
  );
}

/**
 * Before anything is written: a mode change planned for a hard-linked file is refused now, not after the
 * rest of the plan was applied (`chmodNoFollow` checks again on the handle it changes).
 */
async function refuseHardLinkedModeChange(root: string, operation: ApplyOperation): Promise<void> {
  if (operation.mode === undefined || (operation.kind !== 'chmod' && operation.kind !== 'rename')) return;
  const relPath = operation.kind === 'rename' ? (operation.fromPath ?? '') : operation.path;
  const stat = await lstatOrUndefined(await guardedAbsolute(root, relPath));
  if (stat?.isFile() && stat.nlink > 1 && (stat.mode & 0o7777) !== (operation.mode & 0o777)) {
    throw hardLinkRefusal(relPath, stat.nlink);
  }
}

/** The path an operation with a `baseHash` changes: a rename's source, otherwise its path. */
function baseHashPath(operation: ApplyOperation): string {
  return operation.kind === 'rename' ? (operation.fromPath ?? '') : operation.path;
}

/** A file to be replaced, deleted, moved or chmodded no longer holds its baseline: `workspace-changed` once the count of applied changes is known. */
class BaseChanged extends Error {
  constructor(
    readonly relPath: string,
    readonly what: string,
  ) {
    super(`"${relPath}" ${what}`);
  }
}

/**
 * Hashes the file an operation would replace, delete, move or chmod (unless `hashed` holds its hash from a
 * stamp it still has), and throws `BaseChanged` unless it still holds `baseHash`. A delete of a file that is
 * gone already is fine; for anything else a missing file or another type is a change too. Returns the file's
 * stamp (undefined when it is gone).
 */
async function verifyBaseContent(
  root: string,
  operation: ApplyOperation,
  hashed?: StampedHash,
  /** How the ancestors are looked at (the verify phase looks at each directory once). */
  ancestorStat?: (absolute: string) => Promise<Stats | undefined>,
): Promise<FileStamp | undefined> {
  const relPath = baseHashPath(operation);
  const absolute = await guardedAbsolute(root, relPath, ancestorStat);
  let result: StampedHash | 'gone' | 'not-a-file' | 'changed' | undefined;
  if (hashed !== undefined) {
    const now = await lstatOrUndefined(absolute);
    if (now?.isFile() && sameStamp(hashed.stamp, stampOf(now))) result = hashed;
  }
  result ??= await hashStamped(absolute);
  if (result === 'gone' && operation.kind === 'delete') return undefined;
  if (result === 'gone') throw new BaseChanged(relPath, 'was deleted');
  if (result === 'not-a-file') throw new BaseChanged(relPath, 'is no longer a regular file');
  if (result === 'changed') throw new BaseChanged(relPath, 'changed while it was read');
  if (result.hash !== operation.baseHash) {
    throw new BaseChanged(relPath, 'no longer holds the content the box was given');
  }
  return result.stamp;
}

/**
 * Right before the operation: the file must still carry the stamp it had when it was hashed (any write since
 * moves ctime, a replacement changes the inode); otherwise it is hashed again. A write calls this once its
 * parents were walked (`ensureParentDirectories`), the others before their own walk.
 */
async function reverifyBaseContent(root: string, operation: ApplyOperation, stamp: FileStamp | undefined): Promise<void> {
  const absolute = operation.kind === 'write' ? plainAbsolute(root, operation.path) : await guardedAbsolute(root, baseHashPath(operation));
  const now = await lstatOrUndefined(absolute);
  if (stamp === undefined ? now === undefined : now?.isFile() && sameStamp(stamp, stampOf(now))) return;
  await verifyBaseContent(root, operation);
}

function workspaceChanged(relPath: string, what: string, appliedCount: number): SandboxError {
  const state =
    appliedCount === 0 ? 'Nothing in the workspace was changed' : `${appliedCount} change(s) were applied before that; the rest are still pending`;
  return new SandboxError(
    'workspace-changed',
    `Not overwriting "${relPath}": it ${what} since the changes were planned (it was edited in the workspace). ${state}. Review again: it is a conflict now.`,
  );
}

/**
 * Writes `content` to a temp file in the deepest existing directory of `relPath` (where the file will be, or
 * the ancestor its missing parents will be made in: the same file system, so the later rename is atomic).
 * `onCreated` learns the temp file's name as soon as it exists, so a failure after that still removes it.
 */
async function stage(
  root: string,
  relPath: string,
  content: Buffer,
  mode: number,
  replacedLinks: ReadonlySet<string>,
  onCreated: (temporary: string) => void,
  /** The caller flushes the file system once for all staged files (`syncFileSystem`): no fsync here. */
  batched = false,
): Promise<string> {
  const checked = checkRelative(relPath);
  const absolute = hostPath(root, relPath);
  if (!checked.ok || checked.path !== relPath || !isInside(root, absolute) || path.resolve(absolute) === path.resolve(root)) {
    throw new SandboxError('path-outside-workspace', `Refusing to write "${relPath}": it is not a plain workspace-relative path inside ${root}.`);
  }
  // A file or missing ancestor ends the walk (an earlier operation of the plan replaces or creates it), and so
  // does a link the plan deletes first (the temp file waits beside it, in a real directory); any other link
  // never carries the temp file out of the workspace. The write itself re-checks every ancestor with lstat.
  let directory = root;
  for (const ancestor of ancestorsOf(relPath)) {
    const candidate = hostPath(root, ancestor);
    const stat = await lstatOrUndefined(candidate);
    if (stat?.isSymbolicLink() && replacedLinks.has(ancestor)) break;
    if (stat?.isSymbolicLink()) {
      throw new SandboxError(
        'path-outside-workspace',
        `Refusing to write "${relPath}": its parent "${ancestor}" is a symbolic link, and apply never writes through links.`,
      );
    }
    if (!stat?.isDirectory()) break;
    directory = candidate;
  }
  const temporary = temporaryName(path.join(directory, path.basename(absolute)));
  const handle = await fs.open(temporary, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
  onCreated(temporary);
  try {
    await handle.writeFile(content);
    // The umask must not decide the mode the developer approved.
    await handle.chmod(mode & 0o777);
    if (!batched) await handle.sync();
  } finally {
    await handle.close();
  }
  return temporary;
}

/** ENOSPC / EDQUOT as a `disk-full` error naming the folder, the file and what to do; undefined for other errors. */
function diskFullError(
  error: unknown,
  root: string,
  current: { operation: ApplyOperation; bytes?: number } | undefined,
  appliedCount: number,
): SandboxError | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  const what = code === 'EDQUOT' ? 'its disk quota' : 'space';
  const where = current ? ` while writing "${current.operation.path}"${current.bytes === undefined ? '' : ` (${formatBytes(current.bytes)})`}` : '';
  const state =
    appliedCount === 0
      ? 'Nothing in the workspace was changed and the changes are still pending'
      : `${appliedCount} change(s) were applied before that, no file is half-written, and the rest are still pending`;
  return new SandboxError(
    'disk-full',
    `The disk holding the workspace folder ${root} ran out of ${what}${where}. ${state}. Free space on that disk, then apply again.`,
    { cause: error },
  );
}

function formatBytes(bytes: number): string {
  return bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} KiB` : `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

async function applyOperation(
  root: string,
  operation: ApplyOperation,
  staged: string | undefined,
  changedDirectories: Set<string>,
  /** For a write: the conflict check, run after the parents were walked, right before the rename. */
  beforeWrite?: () => Promise<void>,
): Promise<boolean> {
  // Writes and links walk the ancestors in `ensureParentDirectories` (refusing a link or a non-directory
  // there, as `guardedAbsolute` does), so they skip the second walk.
  const absolute =
    operation.kind === 'write' || operation.kind === 'symlink' ? plainAbsolute(root, operation.path) : await guardedAbsolute(root, operation.path);
  switch (operation.kind) {
    case 'write': {
      if (staged === undefined) {
        throw new SandboxError('internal', `Not writing "${operation.path}": its content was not staged.`);
      }
      await ensureParentDirectories(root, operation.path);
      await beforeWrite?.();
      try {
        await fs.rename(staged, absolute);
      } catch (error) {
        // A file renamed over a directory fails with EISDIR: no lstat before every write to find it first.
        if ((error as NodeJS.ErrnoException).code === 'EISDIR') throw directoryInTheWay(operation.path);
        throw error;
      }
      changedDirectories.add(path.dirname(absolute)).add(path.dirname(staged));
      return true;
    }
    case 'symlink': {
      refuseEscapingLink(root, operation.path, operation.linkTarget ?? '');
      await ensureParentDirectories(root, operation.path);
      await refuseDirectoryAt(absolute, operation.path);
      const temporary = temporaryName(absolute);
      await fs.symlink(operation.linkTarget ?? '', temporary);
      try {
        await fs.rename(temporary, absolute);
      } catch (error) {
        await fs.rm(temporary, { force: true });
        throw error;
      }
      changedDirectories.add(path.dirname(absolute));
      return true;
    }
    case 'mkdir': {
      await ensureParentDirectories(root, operation.path);
      try {
        await fs.mkdir(absolute, operation.mode === undefined ? undefined : { mode: operation.mode & 0o777 });
        if (operation.mode !== undefined) {
          await chmodNoFollow(absolute, operation.mode);
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw error;
        }
        const stat = await fs.lstat(absolute);
        if (!stat.isDirectory()) {
          throw new SandboxError('path-outside-workspace', `Cannot create the directory "${operation.path}": something else is already there.`);
        }
      }
      return true;
    }
    case 'delete': {
      const stat = await lstatOrUndefined(absolute);
      if (stat === undefined) {
        return true;
      }
      if (stat.isDirectory()) {
        try {
          await fs.rmdir(absolute);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (error as NodeJS.ErrnoException).code === 'EEXIST') {
            return false;
          }
          throw error;
        }
      } else {
        await fs.unlink(absolute);
      }
      changedDirectories.add(path.dirname(absolute));
      return true;
    }
    case 'rename': {
      const source = await guardedAbsolute(root, operation.fromPath ?? '');
      const sourceStat = await fs.lstat(source);
      if (!sourceStat.isFile()) {
        throw new SandboxError('internal', `Cannot rename "${operation.fromPath}" to "${operation.path}": the source is no longer a regular file.`);
      }
      if ((await lstatOrUndefined(absolute)) !== undefined) {
        throw new SandboxError(
          'internal',
          `Cannot rename "${operation.fromPath}" to "${operation.path}": the target already exists in the workspace.`,
        );
      }
      await ensureParentDirectories(root, operation.path);
      await fs.rename(source, absolute);
      if (operation.mode !== undefined) {
        await chmodNoFollow(absolute, operation.mode, operation.path);
      }
      changedDirectories.add(path.dirname(absolute)).add(path.dirname(source));
      return true;
    }
    case 'chmod':
      await chmodNoFollow(absolute, operation.mode ?? 0o644, operation.path);
      return true;
  }
}

/**
 * Collect refuses links that leave the box's tree; this is the last check before one is created on the host:
 * no absolute, empty or lossily decoded target, none that climbs above the root lexically, and none that
 * leaves it through links that exist on the host (`hl -> ../elsewhere` is left out of the box, so the box
 * cannot see that `x -> hl/secret` escapes): resolved with lstat/readlink here, as the kernel will.
 */
function refuseEscapingLink(root: string, relPath: string, linkTarget: string): void {
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(relPath), linkTarget));
  if (
    linkTarget === '' ||
    linkTarget.includes('\0') ||
    path.posix.isAbsolute(linkTarget) ||
    !isFaithfulName(linkTarget) ||
    resolved === '..' ||
    resolved.startsWith('../') ||
    !symlinkStaysInside(relPath, linkTarget, hostTreeLookup(root))
  ) {
    throw new SandboxError(
      'path-outside-workspace',
      `Refusing to create the link "${relPath}" -> ${JSON.stringify(linkTarget)}: its target leaves the workspace or is not a valid name.`,
    );
  }
}

/** The workspace on disk as `symlinkStaysInside` walks it: lstat, never following the last component. */
function hostTreeLookup(root: string): TreeLookup {
  return (relPath) => {
    let stat: Stats;
    try {
      stat = lstatSync(hostPath(root, relPath));
    } catch {
      return undefined;
    }
    if (stat.isSymbolicLink()) {
      try {
        return { type: 'symlink', linkTarget: readlinkSync(hostPath(root, relPath)) };
      } catch {
        return { type: 'symlink', linkTarget: '/' };
      }
    }
    return stat.isDirectory() ? { type: 'directory' } : { type: 'file' };
  };
}

async function refuseDirectoryAt(absolute: string, relPath: string): Promise<void> {
  const stat = await lstatOrUndefined(absolute);
  if (stat?.isDirectory()) throw directoryInTheWay(relPath);
}

function directoryInTheWay(relPath: string): SandboxError {
  return new SandboxError('internal', `Cannot write "${relPath}": a directory is in the way in the workspace.`);
}

/** `check` memoized per argument: each distinct argument is checked once, and every caller sees that one outcome. */
function onceEach<T>(check: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const outcomes = new Map<string, Promise<T>>();
  return (key) => {
    let outcome = outcomes.get(key);
    if (outcome === undefined) {
      outcome = check(key);
      outcomes.set(key, outcome);
    }
    return outcome;
  };
}

/**
 * Sets the permission bits through an `O_NOFOLLOW` handle. A file with more than one hard link is refused
 * unless it has the mode already: a chmod changes the inode, so the other names — maybe outside the workspace
 * (a 600 key linked in) — would change too.
 */
async function chmodNoFollow(absolute: string, mode: number, relPath = absolute): Promise<void> {
  const handle = await fs.open(absolute, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  try {
    const stat = await handle.stat();
    if ((stat.mode & 0o7777) === (mode & 0o777)) return;
    if (stat.isFile() && stat.nlink > 1) {
      throw hardLinkRefusal(relPath, stat.nlink);
    }
    await handle.chmod(mode & 0o777);
  } finally {
    await handle.close();
  }
}

async function syncDirectory(directory: string): Promise<void> {
  // Makes the rename durable; not every platform can open a directory for fsync, which is fine to skip.
  try {
    const handle = await fs.open(directory, fsConstants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // best effort
  }
}

let fileSystemSync: Promise<boolean> | undefined;

/** Whether `sync -f` (syncfs(2): one flush of the file system holding a path) runs here; asked once. */
function canSyncFileSystem(): Promise<boolean> {
  if (process.platform !== 'linux') return Promise.resolve(false);
  fileSystemSync ??= new Promise((resolve) => {
    execFile('sync', ['-f', '/'], { timeout: 60_000 }, (error) => resolve(error === null));
  });
  return fileSystemSync;
}

/**
 * Flushes the file system holding `root` (syncfs(2) through `sync -f`): every staged file's bytes, or every
 * rename, durable with one call instead of one fsync per file (measured: about half of a 1,000-file apply).
 * A failure to write back fails the apply; out of space it is `disk-full` like a failed write.
 */
function syncFileSystem(root: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sync', ['-f', root], { timeout: 10 * 60_000 }, (error, _stdout, stderr) => {
      if (error === null) return resolve();
      const text = String(stderr).trim();
      const code = /No space left/i.test(text) ? 'ENOSPC' : /quota/i.test(text) ? 'EDQUOT' : 'EIO';
      reject(Object.assign(new Error(`Flushing the workspace's file system failed: ${text || error.message}`), { code }));
    });
  });
}

function temporaryName(absolute: string): string {
  // A name near the 255-byte limit leaves no room for the suffix (ENAMETOOLONG): the temp name then omits it.
  const name = path.basename(absolute);
  const kept = Buffer.byteLength(name) <= 200 ? `${name}.` : '';
  return path.join(path.dirname(absolute), `.${kept}agent-sandbox-${randomBytes(6).toString('hex')}.tmp`);
}
