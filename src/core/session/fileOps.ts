import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import type { FileOpRequest, PatchedFile } from '../../shared/protocol';
import type { Box } from '../box/box';
import { BOX_GID, BOX_UID } from '../box/boxConfig';
import { SandboxError } from '../errors';
import type { ManifestEntry } from '../workspace/manifest';
import { applyFilePatches, parseUnifiedPatch, type FilePatch } from './unifiedPatch';

/** Largest file an agent may read or edit through a file operation. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** What file operations need from a session: its box, brought up to date with the workspace first. */
export interface FileOpTarget {
  readonly box: Box;
  catchUp(signal?: AbortSignal): Promise<unknown>;
}

/**
 * File operations for agents, executed in the box (never on the host). Paths are workspace-relative and must
 * stay inside `/workspace`. Names reach the box as tar headers or NUL-separated stdin, never through a shell.
 */
export async function runFileOp(target: FileOpTarget, params: FileOpRequest.Params, signal?: AbortSignal): Promise<FileOpRequest.Result> {
  if (params.op === 'patch') {
    // Parsed and path-checked before the box is touched: a malformed patch changes nothing anywhere.
    const files = parseUnifiedPatch(params.patch).map((file) => ({
      ...file,
      oldPath: file.oldPath === undefined ? undefined : toBoxRelative(file.oldPath),
      newPath: file.newPath === undefined ? undefined : toBoxRelative(file.newPath),
    }));
    await target.catchUp(signal);
    return { patched: await applyPatchInBox(target.box, files, signal) };
  }
  const rel = toBoxRelative(params.path);
  await target.catchUp(signal);
  const { box } = target;
  switch (params.op) {
    case 'read': {
      const file = await readBoxFile(box, rel, signal);
      return { content: file.content.toString('utf8') };
    }
    case 'write': {
      const existing = await readBoxFile(box, rel, signal).catch((error) => {
        if (SandboxError.is(error, 'not-found')) return undefined;
        throw error;
      });
      await writeBoxFile(box, rel, Buffer.from(params.content, 'utf8'), existing?.mode ?? 0o644, signal);
      return {};
    }
    case 'edit': {
      const file = await readBoxFile(box, rel, signal);
      const text = file.content.toString('utf8');
      const count = countOccurrences(text, params.oldString);
      if (count === 0) {
        throw new SandboxError('edit-no-match', `The text to replace was not found in ${rel}. Read the file again and pass its exact current text.`);
      }
      if (count > 1 && !params.replaceAll) {
        throw new SandboxError(
          'edit-ambiguous',
          `The text to replace occurs ${count} times in ${rel}. Include more surrounding text so it matches once, or set replaceAll.`,
        );
      }
      const updated = params.replaceAll
        ? text.split(params.oldString).join(params.newString)
        : text.replace(params.oldString, () => params.newString);
      await writeBoxFile(box, rel, Buffer.from(updated, 'utf8'), file.mode, signal);
      return { replacements: params.replaceAll ? count : 1 };
    }
    case 'delete': {
      await readBoxFile(box, rel, signal, { allowDirectory: true });
      await removeInBox(box, [rel], signal);
      return {};
    }
    case 'list': {
      return { entries: await listBoxDirectory(box, rel, signal) };
    }
  }
}

/**
 * Applies parsed file patches to the box, all files or none: every file is read and patched in memory first,
 * then the results go in as one archive and removals follow. Existing files keep their mode.
 */
async function applyPatchInBox(box: Box, files: FilePatch[], signal?: AbortSignal): Promise<PatchedFile[]> {
  const modes = new Map<string, number>();
  const result = await applyFilePatches(files, async (rel) => {
    const file = await readBoxFileIfExists(box, rel, signal);
    if (!file) return undefined;
    modes.set(rel, file.mode);
    const text = file.content.toString('utf8');
    if (text.includes('\0') || text.includes('\uFFFD')) {
      throw new SandboxError('edit-no-match', `${rel} is a binary file; a text patch cannot change it. Nothing was changed.`);
    }
    return text;
  });
  const writes: { rel: string; content: Buffer; mode: number }[] = [];
  const removals: string[] = [];
  for (const [rel, content] of result) {
    if (content === null) removals.push(rel);
    else writes.push({ rel, content: Buffer.from(content, 'utf8'), mode: modes.get(rel) ?? modes.get(renamedFrom(files, rel) ?? '') ?? 0o644 });
  }
  await writeBoxFiles(box, writes, signal);
  await removeInBox(box, removals, signal);
  return files.map((file) =>
    file.kind === 'add'
      ? { path: file.newPath!, kind: 'added' as const }
      : file.kind === 'delete'
        ? { path: file.oldPath!, kind: 'deleted' as const }
        : file.kind === 'rename'
          ? { path: file.newPath!, kind: 'renamed' as const, fromPath: file.oldPath }
          : { path: file.newPath!, kind: 'modified' as const },
  );
}

function renamedFrom(files: FilePatch[], rel: string): string | undefined {
  return files.find((f) => f.kind === 'rename' && f.newPath === rel)?.oldPath;
}

/** Normalizes a workspace-relative path; refuses absolute paths and anything that leaves the workspace. */
export function toBoxRelative(input: string): string {
  if (input.includes('\0')) {
    throw new SandboxError('path-outside-workspace', 'A path must not contain NUL characters.');
  }
  const trimmed = input.replace(/^\/workspace(\/|$)/, '').replace(/\\/g, '/');
  if (path.posix.isAbsolute(trimmed)) {
    throw new SandboxError('path-outside-workspace', `"${input}" is outside the workspace. Use a path relative to the workspace root.`);
  }
  const normalized = path.posix.normalize(trimmed === '' ? '.' : trimmed);
  if (normalized === '..' || normalized.startsWith('../')) {
    throw new SandboxError('path-outside-workspace', `"${input}" is outside the workspace. Use a path relative to the workspace root.`);
  }
  return normalized === '.' ? '.' : normalized.replace(/\/$/, '');
}

/** Removes paths inside `/workspace`, names passed NUL-separated on stdin. */
export async function removeInBox(box: Box, relPaths: string[], signal?: AbortSignal): Promise<void> {
  if (relPaths.length === 0) return;
  const result = await box.exec({
    command: 'cd /workspace && xargs -0 rm -rf --',
    stdin: Buffer.from(relPaths.map((p) => `${p}\0`).join('')),
    signal,
    outputLimitBytes: 64 * 1024,
  });
  if (result.exitCode !== 0) {
    throw new SandboxError('engine-error', `Could not remove ${relPaths.length} path(s) in the box: ${result.stderr.trim()}`);
  }
}

/**
 * Gives entries the box received with no permission bits at all their mode 000, whatever extracted them (a tar
 * writer or extractor may treat 0 as "default", 644/755): without this a file or directory the developer locked
 * came back as a "mode change" after a run that changed nothing, and applying it widened the permissions. With `openedDirectories`
 * (the box's own tar extracted them, see `PackOptions.openDirectories`), directories without owner rwx get
 * their mode too. Deepest first (the box user owns them, but cannot reach into a directory already locked).
 */
export async function restoreZeroModesInBox(
  box: Box,
  sent: Iterable<ManifestEntry>,
  signal?: AbortSignal,
  options: { openedDirectories?: boolean } = {},
): Promise<void> {
  const locked = [...sent]
    .filter(
      (entry) =>
        entry.type !== 'symlink' &&
        ((entry.mode & 0o1777) === 0 || (options.openedDirectories === true && entry.type === 'directory' && (entry.mode & 0o700) !== 0o700)),
    )
    .sort((a, b) => b.path.split('/').length - a.path.split('/').length || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (locked.length === 0) return;
  // Pairs of mode and path, one chmod each (in order); `./` keeps a name starting with '-' from being an option.
  const result = await box.exec({
    command: 'cd /workspace && xargs -0 -n 2 chmod',
    stdin: Buffer.from(locked.map((e) => `${(e.mode & 0o1777).toString(8)}\0./${e.path}\0`).join('')),
    signal,
    outputLimitBytes: 64 * 1024,
  });
  if (result.exitCode !== 0) {
    throw new SandboxError('engine-error', `Could not give ${locked.length} locked path(s) their mode in the box: ${result.stderr.trim()}`);
  }
}

async function readBoxFile(
  box: Box,
  rel: string,
  signal?: AbortSignal,
  options: { allowDirectory?: boolean } = {},
): Promise<{ content: Buffer; mode: number }> {
  const file = await readBoxFileIfExists(box, rel, signal, options);
  if (!file) throw new SandboxError('not-found', `${rel} does not exist in the box.`);
  return file;
}

/** Like `readBoxFile`, but `undefined` when nothing exists at `rel` (anything else there that is not a file still throws). */
async function readBoxFileIfExists(
  box: Box,
  rel: string,
  signal?: AbortSignal,
  options: { allowDirectory?: boolean } = {},
): Promise<{ content: Buffer; mode: number } | undefined> {
  let stream: Readable;
  try {
    stream = await box.getArchive(`/workspace/${rel}`, signal);
  } catch (error) {
    if (SandboxError.is(error, 'not-found')) return undefined;
    throw error;
  }
  const extract = tar.extract();
  stream.pipe(extract);
  for await (const entry of extract) {
    const header = entry.header;
    if (header.type === 'directory' && options.allowDirectory) {
      entry.resume();
      stream.destroy();
      return { content: Buffer.alloc(0), mode: header.mode ?? 0o755 };
    }
    if (header.type !== 'file') {
      entry.resume();
      stream.destroy();
      throw new SandboxError('not-found', `${rel} is a ${header.type} in the box, not a file.`);
    }
    if ((header.size ?? 0) > MAX_FILE_BYTES) {
      entry.resume();
      stream.destroy();
      throw new SandboxError(
        'invalid-setting',
        `${rel} is ${header.size} bytes; file operations handle files up to ${MAX_FILE_BYTES} bytes. Use a command instead.`,
      );
    }
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    stream.destroy();
    return { content: Buffer.concat(chunks), mode: (header.mode ?? 0o644) & 0o7777 };
  }
  return undefined;
}

async function writeBoxFile(box: Box, rel: string, content: Buffer, mode: number, signal?: AbortSignal): Promise<void> {
  await writeBoxFiles(box, [{ rel, content, mode }], signal);
}

/** Writes files into `/workspace` as one archive, after creating their parent directories. */
async function writeBoxFiles(box: Box, files: { rel: string; content: Buffer; mode: number }[], signal?: AbortSignal): Promise<void> {
  if (files.length === 0) return;
  const dirs = [...new Set(files.map((f) => path.posix.dirname(f.rel)).filter((d) => d !== '.'))];
  if (dirs.length > 0) {
    // Created by the box user so the new directories are its own, as if the agent had made them; names go
    // NUL-separated on stdin, never through the shell.
    const result = await box.exec({
      command: 'cd /workspace && xargs -0 mkdir -p --',
      stdin: Buffer.from(dirs.map((d) => `${d}\0`).join('')),
      signal,
      outputLimitBytes: 64 * 1024,
    });
    if (result.exitCode !== 0) {
      throw new SandboxError('engine-error', `Could not create ${dirs.join(', ')} in the box: ${result.stderr.trim()}`);
    }
  }
  const pack = tar.pack();
  for (const { rel, content, mode } of files) {
    pack.entry({ name: rel, type: 'file', mode: mode & 0o777, uid: BOX_UID, gid: BOX_GID, size: content.length, mtime: new Date() }, content);
  }
  pack.finalize();
  // tar-stream's pack is a streamx stream; the archive API takes a Node stream.
  await box.putArchive(Readable.from(pack, { objectMode: false }), { path: '/workspace', signal });
}

async function listBoxDirectory(box: Box, rel: string, signal?: AbortSignal): Promise<string[]> {
  const result = await box.exec({
    command: 'cd /workspace && IFS= read -r d; cd -- "$d" && ls -1Ap',
    stdin: `${rel}\n`,
    signal,
    outputLimitBytes: 4 * 1024 * 1024,
  });
  if (result.exitCode !== 0) {
    throw new SandboxError('not-found', `Cannot list ${rel} in the box: ${result.stderr.trim() || 'not a directory'}`);
  }
  return result.stdout.split('\n').filter((line) => line !== '');
}

function countOccurrences(text: string, needle: string): number {
  if (needle === '') return 0;
  let count = 0;
  for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) count++;
  return count;
}
