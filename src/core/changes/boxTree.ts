import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import type { EntryType, RefusedEntry, RefusedReason } from '../../shared/protocol';
import { SandboxError } from '../errors';
import type { Manifest, ManifestEntry } from '../workspace/manifest';
import { ancestorsOf, checkRelative, parentOf, symlinkStaysInside } from '../workspace/pathGuard';
import type { SyncFilter } from '../workspace/syncFilter';

/** Options for `readBoxTree`. */
export interface ReadBoxTreeOptions {
  /** Name prefix of every entry, e.g. `workspace/` as the archive API names a copy of `/workspace`; '' for none. */
  prefix: string;
  /** What the box was given; files whose hash matches it are not kept in memory. */
  baseline: Manifest;
  /** Paths it excludes are listed in `ignored`, never proposed. */
  filter: SyncFilter;
  /** Files larger than this are refused (`too-large`) from their header: their bytes are skipped, never held. */
  maxFileBytes?: number;
  signal?: AbortSignal;
}

/** The box's tree as parsed from its tar. */
export interface BoxTree {
  /** Every accepted entry (files, directories, symlinks), by workspace-relative path. */
  entries: Manifest;
  /** Content of files that are new or whose hash differs from the baseline; nothing else is kept. */
  contents: Map<string, Buffer>;
  /** Entries refused as unsafe, with reasons; never written anywhere. */
  refused: RefusedEntry[];
  /** Excluded paths found in the box (the topmost one for an excluded directory). */
  ignored: string[];
}

/**
 * Parses the box's tree from a tar stream (design.md invariant 4): nothing is extracted, every name and type
 * is checked, and only changed file contents are held in memory. Refused: absolute names, `..`, hard links,
 * devices, fifos, setuid/setgid bits, invalid names, symlinks that are absolute or resolve outside the root
 * (through other links in the tree too), files over `maxFileBytes`, and anything below a path that is a symlink in the tree (which only a
 * crafted tar or a write through a link can produce). A later entry for a path replaces an earlier one, as
 * extraction would.
 */
export async function readBoxTree(stream: Readable, options: ReadBoxTreeOptions): Promise<BoxTree> {
  const prefix = normalizePrefix(options.prefix);
  const entries: Manifest = new Map();
  const contents = new Map<string, Buffer>();
  const refused = new Map<string, RefusedEntry>();
  const ignored = new Set<string>();
  const extract = tar.extract();

  // Header type of each refused entry: what lies below a refused link or non-directory is refused too.
  const refusedTypes = new Map<string, string>();
  const refuse = (path: string, reason: RefusedReason, detail: string, headerType?: string): void => {
    if (headerType !== undefined) {
      refusedTypes.set(path, headerType);
    }
    entries.delete(path);
    contents.delete(path);
    refused.set(path, { path, reason, detail });
  };
  const onAbort = (): void => {
    extract.destroy(new SandboxError('cancelled', 'Reading the box\u2019s files was cancelled.'));
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  stream.once('error', (error) => extract.destroy(error));
  stream.pipe(extract as unknown as NodeJS.WritableStream);

  try {
    for await (const entry of extract) {
      const header = entry.header;
      const verdict = classify(header, prefix);
      if (verdict.kind === 'root') {
        await drain(entry);
        continue;
      }
      if (verdict.kind === 'refused') {
        refuse(verdict.path, verdict.reason, verdict.detail, String(header.type));
        await drain(entry);
        continue;
      }
      const { path, type } = verdict;
      refused.delete(path);
      refusedTypes.delete(path);
      if (options.filter.isExcluded(path, type === 'directory')) {
        const parent = parentOf(path);
        if (parent === '' || !options.filter.isExcluded(parent, true)) {
          ignored.add(path);
        }
        entries.delete(path);
        contents.delete(path);
        await drain(entry);
        continue;
      }
      const base: ManifestEntry = {
        path,
        type,
        mode: (header.mode ?? 0) & 0o7777,
        size: 0,
        mtimeMs: header.mtime?.getTime(),
      };
      if (type === 'file' && options.maxFileBytes !== undefined && (header.size ?? 0) > options.maxFileBytes) {
        // A large file the workspace already had is hashed in passing (never held) and kept when unchanged.
        const known = options.baseline.get(path);
        const unchanged = known?.type === 'file' && known.size === header.size && (await hashEntry(entry)) === known.hash;
        if (unchanged) {
          entries.set(path, { ...base, size: known.size, hash: known.hash });
          contents.delete(path);
        } else {
          refuse(path, 'too-large', `${formatBytes(header.size ?? 0)} is over the limit of ${formatBytes(options.maxFileBytes)} (agentSandbox.maxFileSizeMiB)`, String(header.type));
          await drain(entry);
        }
        continue;
      }
      if (type === 'file') {
        const { hash, content, size } = await readFileEntry(entry, options.baseline.get(path));
        entries.set(path, { ...base, size, hash });
        if (content !== undefined) {
          contents.set(path, content);
        } else {
          contents.delete(path);
        }
      } else {
        await drain(entry);
        contents.delete(path);
        entries.set(path, type === 'symlink' ? { ...base, size: Buffer.byteLength(header.linkname ?? ''), linkTarget: header.linkname ?? '' } : base);
      }
    }
  } catch (error) {
    if (SandboxError.is(error)) {
      throw error;
    }
    throw new SandboxError('engine-error', `The box\u2019s files could not be read as a tar archive: ${(error as Error).message}.`, { cause: error });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  if (options.signal?.aborted) {
    throw new SandboxError('cancelled', 'Reading the box\u2019s files was cancelled.');
  }

  // Below a symlink a real tree has nothing; such entries come from a crafted tar or a write through the link.
  for (const entry of [...entries.values()]) {
    for (const ancestor of ancestorsOf(entry.path)) {
      const holder = entries.get(ancestor);
      const refusedType = refusedTypes.get(ancestor);
      if (refusedType === 'symlink') {
        refuse(entry.path, 'type-change-under-symlink', `"${ancestor}" is a refused symbolic link`);
        break;
      }
      if (refusedType !== undefined && refusedType !== 'directory') {
        refuse(entry.path, 'invalid-name', `"${ancestor}" is a refused ${refusedType}, not a directory`);
        break;
      }
      if (holder?.type === 'symlink') {
        refuse(entry.path, 'type-change-under-symlink', `"${ancestor}" is a symbolic link to ${JSON.stringify(holder.linkTarget)}`);
        break;
      }
      if (holder?.type === 'file') {
        refuse(entry.path, 'invalid-name', `"${ancestor}" is a file, not a directory`);
        break;
      }
    }
  }
  // Dropping one link can change how another resolves, so repeat until stable.
  for (let changed = true; changed; ) {
    changed = false;
    for (const entry of [...entries.values()]) {
      if (entry.type === 'symlink' && !symlinkStaysInside(entry.path, entry.linkTarget ?? '', (p) => entries.get(p))) {
        refuse(entry.path, 'symlink-outside', `points to ${JSON.stringify(entry.linkTarget)}, which resolves outside the workspace`);
        changed = true;
      }
    }
  }
  const sortedRefused = [...refused.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { entries: new Map([...entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), contents, refused: sortedRefused, ignored: [...ignored].sort() };
}

type Verdict =
  | { kind: 'root' }
  | { kind: 'refused'; path: string; reason: RefusedReason; detail: string }
  | { kind: 'accepted'; path: string; type: EntryType };

function classify(header: tar.Header, prefix: string): Verdict {
  const raw = header.name ?? '';
  const display = raw.length === 0 ? '(empty name)' : raw.startsWith(prefix) ? raw.slice(prefix.length) || raw : raw;
  if (/^(\.\/?)+$/.test(raw)) {
    return { kind: 'root' };
  }
  const checked = checkRelative(raw);
  if (!checked.ok) {
    return { kind: 'refused', path: display, reason: checked.reason, detail: `name ${JSON.stringify(raw)}` };
  }
  let path = checked.path;
  if (prefix !== '') {
    const bare = prefix.slice(0, -1);
    if (path === bare) {
      return { kind: 'root' };
    }
    if (!path.startsWith(prefix)) {
      return { kind: 'refused', path: display, reason: 'invalid-name', detail: `name ${JSON.stringify(raw)} is not under ${prefix}` };
    }
    path = path.slice(prefix.length);
  }
  const mode = header.mode ?? 0;
  if ((mode & 0o6000) !== 0) {
    return { kind: 'refused', path, reason: 'setuid-setgid', detail: `mode ${mode.toString(8)} has the setuid or setgid bit` };
  }
  switch (header.type) {
    case 'file':
    case 'contiguous-file':
      return { kind: 'accepted', path, type: 'file' };
    case 'directory':
      return { kind: 'accepted', path, type: 'directory' };
    case 'symlink': {
      const target = header.linkname ?? '';
      if (target.length === 0 || target.includes('\0')) {
        return { kind: 'refused', path, reason: 'invalid-name', detail: 'symbolic link with an empty or invalid target' };
      }
      if (target.startsWith('/')) {
        return { kind: 'refused', path, reason: 'symlink-outside', detail: `points to the absolute path ${JSON.stringify(target)}` };
      }
      return { kind: 'accepted', path, type: 'symlink' };
    }
    case 'link':
      return { kind: 'refused', path, reason: 'hard-link', detail: `hard link to ${JSON.stringify(header.linkname ?? '')}` };
    case 'character-device':
    case 'block-device':
      return { kind: 'refused', path, reason: 'device', detail: `${header.type} ${header.devmajor ?? 0}:${header.devminor ?? 0}` };
    case 'fifo':
      return { kind: 'refused', path, reason: 'fifo', detail: 'named pipe' };
    default:
      return { kind: 'refused', path, reason: 'invalid-name', detail: `unsupported entry type ${String(header.type)}` };
  }
}

function formatBytes(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${mib.toFixed(1)} MiB`;
}

function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

/**
 * Hashes a file entry and keeps its bytes only when they may differ from the baseline: always for a new path
 * or a different size, and for the same size until the hash shows they are equal.
 */
async function readFileEntry(
  entry: AsyncIterable<unknown>,
  baseline: ManifestEntry | undefined,
): Promise<{ hash: string; size: number; content?: Buffer }> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of entry) {
    const buffer = chunk as Buffer;
    hash.update(buffer);
    chunks.push(buffer);
    size += buffer.length;
  }
  const digest = hash.digest('hex');
  const unchanged = baseline?.type === 'file' && baseline.hash === digest;
  return { hash: digest, size, content: unchanged ? undefined : Buffer.concat(chunks, size) };
}

async function hashEntry(entry: AsyncIterable<unknown>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of entry) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

async function drain(entry: AsyncIterable<unknown>): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  for await (const _ of entry) {
    // Discarded: the entry is refused, excluded or has no body.
  }
}
