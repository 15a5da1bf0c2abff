import { promises as fs } from 'node:fs';
import { createTwoFilesPatch } from 'diff';
import type { ChangeEntry } from '../shared/protocol';
import { isBinary } from '../core/changes/binary';
import { hostPath } from '../core/workspace/hostPath';

/** Reads what the diff compares: the workspace's file now, and the box's proposal. */
export interface DiffSources {
  folder: string;
  readProposal(relPath: string): Promise<Buffer>;
}

/**
 * The pending changes as a git-style unified diff: the workspace's current files (`a/`) against the box's
 * (`b/`), which is what `agent-sandbox apply` would write. Binary files and directories get a line saying so.
 */
export async function unifiedDiff(changes: readonly ChangeEntry[], sources: DiffSources): Promise<string> {
  const parts: string[] = [];
  for (const change of [...changes].sort((a, b) => a.path.localeCompare(b.path))) parts.push(await fileDiff(change, sources));
  return parts.join('');
}

async function fileDiff(c: ChangeEntry, sources: DiffSources): Promise<string> {
  const from = c.kind === 'renamed' && c.fromPath ? c.fromPath : c.path;
  const header = [`diff --git a/${from} b/${c.path}`];
  if (c.kind === 'renamed') header.push(`rename from ${from}`, `rename to ${c.path}`);
  if (c.kind === 'added' && c.mode !== undefined) header.push(`new file mode ${octal(c, c.mode)}`);
  if (c.kind === 'deleted') header.push(`deleted file mode ${octal(c, c.baseMode ?? c.mode ?? 0o644)}`);
  if (
    (c.kind === 'mode' || c.kind === 'modified' || c.kind === 'renamed') &&
    c.baseMode !== undefined &&
    c.mode !== undefined &&
    c.baseMode !== c.mode
  ) {
    header.push(`old mode ${octal(c, c.baseMode)}`, `new mode ${octal(c, c.mode)}`);
  }
  if (c.type === 'directory') return `${header.join('\n')}\n# directory ${c.kind}\n`;
  if (c.kind === 'mode') return `${header.join('\n')}\n`;
  const before = c.kind === 'added' ? undefined : await workspaceContent(sources.folder, from);
  const after = c.kind === 'deleted' ? undefined : c.type === 'symlink' ? Buffer.from(c.linkTarget ?? '') : await sources.readProposal(c.path);
  if (c.binary || isBinaryContent(before) || isBinaryContent(after)) {
    return `${header.join('\n')}\nBinary files ${before ? `a/${from}` : '/dev/null'} and ${after ? `b/${c.path}` : '/dev/null'} differ\n`;
  }
  const patch = createTwoFilesPatch(
    before ? `a/${from}` : '/dev/null',
    after ? `b/${c.path}` : '/dev/null',
    before?.toString('utf8') ?? '',
    after?.toString('utf8') ?? '',
    '',
    '',
    { context: 3 },
  );
  // createTwoFilesPatch starts with an `Index:`-less "===" banner in some versions; keep from the --- line on.
  const body = patch.slice(patch.indexOf('--- '));
  return `${header.join('\n')}\n${body.replace(/\t$/gm, '')}`;
}

async function workspaceContent(folder: string, relPath: string): Promise<Buffer | undefined> {
  try {
    const target = hostPath(folder, relPath);
    const stat = await fs.lstat(target);
    if (stat.isSymbolicLink()) return Buffer.from(await fs.readlink(target));
    return stat.isFile() ? await fs.readFile(target) : undefined;
  } catch {
    return undefined;
  }
}

/** Binary as the change set judges it (a NUL byte or not UTF-8): the diff then says so instead of mangling it. */
function isBinaryContent(content: Buffer | undefined): boolean {
  return content !== undefined && isBinary(content);
}

/** Git's mode of an entry: its type bits and permissions, e.g. `100644`, `100755`, `120000`. */
function octal(c: ChangeEntry, mode: number): string {
  return ((c.type === 'symlink' ? 0o120000 : 0o100000) | (mode & 0o7777)).toString(8);
}
