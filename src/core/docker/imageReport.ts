import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type * as Dockerode from 'dockerode';
import * as tarStream from 'tar-stream';
import type { ImageReport, ImageToolKind } from '../../shared/protocol';
import { BOX_TOOL_PATH, LISTING_FIND_PATHS } from '../changes/boxListing';
import { SandboxError } from '../errors';
import type { DockerEngine } from './dockerEngine';

/**
 * The image report: what an image is, verified from the image itself rather than assumed from its name. The
 * file system comes from the engine's export of a container that is created and never started (so nothing of
 * the image runs, and an image without a shell is read like any other), parsed as tar headers; only the few
 * binaries the box uses as tools (find, tar and what they link to) are read, to tell GNU from busybox.
 */

/** Bytes that tell a tool binary's flavour (searched in the binary's content). */
const MARKERS: { kind: Exclude<ImageToolKind, 'none' | 'other'>; bytes: Buffer; tool: 'find' | 'tar' | 'any' }[] = [
  { kind: 'gnu', bytes: Buffer.from('GNU findutils'), tool: 'find' },
  { kind: 'gnu', bytes: Buffer.from('GNU tar'), tool: 'tar' },
  { kind: 'busybox', bytes: Buffer.from('BusyBox'), tool: 'any' },
];
const MARKER_OVERLAP = Math.max(...MARKERS.map((m) => m.bytes.length)) - 1;
/** Base names whose content is searched for markers (a symlink or hard link may point at any of these). */
const TOOL_NAMES = new Set(['find', 'tar', 'busybox', 'gfind', 'gtar', 'toybox']);
/** Binaries larger than this are not searched (no find or tar is this big). */
const MAX_TOOL_BYTES = 64 * 1024 * 1024;
/** Setuid/setgid files listed by name; the count covers all. */
const SETUID_LISTED = 50;
/** Symlink hops before a path counts as unresolvable (the kernel's limit). */
const MAX_LINK_HOPS = 40;
/** The export of a large image is read in full; past this it is abandoned and the call fails. */
export const REPORT_TIMEOUT_MS = 3 * 60_000;

/** What the report needs of an image's file system, from its tar headers (and tool binaries). */
export interface ImageTree {
  /** Symbolic links: path → target as stored. */
  symlinks: Map<string, string>;
  /** Hard links: path → the archive path they link to. */
  hardlinks: Map<string, string>;
  /** Regular files: path → mode (permission bits, setuid/setgid included). */
  files: Map<string, number>;
  /** Tool flavours of the searched binaries, by path. */
  kinds: Map<string, Exclude<ImageToolKind, 'none'>>;
  /** `path mode uid:gid` of setuid/setgid regular files, first `SETUID_LISTED`. */
  setuid: string[];
  setuidCount: number;
  entries: number;
}

/** `usr/bin/find` for `./usr/bin/find`, `/usr/bin/find/` and the like. */
function archivePath(name: string): string {
  return path.posix.normalize(`/${name}`).replace(/^\/+|\/+$/g, '');
}

/**
 * Reads an image file-system tar (an export) to its end: headers of every entry, content only of tool binaries.
 * Nothing is written anywhere.
 */
export async function readImageTree(tar: Readable, signal?: AbortSignal): Promise<ImageTree> {
  const tree: ImageTree = { symlinks: new Map(), hardlinks: new Map(), files: new Map(), kinds: new Map(), setuid: [], setuidCount: 0, entries: 0 };
  const extract = tarStream.extract();
  await new Promise<void>((resolve, reject) => {
    const fail = (error: unknown): void => {
      tar.destroy();
      extract.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(new SandboxError('cancelled', 'Reading the image was cancelled.'));
    signal?.addEventListener('abort', onAbort, { once: true });
    extract.on('entry', (header, stream, next) => {
      tree.entries++;
      const name = archivePath(header.name);
      const mode = header.mode ?? 0;
      let searched: Promise<Exclude<ImageToolKind, 'none'>> | undefined;
      if (header.type === 'symlink') tree.symlinks.set(name, header.linkname ?? '');
      else if (header.type === 'link') tree.hardlinks.set(name, archivePath(header.linkname ?? ''));
      else if (header.type === 'file' || header.type === 'contiguous-file') {
        tree.files.set(name, mode);
        if (mode & 0o6000) {
          tree.setuidCount++;
          if (tree.setuid.length < SETUID_LISTED) {
            tree.setuid.push(`/${name} ${(mode & 0o7777).toString(8)} ${header.uid ?? 0}:${header.gid ?? 0}`);
          }
        }
        if (TOOL_NAMES.has(path.posix.basename(name)) && (header.size ?? 0) <= MAX_TOOL_BYTES) {
          searched = toolKindOfContent(stream as unknown as NodeJS.ReadableStream, path.posix.basename(name));
        }
      }
      if (searched) {
        searched.then((kind) => {
          tree.kinds.set(name, kind);
          next();
        }, fail);
      } else {
        stream.on('end', () => next());
        stream.resume();
      }
    });
    extract.on('finish', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    extract.on('error', fail);
    tar.on('error', fail);
    tar.pipe(extract);
  });
  return tree;
}

/** The flavour of a tool binary from its content: `gnu`, `busybox`, else `other`. */
export function toolKindOfContent(stream: NodeJS.ReadableStream, baseName: string): Promise<Exclude<ImageToolKind, 'none'>> {
  const wanted = MARKERS.filter((m) => m.tool === 'any' || m.tool === (baseName.includes('tar') ? 'tar' : baseName.includes('find') ? 'find' : ''));
  let found: Exclude<ImageToolKind, 'none'> | undefined;
  let tail = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      if (found) return;
      const window = Buffer.concat([tail, chunk]);
      found = wanted.find((m) => window.includes(m.bytes))?.kind;
      tail = window.subarray(Math.max(0, window.length - MARKER_OVERLAP));
    });
    stream.on('end', () => resolve(found ?? 'other'));
    stream.on('error', reject);
  });
}

/**
 * Where an absolute path leads in the tree, following symbolic links in every component (absolute targets
 * from the image's root) and hard links at the end; `undefined` when a loop or too many hops.
 */
export function resolveInTree(tree: Pick<ImageTree, 'symlinks' | 'hardlinks'>, absolute: string): string | undefined {
  let pending = absolute.split('/').filter(Boolean);
  const done: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = [...done, part].join('/');
    const target = tree.symlinks.get(candidate);
    if (target === undefined) {
      done.push(part);
      continue;
    }
    if (++hops > MAX_LINK_HOPS) return undefined;
    if (target.startsWith('/')) done.length = 0;
    pending = [...target.split('/').filter(Boolean), ...pending];
  }
  const resolved = done.join('/');
  return tree.hardlinks.get(resolved) ?? resolved;
}

/** The flavour of the first of `paths` that is a file in the tree, or `none`. */
export function toolAt(tree: ImageTree, paths: readonly string[]): ImageToolKind {
  for (const p of paths) {
    const resolved = resolveInTree(tree, p);
    if (resolved === undefined || !tree.files.has(resolved)) continue;
    return tree.kinds.get(resolved) ?? 'other';
  }
  return 'none';
}

/** Whether the path resolves to a regular file with an execute bit. */
export function executableAt(tree: ImageTree, absolute: string): boolean {
  const resolved = resolveInTree(tree, absolute);
  const mode = resolved === undefined ? undefined : tree.files.get(resolved);
  return mode !== undefined && (mode & 0o111) !== 0;
}

/** Whether a reference names a digest (`name@sha256:…`, or an image id). */
export function isPinnedByDigest(reference: string): boolean {
  return /@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/.test(reference) || /^sha256:[0-9a-f]{64}$/.test(reference);
}

/** The report from inspect data and the tree; the collect and mirror paths are the ones `BoxSession` takes. */
export function buildImageReport(reference: string, inspect: Dockerode.ImageInspectInfo, tree: ImageTree, now = Date.now()): ImageReport {
  const hasShell = executableAt(tree, '/bin/sh');
  const find = toolAt(tree, LISTING_FIND_PATHS);
  const tar = toolAt(
    tree,
    BOX_TOOL_PATH.split(':').map((dir) => `${dir}/tar`),
  );
  const inspectAny = inspect as Dockerode.ImageInspectInfo & { Variant?: string };
  return {
    reference,
    id: inspect.Id,
    repoDigests: [...(inspect.RepoDigests ?? [])],
    pinnedByDigest: isPinnedByDigest(reference),
    sizeBytes: inspect.Size ?? 0,
    created: inspect.Created ?? '',
    platform: [inspect.Os, inspect.Architecture, inspectAny.Variant].filter(Boolean).join('/'),
    user: inspect.Config?.User ?? '',
    hasShell,
    find,
    tar,
    collectPath: collectPathOf(hasShell, find, tar),
    mirrorPath: 'the engine archive API (tar in, no shell needed)',
    setuidFiles: [...tree.setuid],
    setuidCount: tree.setuidCount,
    entries: tree.entries,
    inspectedAt: now,
  };
}

function collectPathOf(hasShell: boolean, find: ImageToolKind, tar: ImageToolKind): string {
  if (!hasShell) return 'the whole tree through the engine archive API on each collect (no /bin/sh)';
  if (find !== 'gnu') return 'the whole tree through the engine archive API on each collect (no GNU find to list changes)';
  return tar === 'none'
    ? 'a GNU find listing, then changed files one archive request each (no tar)'
    : "a GNU find listing, then changed files through the image's tar";
}

/**
 * Makes the report of an image id: inspect, then the file system of a created-never-started container
 * (no network, labelled so orphan cleanup removes it if this process dies), exported and parsed within
 * `REPORT_TIMEOUT_MS`. The container is removed in every case.
 */
export async function inspectImageReport(
  engine: DockerEngine,
  reference: string,
  imageId: string,
  options: { labels: Record<string, string>; signal?: AbortSignal },
): Promise<ImageReport> {
  const inspect = await engine.inspectImage(imageId, { signal: options.signal });
  if (!inspect) {
    throw new SandboxError('image-missing', `Image ${reference} (${imageId}) is not present locally. Pull it (Agent Sandbox: Pull Image).`, {
      setting: 'agentSandbox.image',
    });
  }
  const container = await engine.call(
    `creating a container to read image ${reference}`,
    (d, abortSignal) =>
      d.createContainer({
        Image: imageId,
        // Never started: the command only has to be accepted.
        Entrypoint: [],
        Cmd: ['/agent-sandbox-never-started'],
        NetworkDisabled: true,
        Labels: options.labels,
        HostConfig: { NetworkMode: 'none' },
        abortSignal,
      }),
    { signal: options.signal, image: imageId },
  );
  try {
    const tree = await engine.call(
      `reading the file system of image ${reference}`,
      async (d, abortSignal) => {
        const stream = (await d.getContainer(container.id).export({ abortSignal } as never)) as unknown as Readable;
        return readImageTree(stream, abortSignal);
      },
      { signal: options.signal, timeoutMs: REPORT_TIMEOUT_MS },
    );
    return buildImageReport(reference, inspect, tree);
  } finally {
    await engine
      .call('removing the image reading container', (d, abortSignal) => d.getContainer(container.id).remove({ force: true, abortSignal }))
      .catch(() => undefined);
  }
}
