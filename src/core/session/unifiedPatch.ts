import { applyPatch, parsePatch, type StructuredPatch } from 'diff';
import { SandboxError } from '../errors';
import { errorText } from '../util/errorText';

/** What one file section of a unified diff does. */
export interface FilePatch {
  /** `add`: from /dev/null; `delete`: to /dev/null; `modify`: same path; `rename`: patched and moved. */
  kind: 'add' | 'modify' | 'delete' | 'rename';
  /** Path the content is read from (absent for `add`), as written in the patch minus a git `a/` prefix. */
  oldPath?: string;
  /** Path the result is written to (absent for `delete`), minus a git `b/` prefix. */
  newPath?: string;
  /** The section as the `diff` package parsed it. */
  patch: StructuredPatch;
}

/** The outcome of applying a patch in memory: final content per path, `null` for paths to remove. */
export type PatchResult = Map<string, string | null>;

const DEV_NULL = '/dev/null';

/**
 * Parses a unified diff (plain `diff -u` or `git diff` output, one or several files). Refuses anything that is
 * not recognisably a patch: no file headers, no hunks, hunk line counts that do not add up.
 */
export function parseUnifiedPatch(text: string): FilePatch[] {
  if (text.trim() === '') throw malformed('The patch is empty.');
  let sections: StructuredPatch[];
  try {
    // The parser splits on \n; a patch written on Windows keeps its \r inside lines, which is what it means.
    sections = parsePatch(text);
  } catch (error) {
    throw malformed(`The patch could not be parsed: ${errorText(error)}.`);
  }
  const files = sections.filter((s) => s.oldFileName !== undefined || s.newFileName !== undefined || s.hunks.length > 0);
  if (files.length === 0) {
    throw malformed('No file sections found: a unified diff has "--- old" and "+++ new" header lines followed by "@@" hunks.');
  }
  return files.map((section, index) => toFilePatch(section, index));
}

function toFilePatch(section: StructuredPatch, index: number): FilePatch {
  const where = `file section ${index + 1}`;
  if (section.oldFileName === undefined || section.newFileName === undefined) {
    throw malformed(`The ${where} has no "--- old" / "+++ new" header pair.`);
  }
  if (section.hunks.length === 0) {
    throw malformed(
      `The ${where} (${section.newFileName}) has no "@@" hunks. Renames without content changes and mode changes are not patches: use the runCommand tool (e.g. mv, chmod).`,
    );
  }
  const oldRaw = section.oldFileName;
  const newRaw = section.newFileName;
  const isOldNull = oldRaw === DEV_NULL;
  const isNewNull = newRaw === DEV_NULL;
  if (isOldNull && isNewNull) throw malformed(`The ${where} goes from /dev/null to /dev/null.`);
  // git writes a/ and b/ prefixes; strip them only when the patch follows that convention.
  const gitStyle = (isOldNull || oldRaw.startsWith('a/')) && (isNewNull || newRaw.startsWith('b/'));
  const oldPath = isOldNull ? undefined : gitStyle ? oldRaw.slice(2) : oldRaw;
  const newPath = isNewNull ? undefined : gitStyle ? newRaw.slice(2) : newRaw;
  if (oldPath === '' || newPath === '') throw malformed(`The ${where} names an empty path.`);
  const kind = oldPath === undefined ? 'add' : newPath === undefined ? 'delete' : oldPath === newPath ? 'modify' : 'rename';
  return { kind, oldPath, newPath, patch: section };
}

/**
 * Applies parsed file patches to in-memory contents, all or nothing: `read` returns a file's current text or
 * `undefined` when it does not exist. Sections apply in order, so a later section sees an earlier one's result.
 * Context must match exactly (no fuzz): a patch made against other text is refused, naming the file and hunk.
 */
export async function applyFilePatches(files: FilePatch[], read: (path: string) => Promise<string | undefined>): Promise<PatchResult> {
  const state: PatchResult = new Map();
  const current = async (filePath: string): Promise<string | undefined> => {
    if (state.has(filePath)) return state.get(filePath) ?? undefined;
    return read(filePath);
  };
  for (const file of files) {
    const source = file.oldPath === undefined ? undefined : await current(file.oldPath);
    if (file.kind === 'add') {
      if ((await current(file.newPath!)) !== undefined) {
        throw noMatch(`The patch creates ${file.newPath}, but it already exists. Patch it as a modification (--- a/${file.newPath}) instead.`);
      }
    } else if (source === undefined) {
      throw new SandboxError('not-found', `The patch changes ${file.oldPath}, which does not exist in the box. Nothing was changed.`);
    }
    if (file.kind === 'rename' && (await current(file.newPath!)) !== undefined) {
      throw noMatch(`The patch moves ${file.oldPath} to ${file.newPath}, which already exists. Nothing was changed.`);
    }
    const result = applyPatch(source ?? '', file.patch, { fuzzFactor: 0 });
    if (result === false) {
      throw noMatch(
        `The patch does not apply to ${file.oldPath ?? file.newPath}: ${describeMismatch(source ?? '', file.patch)} Read the file again and make the patch against its current content. Nothing was changed.`,
      );
    }
    if (file.kind === 'delete') {
      if (result !== '') throw noMatch(`The patch deletes ${file.oldPath} but does not remove all of its lines. Nothing was changed.`);
      state.set(file.oldPath!, null);
      continue;
    }
    if (file.kind === 'rename') state.set(file.oldPath!, null);
    state.set(file.newPath!, result);
  }
  return state;
}

/** Names the first hunk whose lines are not in the file, so the model knows where its view of the file is stale. */
function describeMismatch(source: string, patch: StructuredPatch): string {
  for (let i = 0; i < patch.hunks.length; i++) {
    const single: StructuredPatch = { ...patch, hunks: [patch.hunks[i]] };
    if (applyPatch(source, single, { fuzzFactor: 0 }) === false) {
      const hunk = patch.hunks[i];
      return `hunk ${i + 1} of ${patch.hunks.length} (@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@) does not match the file's lines.`;
    }
  }
  return 'its hunks do not fit the file in order.';
}

function malformed(message: string): SandboxError {
  return new SandboxError('patch-malformed', `${message} Nothing was changed.`);
}

function noMatch(message: string): SandboxError {
  return new SandboxError('edit-no-match', message);
}
