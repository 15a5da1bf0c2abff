import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readSync, constants as fsConstants } from 'node:fs';
import * as path from 'node:path';
import { inflateSync } from 'node:zlib';
import { sanitizeGitConfig } from './gitConfigSanitizer';

/**
 * What a fresh repository in the box takes from a host repository (`agentSandbox.gitHistory` `fresh`): HEAD's
 * branch name, HEAD commit's author and message, and the remotes' URLs without credentials. Read here, on the
 * host, straight from the repository files (loose objects and pack files, deltas resolved), so the box never
 * sees the object store, and no host `git` runs in a repository that may configure programs for it to run.
 * Nothing else is read: no tree, no blob, no other commit.
 */
export interface GitHeadInfo {
  /** Branch HEAD names (`main`), or undefined for a detached HEAD. */
  branch?: string;
  /** HEAD's commit; undefined when HEAD has none yet or it could not be read. */
  commit?: { authorName: string; authorEmail: string; authorDate: string; message: string };
  /** Remotes in config order, URLs sanitized. */
  remotes: { name: string; url: string }[];
}

const MAX_SMALL_FILE = 1024 * 1024;
const MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_DELTA_DEPTH = 64;

/** Reads `repoDir/.git` (a directory, or a `gitdir:` file); undefined when it is neither (e.g. a symlink). */
export function readGitHead(repoDir: string): GitHeadInfo | undefined {
  const dotGit = path.join(repoDir, '.git');
  let gitDir: string;
  try {
    const stat = lstatSync(dotGit);
    if (stat.isDirectory()) {
      gitDir = dotGit;
    } else if (stat.isFile()) {
      const pointer = /^gitdir:\s*(.+?)\s*$/m.exec(readSmall(dotGit) ?? '');
      if (!pointer) return undefined;
      gitDir = path.resolve(repoDir, pointer[1]);
    } else {
      return undefined;
    }
  } catch {
    return undefined;
  }
  const commonPointer = readSmall(path.join(gitDir, 'commondir'))?.trim();
  const commonDir = commonPointer ? path.resolve(gitDir, commonPointer) : gitDir;
  const info: GitHeadInfo = { remotes: readRemotes(path.join(commonDir, 'config')) };
  const head = readSmall(path.join(gitDir, 'HEAD'))?.trim();
  if (head === undefined) return info;
  let sha: string | undefined;
  const symbolic = /^ref:\s*(\S+)$/.exec(head);
  if (symbolic) {
    if (symbolic[1].startsWith('refs/heads/')) info.branch = symbolic[1].slice('refs/heads/'.length);
    sha = resolveRef(symbolic[1], gitDir, commonDir);
  } else if (/^[0-9a-f]{40}$/.test(head)) {
    sha = head;
  }
  if (sha !== undefined) {
    try {
      const object = readObject(path.join(commonDir, 'objects'), sha);
      if (object?.type === 'commit') info.commit = parseCommit(object.data);
    } catch {
      // A repository this reader cannot follow (corrupt, unusual format): the commit gets a neutral message.
    }
  }
  return info;
}

function readRemotes(configPath: string): { name: string; url: string }[] {
  const text = readSmall(configPath);
  if (text === undefined) return [];
  const remotes: { name: string; url: string }[] = [];
  let current: string | undefined;
  for (const line of sanitizeGitConfig(text).split(/\r?\n/)) {
    const section = /^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]/.exec(line);
    if (section) {
      current = section[1].toLowerCase() === 'remote' && section[2] !== undefined ? section[2].replace(/\\(.)/g, '$1') : undefined;
      continue;
    }
    const url = /^\s*url\s*=\s*(.*?)\s*$/i.exec(line);
    if (current !== undefined && url && /^[A-Za-z0-9._-]+$/.test(current) && !remotes.some((r) => r.name === current)) {
      remotes.push({ name: current, url: url[1].replace(/^"(.*)"$/, '$1') });
    }
  }
  return remotes;
}

function resolveRef(ref: string, gitDir: string, commonDir: string): string | undefined {
  for (let depth = 0; depth < 5; depth++) {
    if (!/^refs\/[^\0]+$/.test(ref) || ref.split('/').includes('..')) return undefined;
    const loose = (readSmall(path.join(gitDir, ref)) ?? readSmall(path.join(commonDir, ref)))?.trim();
    if (loose !== undefined) {
      const symbolic = /^ref:\s*(\S+)$/.exec(loose);
      if (symbolic) {
        ref = symbolic[1];
        continue;
      }
      return /^[0-9a-f]{40}$/.test(loose) ? loose : undefined;
    }
    for (const line of (readSmall(path.join(commonDir, 'packed-refs')) ?? '').split('\n')) {
      const [sha, name] = line.trim().split(' ');
      if (name === ref && /^[0-9a-f]{40}$/.test(sha)) return sha;
    }
    return undefined;
  }
  return undefined;
}

function parseCommit(data: Buffer): GitHeadInfo['commit'] {
  const text = data.toString('utf8');
  const split = text.indexOf('\n\n');
  const headers = split < 0 ? text : text.slice(0, split);
  const author = /^author (.*) <([^>]*)> (\d+ [+-]\d{4})$/m.exec(headers);
  if (!author) return undefined;
  const message = split < 0 ? '' : text.slice(split + 2);
  return {
    authorName: author[1],
    authorEmail: author[2],
    authorDate: author[3],
    message: Buffer.byteLength(message) > MAX_MESSAGE_BYTES ? Buffer.from(message).subarray(0, MAX_MESSAGE_BYTES).toString('utf8') : message,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The object store: loose objects, then pack files (index v2), following offset and reference deltas.

type GitObject = { type: 'commit' | 'tree' | 'blob' | 'tag'; data: Buffer };
const PACK_TYPES: Record<number, GitObject['type']> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' };

function readObject(objectsDir: string, sha: string, depth = 0): GitObject | undefined {
  const loose = readBinary(path.join(objectsDir, sha.slice(0, 2), sha.slice(2)), 64 * 1024 * 1024);
  if (loose !== undefined) {
    const raw = inflateSync(loose);
    const nul = raw.indexOf(0);
    const type = raw.subarray(0, nul).toString('latin1').split(' ')[0];
    if (type !== 'commit' && type !== 'tree' && type !== 'blob' && type !== 'tag') return undefined;
    return { type, data: raw.subarray(nul + 1) };
  }
  const packDir = path.join(objectsDir, 'pack');
  let names: string[];
  try {
    names = readdirSync(packDir).filter((n) => n.endsWith('.idx'));
  } catch {
    return undefined;
  }
  for (const idx of names) {
    const offset = findInIndex(path.join(packDir, idx), sha);
    if (offset !== undefined) return readPacked(objectsDir, path.join(packDir, idx.replace(/\.idx$/, '.pack')), offset, depth);
  }
  return undefined;
}

/** The object's offset in the pack, from a version 2 index (binary search within the fan-out bucket). */
function findInIndex(indexPath: string, sha: string): number | undefined {
  return withFile(indexPath, (fd, size) => {
    const head = readAt(fd, 0, 8 + 256 * 4);
    if (head.readUInt32BE(0) !== 0xff744f63 || head.readUInt32BE(4) !== 2) return undefined;
    const target = Buffer.from(sha, 'hex');
    const total = head.readUInt32BE(8 + 255 * 4);
    let low = target[0] === 0 ? 0 : head.readUInt32BE(8 + (target[0] - 1) * 4);
    let high = head.readUInt32BE(8 + target[0] * 4);
    const names = readAt(fd, 8 + 1024 + low * 20, (high - low) * 20);
    const base = low;
    while (low < high) {
      const mid = (low + high) >> 1;
      const cmp = names.subarray((mid - base) * 20, (mid - base) * 20 + 20).compare(target);
      if (cmp === 0) {
        const offsetsAt = 8 + 1024 + total * 24;
        const small = readAt(fd, offsetsAt + mid * 4, 4).readUInt32BE(0);
        if ((small & 0x80000000) === 0) return small;
        const large = readAt(fd, offsetsAt + total * 4 + (small & 0x7fffffff) * 8, 8);
        const value = large.readBigUInt64BE(0);
        return value <= BigInt(size) * 1024n ? Number(value) : undefined;
      }
      if (cmp < 0) low = mid + 1;
      else high = mid;
    }
    return undefined;
  });
}

function readPacked(objectsDir: string, packPath: string, offset: number, depth: number): GitObject | undefined {
  if (depth > MAX_DELTA_DEPTH) return undefined;
  return withFile(packPath, (fd, fileSize) => {
    const header = readAt(fd, offset, Math.min(32, fileSize - offset));
    let i = 0;
    let byte = header[i++];
    const type = (byte >> 4) & 7;
    let size = byte & 15;
    let shift = 4;
    while (byte & 0x80) {
      byte = header[i++];
      size += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    }
    let base: GitObject | undefined;
    if (type === 6) {
      byte = header[i++];
      let distance = byte & 0x7f;
      while (byte & 0x80) {
        byte = header[i++];
        distance = (distance + 1) * 128 + (byte & 0x7f);
      }
      base = readPacked(objectsDir, packPath, offset - distance, depth + 1);
    } else if (type === 7) {
      base = readObject(objectsDir, header.subarray(i, i + 20).toString('hex'), depth + 1);
      i += 20;
    } else if (PACK_TYPES[type] === undefined) {
      return undefined;
    }
    if (size > 64 * 1024 * 1024) return undefined;
    // Deflate adds at most ~0.03% plus a few bytes; what follows the stream is ignored by inflate.
    const compressed = readAt(fd, offset + i, Math.min(fileSize - offset - i, size + Math.ceil(size / 1000) + 1024));
    const data = inflateSync(compressed);
    if (type === 6 || type === 7) return base === undefined ? undefined : { type: base.type, data: applyDelta(base.data, data) };
    return { type: PACK_TYPES[type], data };
  });
}

function applyDelta(base: Buffer, delta: Buffer): Buffer {
  let i = 0;
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = delta[i++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  };
  varint(); // source size
  const out = Buffer.alloc(varint());
  let at = 0;
  while (i < delta.length) {
    const op = delta[i++];
    if (op & 0x80) {
      let copyOffset = 0;
      let copySize = 0;
      for (let bit = 0; bit < 4; bit++) if (op & (1 << bit)) copyOffset += delta[i++] * 2 ** (8 * bit);
      for (let bit = 0; bit < 3; bit++) if (op & (0x10 << bit)) copySize += delta[i++] * 2 ** (8 * bit);
      if (copySize === 0) copySize = 0x10000;
      at += base.copy(out, at, copyOffset, copyOffset + copySize);
    } else if (op > 0) {
      at += delta.copy(out, at, i, i + op);
      i += op;
    } else {
      throw new Error('invalid delta');
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

function readSmall(file: string): string | undefined {
  return readBinary(file, MAX_SMALL_FILE)?.toString('utf8');
}

/** A regular file's bytes (not through a final symlink), or undefined when absent, not a file or too big. */
function readBinary(file: string, limit: number): Buffer | undefined {
  try {
    return withFile(file, (fd, size) => (size > limit ? undefined : readAt(fd, 0, size)));
  } catch {
    return undefined;
  }
}

function withFile<T>(file: string, use: (fd: number, size: number) => T): T | undefined {
  let fd: number;
  try {
    fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stat = fstatSync(fd);
    return stat.isFile() ? use(fd, stat.size) : undefined;
  } finally {
    closeSync(fd);
  }
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(Math.max(0, length));
  let done = 0;
  while (done < buffer.length) {
    const n = readSync(fd, buffer, done, buffer.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return buffer.subarray(0, done);
}
