import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readlinkSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import { hostPath } from './hostPath';

/**
 * Opens workspace entries for sending without following a symbolic link in ANY component of their path
 * (design.md invariant 10). `O_NOFOLLOW` alone guards the last component only: a directory of the path
 * replaced by a link out of the workspace between the scan and the read would be followed, and the box would
 * get the outside file's bytes.
 *
 * **Linux** (`/proc/self/fd` present): an `openat` chain. Node has no `openat`, but a path below
 * `/proc/self/fd/N/` is looked up *in the directory that fd N holds*: the kernel jumps to the opened directory
 * itself (a magic link, never resolved by name again) and looks up one name there. So every component is
 * opened as `/proc/self/fd/<parent fd>/<name>` with `O_NOFOLLOW` (and `O_DIRECTORY` for directories): a link
 * swapped in before that open fails it (`ELOOP`/`ENOTDIR`: the entry is skipped), a link swapped in after it
 * changes nothing, because every later lookup goes through the fd, not through the name. There is no window
 * left; the order of checks does not matter because there are none to race.
 *
 * **Elsewhere** (macOS, Windows): no such lookup exists, so the file is opened by path with `O_NOFOLLOW`, then
 * (1) its fd is `fstat`ed, (2) every ancestor directory is `lstat`ed, root first, and must be a directory, not
 * a link, (3) the whole path is `lstat`ed again and must be the very inode the fd holds (device + inode). Why
 * this order: a link in an ancestor at the moment of the open makes the fd an outside file. If the link is
 * still there at (2), (2) fails. If it was swapped back before (2), then at (3) the path resolves through real
 * directories to the workspace's file, whose inode is not the outside file the fd holds (the fd keeps that
 * inode alive, so it cannot be reused), and (3) fails. Passing needs the link gone during all of (2) and back
 * for (3): two swaps timed to a few microseconds each, against one before. That narrows the race; it does not
 * close it (docs/security.md says so). A hard link in the workspace to an outside file is the same inode on
 * every path and passes both ways: it is workspace content by design (docs/security.md).
 *
 * One opener per pack: directory fds of the current path are kept while entries come parents first, and
 * `close()` releases them. Every method is synchronous, so the chain never changes under an open in flight.
 */
export class WorkspaceOpener {
  private readonly viaProc: boolean;
  private rootFd: number | undefined;
  /** Open directories of the path last used, shallowest first (Linux only). */
  private chain: { name: string; fd: number }[] = [];

  constructor(
    private readonly root: string,
    options: { mode?: 'auto' | 'by-path' } = {},
  ) {
    this.viaProc = options.mode !== 'by-path' && procFdWorks();
  }

  /** Opens a regular file (read-only, `O_NONBLOCK` so a fifo swapped in cannot block) and returns its fd. */
  openFile(relPath: string): number {
    const flags = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
    if (this.viaProc) {
      const { parentFd, name } = this.parentOf(relPath);
      return openSync(`/proc/self/fd/${parentFd}/${name}`, flags);
    }
    const absolute = this.absolute(relPath);
    const fd = openSync(absolute, flags);
    try {
      const opened = fstatSync(fd);
      this.checkAncestorsByPath(relPath);
      if (!sameInode(opened, lstatSync(absolute))) throw raceError(relPath);
      return fd;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** Throws unless `relPath` is, right now, a directory reached through directories only. */
  checkDirectory(relPath: string): void {
    if (this.viaProc) {
      this.chainTo(relPath.split('/'));
      return;
    }
    this.checkAncestorsByPath(relPath + '/x');
    const stat = lstatSync(this.absolute(relPath));
    if (!stat.isDirectory()) throw raceError(relPath);
  }

  /** The target of the symlink at `relPath`, read without following any link on the way to it. */
  readLink(relPath: string): string {
    if (this.viaProc) {
      const { parentFd, name } = this.parentOf(relPath);
      return readlinkSync(`/proc/self/fd/${parentFd}/${name}`);
    }
    this.checkAncestorsByPath(relPath);
    return readlinkSync(this.absolute(relPath));
  }

  /** Closes every directory fd the opener holds. */
  close(): void {
    this.truncateChain(0);
    if (this.rootFd !== undefined) {
      closeSync(this.rootFd);
      this.rootFd = undefined;
    }
  }

  private parentOf(relPath: string): { parentFd: number; name: string } {
    const segments = relPath.split('/');
    const name = segments.pop()!;
    checkName(name, relPath);
    return { parentFd: this.chainTo(segments), name };
  }

  /** The fd of the directory `segments` (root for none), opening what the chain lacks. */
  private chainTo(segments: string[]): number {
    let keep = 0;
    while (keep < this.chain.length && keep < segments.length && this.chain[keep].name === segments[keep]) keep++;
    this.truncateChain(keep);
    this.rootFd ??= openSync(this.root, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    for (let i = keep; i < segments.length; i++) {
      checkName(segments[i], segments.join('/'));
      const parentFd = i === 0 ? this.rootFd : this.chain[i - 1].fd;
      const fd = openSync(`/proc/self/fd/${parentFd}/${segments[i]}`, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW);
      this.chain.push({ name: segments[i], fd });
    }
    return segments.length === 0 ? this.rootFd : this.chain[segments.length - 1].fd;
  }

  private truncateChain(length: number): void {
    while (this.chain.length > length) closeSync(this.chain.pop()!.fd);
  }

  /** Every directory above `relPath`, root first, is a directory and not a link (by path: see the class comment). */
  private checkAncestorsByPath(relPath: string): void {
    const segments = relPath.split('/');
    let absolute = this.root;
    for (let i = 0; i < segments.length - 1; i++) {
      checkName(segments[i], relPath);
      absolute = path.join(absolute, segments[i]);
      if (!lstatSync(absolute).isDirectory()) throw raceError(relPath);
    }
  }

  private absolute(relPath: string): string {
    return hostPath(this.root, relPath);
  }
}

/** Raised when a path changed under the opener; `code` reads like the kernel's own refusal. */
function raceError(relPath: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${relPath}: a directory on its path is not the one scanned (replaced by a link?)`);
  error.code = 'ELOOP';
  return error;
}

function checkName(name: string, relPath: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('\0')) {
    const error: NodeJS.ErrnoException = new Error(`${relPath}: not a plain workspace path`);
    error.code = 'EINVAL';
    throw error;
  }
}

function sameInode(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

let procFdChecked: boolean | undefined;

/** Whether `/proc/self/fd/N/name` looks names up in fd N's directory (Linux with /proc mounted). */
function procFdWorks(): boolean {
  if (procFdChecked === undefined) {
    try {
      procFdChecked = process.platform === 'linux' && statSync('/proc/self/fd').isDirectory();
    } catch {
      procFdChecked = false;
    }
  }
  return procFdChecked;
}
