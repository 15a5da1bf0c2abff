import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import type { EntryType, RefusedEntry, RefusedReason } from '../../shared/protocol';
import { SandboxError } from '../errors';
import type { Manifest, ManifestEntry } from '../workspace/manifest';
import { checkRelative, isFaithfulName, parentOf, symlinkStaysInside } from '../workspace/pathGuard';
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
  const builder = new BoxTreeBuilder(options);
  await builder.addArchive(stream, { prefix: options.prefix });
  return builder.finish();
}

/** What a listing says about a path that has no content to read (see `BoxTreeBuilder.addListed`). */
export interface ListedHeader {
  /** Workspace-relative name, unchecked (the builder checks it as it checks a tar name). */
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'fifo' | 'character-device' | 'block-device' | 'link';
  mode: number;
  size?: number;
  linkname?: string;
  mtimeMs?: number;
}

/**
 * Builds one box tree from several sources — tar archives (the whole tree, or single paths), entries from a
 * listing (directories, symlinks, types refused from their type alone), baseline entries known unchanged, and
 * refusals decided outside — and runs the passes that need the whole tree (below a symlink or a non-directory,
 * symlinks resolving outside) once, in `finish`. Every source goes through the same name, type and mode checks
 * as `readBoxTree`, which is this builder fed one archive.
 */
export class BoxTreeBuilder {
  private readonly entries: Manifest = new Map();
  private readonly contents = new Map<string, Buffer>();
  private readonly refused = new Map<string, RefusedEntry>();
  private readonly ignored = new Set<string>();
  /** Header type of each refused entry: what lies below a refused link or non-directory is refused too. */
  private readonly refusedTypes = new Map<string, string>();

  constructor(private readonly options: Omit<ReadBoxTreeOptions, 'prefix'>) {}

  /** Refuses `path` with a reason decided by the caller (e.g. from a listing); `headerType` as in a tar. */
  refuse(path: string, reason: RefusedReason, detail: string, headerType?: string): void {
    if (headerType !== undefined) {
      this.refusedTypes.set(path, headerType);
    }
    this.entries.delete(path);
    this.contents.delete(path);
    this.refused.set(path, { path, reason, detail });
  }

  /** Takes the baseline's entry for `path` as the box's (the caller knows it unchanged: nothing is read). */
  adoptBaseline(path: string): void {
    const base = this.options.baseline.get(path);
    if (!base) throw new Error(`adoptBaseline: ${path} is not in the baseline`);
    this.refused.delete(path);
    this.refusedTypes.delete(path);
    this.contents.delete(path);
    this.entries.set(path, base);
  }

  /** Drops what is known about `path` (it vanished between listing and reading). */
  forget(path: string): void {
    this.entries.delete(path);
    this.contents.delete(path);
    this.refused.delete(path);
    this.refusedTypes.delete(path);
  }

  /** The entry accepted for `path` so far. */
  entry(path: string): ManifestEntry | undefined {
    return this.entries.get(path);
  }

  /**
   * Adds an entry from a listing, with the checks a tar header of the same name, type and mode gets (a `link`
   * is a name the caller found to be a second name of an inode, as the engine's tar would mark it). For a
   * `file` the content is not here: the entry is settled only when it is refused or excluded, or over
   * `maxFileBytes` with a size the baseline does not have (refused `too-large`). Otherwise nothing is added and
   * the checked path is returned: the caller adopts the baseline's entry or reads the file from an archive.
   */
  async addListed(listed: ListedHeader): Promise<string | undefined> {
    const header = {
      name: listed.name,
      type: listed.type,
      mode: listed.mode,
      size: listed.size ?? 0,
      linkname: listed.linkname,
      mtime: listed.mtimeMs === undefined ? undefined : new Date(listed.mtimeMs),
    } as tar.Header;
    if (listed.type === 'file') {
      const verdict = classify(header, '');
      if (verdict.kind === 'accepted' && !this.options.filter.isExcluded(verdict.path, false)) {
        const known = this.options.baseline.get(verdict.path);
        const tooLarge = this.options.maxFileBytes !== undefined && header.size! > this.options.maxFileBytes;
        if (!tooLarge || (known?.type === 'file' && known.size === header.size)) {
          return verdict.path;
        }
      }
    }
    await this.addEntry(header, undefined, '', '');
    return undefined;
  }

  /**
   * Adds every entry of a tar stream. `prefix` is stripped from names (as for `readBoxTree`); `under` is the
   * workspace-relative directory the archive's names are relative to ('' for the root), e.g. `src` for the
   * archive of `/workspace/src/a.ts`, whose one entry is named `a.ts`. With `only`, an entry whose path is not
   * in it fails the read (`engine-error`) before it is added; `seen` collects the paths read.
   */
  async addArchive(stream: Readable, options: { prefix: string; under?: string; only?: ReadonlySet<string>; seen?: Set<string> }): Promise<void> {
    const prefix = normalizePrefix(options.prefix);
    const under = options.under ?? '';
    const extract = tar.extract();
    const signal = this.options.signal;
    const onAbort = (): void => {
      extract.destroy(new SandboxError('cancelled', 'Reading the box\u2019s files was cancelled.'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.once('error', (error) => extract.destroy(error));
    stream.pipe(extract as unknown as NodeJS.WritableStream);
    try {
      for await (const entry of extract) {
        // tar-stream gives a size field it cannot decode (base-256 not starting 0x80/0xff) as null and then never
        // ends that entry's body: a broken archive, not something to wait for.
        if (typeof entry.header.size !== 'number') {
          throw new Error(`the entry ${JSON.stringify(entry.header.name)} has a size field that cannot be decoded`);
        }
        if (options.only !== undefined || options.seen !== undefined) {
          // With `only`, an archive must hold just the names asked for: checked before anything of it is taken.
          const verdict = classify(entry.header, prefix);
          const name = verdict.kind === 'root' ? '' : under === '' ? verdict.path : `${under}/${verdict.path}`;
          if (options.only !== undefined && !options.only.has(name)) {
            throw new SandboxError('engine-error', `The box's archive held ${JSON.stringify(name)}, which was not asked for.`);
          }
          options.seen?.add(name);
        }
        // tar-stream never ends the body of a directory whose header claims a size (it parses those bytes as
        // the next headers): waiting for it would hang the read, so a directory's body is never read.
        await this.addEntry(entry.header, entry.header.type === 'directory' ? undefined : entry, prefix, under);
      }
    } catch (error) {
      if (SandboxError.is(error)) {
        throw error;
      }
      throw new SandboxError('engine-error', `The box\u2019s files could not be read as a tar archive: ${(error as Error).message}.`, {
        cause: error,
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (signal?.aborted) {
      throw new SandboxError('cancelled', 'Reading the box\u2019s files was cancelled.');
    }
  }

  private async addEntry(header: tar.Header, body: AsyncIterable<unknown> | undefined, prefix: string, under: string): Promise<void> {
    const options = this.options;
    const verdict = classify(header, prefix);
    if (verdict.kind === 'root') {
      if (body) await drain(body);
      return;
    }
    const place = (p: string): string => (under === '' ? p : `${under}/${p}`);
    if (verdict.kind === 'refused') {
      this.refuse(place(verdict.path), verdict.reason, verdict.detail, String(header.type));
      if (body) await drain(body);
      return;
    }
    const type = verdict.type;
    const path = place(verdict.path);
    this.refused.delete(path);
    this.refusedTypes.delete(path);
    if (options.filter.isExcluded(path, type === 'directory')) {
      const parent = parentOf(path);
      if (parent === '' || !options.filter.isExcluded(parent, true)) {
        this.ignored.add(path);
      }
      this.entries.delete(path);
      this.contents.delete(path);
      if (body) await drain(body);
      return;
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
      const unchanged = body !== undefined && known?.type === 'file' && known.size === header.size && (await hashEntry(body)) === known.hash;
      if (unchanged) {
        this.entries.set(path, { ...base, size: known.size, hash: known.hash });
        this.contents.delete(path);
      } else {
        this.refuse(
          path,
          'too-large',
          `${formatBytes(header.size ?? 0)} is over the limit of ${formatBytes(options.maxFileBytes)} (agentSandbox.maxFileSizeMiB)`,
          String(header.type),
        );
        if (body) await drain(body);
      }
      return;
    }
    if (type === 'file') {
      if (!body) throw new Error(`addEntry: no content for the file ${path}`);
      const { hash, content, size } = await readFileEntry(body, options.baseline.get(path));
      this.entries.set(path, { ...base, size, hash });
      if (content !== undefined) {
        this.contents.set(path, content);
      } else {
        this.contents.delete(path);
      }
    } else {
      if (body) await drain(body);
      this.contents.delete(path);
      this.entries.set(
        path,
        type === 'symlink' ? { ...base, size: Buffer.byteLength(header.linkname ?? ''), linkTarget: header.linkname ?? '' } : base,
      );
    }
  }

  /** Runs the whole-tree passes and returns the tree. The builder is spent afterwards. */
  finish(): BoxTree {
    const { entries, refusedTypes } = this;
    // Below a symlink a real tree has nothing; such entries come from a crafted tar or a write through the link.
    // The shallowest offending ancestor of each directory is remembered: an entry's is its parent's, or the
    // parent itself (a directory refused in this pass has an offending ancestor, so the answer does not change).
    const offending = new Map<string, { ancestor: string; reason: RefusedReason; detail: string } | null>();
    const offenderOf = (dir: string): { ancestor: string; reason: RefusedReason; detail: string } | null => {
      if (dir === '') return null;
      const cached = offending.get(dir);
      if (cached !== undefined) return cached;
      let found = offenderOf(parentOf(dir));
      if (found === null) {
        const holder = entries.get(dir);
        const refusedType = refusedTypes.get(dir);
        if (refusedType === 'symlink') {
          found = { ancestor: dir, reason: 'type-change-under-symlink', detail: `"${dir}" is a refused symbolic link` };
        } else if (refusedType !== undefined && refusedType !== 'directory') {
          found = { ancestor: dir, reason: 'invalid-name', detail: `"${dir}" is a refused ${refusedType}, not a directory` };
        } else if (holder?.type === 'symlink') {
          found = {
            ancestor: dir,
            reason: 'type-change-under-symlink',
            detail: `"${dir}" is a symbolic link to ${JSON.stringify(holder.linkTarget)}`,
          };
        } else if (holder?.type === 'file') {
          found = { ancestor: dir, reason: 'invalid-name', detail: `"${dir}" is a file, not a directory` };
        }
      }
      offending.set(dir, found);
      return found;
    };
    for (const entry of [...entries.values()]) {
      const found = offenderOf(parentOf(entry.path));
      if (found !== null) {
        this.refuse(entry.path, found.reason, found.detail);
      }
    }
    // Dropping one link can change how another resolves, so repeat until stable.
    for (let changed = true; changed;) {
      changed = false;
      for (const entry of [...entries.values()]) {
        if (entry.type === 'symlink' && !symlinkStaysInside(entry.path, entry.linkTarget ?? '', (p) => entries.get(p))) {
          this.refuse(entry.path, 'symlink-outside', `points to ${JSON.stringify(entry.linkTarget)}, which resolves outside the workspace`);
          changed = true;
        }
      }
    }
    const sortedRefused = [...this.refused.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return {
      entries: new Map([...entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      contents: this.contents,
      refused: sortedRefused,
      ignored: [...this.ignored].sort(),
    };
  }
}

type Verdict =
  { kind: 'root' } | { kind: 'refused'; path: string; reason: RefusedReason; detail: string } | { kind: 'accepted'; path: string; type: EntryType };

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
      if (target.length === 0 || target.includes('\0') || !isFaithfulName(target)) {
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
  const trimmed = prefix
    .replace(/^(\.\/)+/, '')
    .replace(/^\/+/, '')
    .replace(/\/+$/, '');
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
  for await (const _ of entry) {
    // Discarded: the entry is refused, excluded or has no body.
  }
}
