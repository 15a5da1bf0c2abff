import { diffLines } from 'diff';

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

/** The hunks that turn `base` into `proposal`, each a maximal run of removed and added lines. */
export function computeHunks(base: string, proposal: string): Hunk[] {
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
  for (const part of diffLines(base, proposal)) {
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
  return hunks;
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
  return [
    ...proposalLines.slice(0, hunk.proposalStart),
    ...original,
    ...proposalLines.slice(hunk.proposalStart + hunk.proposalCount),
  ].join('');
}
