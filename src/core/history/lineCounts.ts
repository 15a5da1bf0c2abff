import { diffLines } from 'diff';

/** Files larger than this (either side) are not counted: the history stays cheap to record. */
export const LINE_COUNT_MAX_BYTES = 512 * 1024;
/** A diff that takes longer is abandoned and the file is recorded without counts. */
const LINE_COUNT_TIMEOUT_MS = 200;

/**
 * Lines added and removed going from `before` to `after` (either may be empty: an added or deleted file).
 * `undefined` when a side is too large or the diff is too expensive to finish quickly.
 */
export function countLineChanges(before: string, after: string): { added: number; removed: number } | undefined {
  if (Buffer.byteLength(before) > LINE_COUNT_MAX_BYTES || Buffer.byteLength(after) > LINE_COUNT_MAX_BYTES) return undefined;
  if (before === after) return { added: 0, removed: 0 };
  if (before === '') return { added: countLines(after), removed: 0 };
  if (after === '') return { added: 0, removed: countLines(before) };
  const parts = diffLines(before, after, { timeout: LINE_COUNT_TIMEOUT_MS });
  if (!parts) return undefined;
  let added = 0;
  let removed = 0;
  for (const part of parts) {
    if (part.added) added += part.count ?? countLines(part.value);
    else if (part.removed) removed += part.count ?? countLines(part.value);
  }
  return { added, removed };
}

/** Number of lines, counting a last line without a newline. */
export function countLines(text: string): number {
  if (text === '') return 0;
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return text.endsWith('\n') ? n : n + 1;
}
