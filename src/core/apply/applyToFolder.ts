import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SandboxError } from '../errors';
import { ensureParentDirectories, guardedAbsolute, lstatOrUndefined } from '../workspace/pathGuard';
import type { ApplyOperation, ApplyPlan } from '../../shared/protocol';

/**
 * Carries out a plan on disk (for standalone clients; VS Code applies through `WorkspaceEdit`). Per operation:
 * the path must be a plain relative path whose existing parents are real directories inside `root` (checked
 * with lstat; a symlinked parent throws `path-outside-workspace` before anything is written for it); links are
 * never followed (files are replaced by rename, chmod goes through an `O_NOFOLLOW` handle); content is
 * checked against the planned hash, written to a temp file in the same directory, fsynced and renamed over
 * the target, so a reader sees the old file or the new one, never half of one. A directory delete that finds
 * the directory not empty (the developer kept something in it) leaves it and does not report it.
 * Returns the paths applied, in order; implied parent directories are not listed. Stops at the first error.
 */
export async function applyToFolder(
  root: string,
  plan: ApplyPlan,
  readContent: (relPath: string) => Buffer | Promise<Buffer>,
): Promise<string[]> {
  const applied: string[] = [];
  for (const operation of plan.operations) {
    const done = await applyOperation(root, operation, readContent);
    if (done && !operation.implied && !applied.includes(operation.path)) {
      applied.push(operation.path);
    }
  }
  return applied;
}

async function applyOperation(
  root: string,
  operation: ApplyOperation,
  readContent: (relPath: string) => Buffer | Promise<Buffer>,
): Promise<boolean> {
  const absolute = await guardedAbsolute(root, operation.path);
  switch (operation.kind) {
    case 'write': {
      const content = await readContent(operation.path);
      const hash = createHash('sha256').update(content).digest('hex');
      if (operation.hash !== undefined && hash !== operation.hash) {
        throw new SandboxError(
          'internal',
          `Not writing "${operation.path}": its content (sha256 ${hash.slice(0, 12)}…) is not the reviewed one (${operation.hash.slice(0, 12)}…). Collect again and review the new version.`,
        );
      }
      await ensureParentDirectories(root, operation.path);
      await refuseDirectoryAt(absolute, operation.path);
      await atomicWrite(absolute, content, operation.mode ?? 0o644);
      return true;
    }
    case 'symlink': {
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
      await syncDirectory(path.dirname(absolute));
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
      await syncDirectory(path.dirname(absolute));
      return true;
    }
    case 'rename': {
      const source = await guardedAbsolute(root, operation.fromPath ?? '');
      const sourceStat = await fs.lstat(source);
      if (!sourceStat.isFile()) {
        throw new SandboxError('internal', `Cannot rename "${operation.fromPath}" to "${operation.path}": the source is no longer a regular file.`);
      }
      if ((await lstatOrUndefined(absolute)) !== undefined) {
        throw new SandboxError('internal', `Cannot rename "${operation.fromPath}" to "${operation.path}": the target already exists in the workspace.`);
      }
      await ensureParentDirectories(root, operation.path);
      await fs.rename(source, absolute);
      if (operation.mode !== undefined) {
        await chmodNoFollow(absolute, operation.mode);
      }
      await syncDirectory(path.dirname(absolute));
      await syncDirectory(path.dirname(source));
      return true;
    }
    case 'chmod':
      await chmodNoFollow(absolute, operation.mode ?? 0o644);
      return true;
  }
}

/** Replaces `absolute` with `content`: temp file beside it (O_EXCL, so never through a planted link), fsync, rename. */
async function atomicWrite(absolute: string, content: Buffer, mode: number): Promise<void> {
  const temporary = temporaryName(absolute);
  const handle = await fs.open(temporary, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(content);
    // The umask must not decide the mode the developer approved.
    await handle.chmod(mode & 0o777);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.rm(temporary, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await fs.rename(temporary, absolute);
  } catch (error) {
    await fs.rm(temporary, { force: true });
    throw error;
  }
  await syncDirectory(path.dirname(absolute));
}

async function refuseDirectoryAt(absolute: string, relPath: string): Promise<void> {
  const stat = await lstatOrUndefined(absolute);
  if (stat?.isDirectory()) {
    throw new SandboxError('internal', `Cannot write "${relPath}": a directory is in the way in the workspace.`);
  }
}

async function chmodNoFollow(absolute: string, mode: number): Promise<void> {
  const handle = await fs.open(absolute, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  try {
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

function temporaryName(absolute: string): string {
  return path.join(path.dirname(absolute), `.${path.basename(absolute)}.agent-sandbox-${randomBytes(6).toString('hex')}.tmp`);
}
