import { diffLines } from 'diff';

/**
 * Hunks are computed on the extension host (CodeLens, accept/reject hunk), which every extension shares: like the
 * history's line counts (`core/history/lineCounts.ts`), the diff is bounded. A file over either limit is decided
 * as a whole; the reason says which limit it hit.
 */
export const HUNK_LIMITS: HunkLimits = { maxBytes: 1024 * 1024, timeoutMs: 250 };

export interface HunkLimits {
  /** Either side larger than this (UTF-8 bytes) is not split into hunks. */
  maxBytes: number;
  /** A line diff that takes longer is abandoned. */
  timeoutMs: number;
}

/** The hunks of a file, or why it can only be decided as a whole. */
export type HunkSplit = { hunks: Hunk[]; wholeFileOnly?: undefined } | { hunks?: undefined; wholeFileOnly: string };

/** One region where the proposal differs from the base text. Line numbers are 0-based; counts may be 0. */
export interface Hunk {
  /** Position among the file's hunks, from 0. */
  index: number;
  /** First line of the region in the base text, and how many base lines it replaces. */
  baseStart: number;
  baseCount: number;
  /** First line of the region in the proposal, and how many proposal lines it holds. */
  proposalStart: number;
  proposalCount: number;
  /** A unified-diff style header for people and records, e.g. `@@ -3,2 +3,3 @@`. */
  header: string;
}

/** Lines with their terminators, so joining them gives the text back byte for byte. */
export function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/**
 * The hunks that turn `base` into `proposal`, each a maximal run of removed and added lines; or, when a side is
 * over `limits.maxBytes` or the diff does not finish within `limits.timeoutMs`, why the file is decided whole.
 */
export function computeHunks(base: string, proposal: string, limits: HunkLimits = HUNK_LIMITS): HunkSplit {
  const largest = Math.max(Buffer.byteLength(base), Buffer.byteLength(proposal));
  if (largest > limits.maxBytes) {
    return { wholeFileOnly: `the file is over ${formatBytes(limits.maxBytes)} (${formatBytes(largest)}), too large to split into hunks` };
  }
  const parts = diffLines(base, proposal, { timeout: limits.timeoutMs });
  if (!parts) {
    return { wholeFileOnly: `its changes are too scattered to split into hunks within ${limits.timeoutMs} ms` };
  }
  const hunks: Hunk[] = [];
  let baseLine = 0;
  let proposalLine = 0;
  let open: Hunk | undefined;
  const close = () => {
    if (!open) return;
    const { baseStart, baseCount, proposalStart, proposalCount } = open;
    open.header = `@@ -${baseStart + 1},${baseCount} +${proposalStart + 1},${proposalCount} @@`;
    hunks.push(open);
    open = undefined;
  };
  for (const part of parts) {
    const count = splitLines(part.value).length;
    if (!part.added && !part.removed) {
      close();
      baseLine += count;
      proposalLine += count;
      continue;
    }
    open ??= { index: hunks.length, baseStart: baseLine, baseCount: 0, proposalStart: proposalLine, proposalCount: 0, header: '' };
    if (part.removed) {
      open.baseCount += count;
      baseLine += count;
    } else {
      open.proposalCount += count;
      proposalLine += count;
    }
  }
  close();
  return { hunks };
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, '')} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}

/** `base` with one hunk of the proposal taken in (accepting that hunk into the workspace). */
export function acceptHunk(base: string, proposal: string, hunk: Hunk): string {
  const baseLines = splitLines(base);
  const proposalLines = splitLines(proposal);
  const replacement = proposalLines.slice(hunk.proposalStart, hunk.proposalStart + hunk.proposalCount);
  return [...baseLines.slice(0, hunk.baseStart), ...replacement, ...baseLines.slice(hunk.baseStart + hunk.baseCount)].join('');
}

/** `proposal` with one hunk put back to the base (rejecting that hunk in the box). */
export function rejectHunk(base: string, proposal: string, hunk: Hunk): string {
  const baseLines = splitLines(base);
  const proposalLines = splitLines(proposal);
  const original = baseLines.slice(hunk.baseStart, hunk.baseStart + hunk.baseCount);
  return [...proposalLines.slice(0, hunk.proposalStart), ...original, ...proposalLines.slice(hunk.proposalStart + hunk.proposalCount)].join('');
}
