import type { ChangeEntry, ChangeKind, ChangeSet, EgressSettings, ExecResult, PatchedFile } from '../../shared/protocol';

// What the agent tools tell the model, as plain text. Pure functions (no `vscode`), so unit tests pin them.

/** Characters of stdout and of stderr a runCommand result keeps (their ends: that is where errors are). */
export const OUTPUT_TAIL_CHARS = { stdout: 12_000, stderr: 6_000 } as const;
/** Lines a readFile result holds without a range; more asks the model to read in ranges. */
export const READ_MAX_LINES = 2_000;
/** Changed paths listed one by one; beyond it, a count. */
const MAX_LISTED = 200;

/**
 * The box's network in a few words, true for the current setting: `no network`, or `network: only npm, github +
 * 2 hosts` with `allowlist`. Shown where a person or an agent decides what to run.
 */
export function networkPhrase(egress: Partial<EgressSettings>): string {
  if (egress.network !== 'allowlist') return 'no network';
  const named = [...(egress.networkPresets ?? []), ...(egress.allowedHosts ?? [])];
  if (named.length === 0) return 'network: allowlist, no host allowed';
  const shown = named.slice(0, 3).join(', ');
  return `network: only ${shown}${named.length > 3 ? ` + ${named.length - 3} more` : ''}`;
}

/** Closing line of every tool that changes the box: the model must not claim its work is in the workspace. */
export const REVIEW_NOTE = 'These changes exist only in the sandbox box; the developer reviews them before any reaches the real workspace.';

/**
 * What one run did, from the change sets collected before and after it: `changed` holds the entries new or
 * different in `after`, with their kind as this run saw it (a pending added file the run edits again was
 * `modified` by it); `settled` the pending entries the run undid (the path is back to the workspace's version).
 */
export function changesByRun(before: ChangeSet, after: ChangeSet): { changed: ChangeEntry[]; settled: ChangeEntry[] } {
  const seen = new Set(before.changes.map(entryKey));
  const beforeByPath = new Map(before.changes.map((c) => [c.path, c]));
  const stillPending = new Set(after.changes.map((c) => c.path));
  return {
    changed: after.changes.filter((c) => !seen.has(entryKey(c))).map((c) => asSeenByRun(c, beforeByPath.get(c.path))),
    settled: before.changes.filter((c) => !stillPending.has(c.path)),
  };
}

function asSeenByRun(after: ChangeEntry, before: ChangeEntry | undefined): ChangeEntry {
  if (!before) return after;
  const { fromPath: _fromPath, ...rest } = after;
  if (after.kind === 'deleted') return { ...rest, kind: 'deleted' };
  if (before.kind === 'deleted') return { ...rest, kind: 'added' };
  const sameContent = after.hash === before.hash && after.linkTarget === before.linkTarget && after.type === before.type;
  return { ...rest, kind: sameContent ? 'mode' : 'modified', baseMode: before.mode };
}

function entryKey(c: ChangeEntry): string {
  return JSON.stringify([c.path, c.kind, c.fromPath, c.type, c.mode, c.hash, c.linkTarget]);
}

/** One line per change, e.g. `renamed old.txt → new.txt`, `added bin.dat (binary, 3 bytes)`. */
export function describeChange(c: ChangeEntry): string {
  const notes: string[] = [];
  if (c.type === 'directory') notes.push('directory');
  if (c.type === 'symlink') notes.push(`symlink → ${c.linkTarget ?? '?'}`);
  if (c.binary && c.kind !== 'deleted') notes.push(`binary, ${c.size ?? 0} bytes`);
  if (c.kind === 'mode' || (c.mode !== undefined && c.baseMode !== undefined && c.mode !== c.baseMode)) {
    notes.push(`mode ${octal(c.baseMode)} → ${octal(c.mode)}`);
  }
  if (c.flags.length > 0) notes.push(`needs a deliberate approval: ${c.flags.join(', ')}`);
  const what = c.kind === 'renamed' ? `renamed ${c.fromPath} → ${c.path}` : c.kind === 'mode' ? `mode changed ${c.path}` : `${c.kind} ${c.path}`;
  return notes.length > 0 ? `${what} (${notes.join('; ')})` : what;
}

function octal(mode: number | undefined): string {
  return mode === undefined ? '?' : (mode & 0o7777).toString(8);
}

function listChanges(changes: ChangeEntry[]): string[] {
  const lines = changes.slice(0, MAX_LISTED).map((c) => `- ${describeChange(c)}`);
  if (changes.length > MAX_LISTED) lines.push(`- … and ${changes.length - MAX_LISTED} more`);
  return lines;
}

/** Counts by kind, e.g. `2 added, 1 modified`; `no changes` when empty. */
export function countByKind(changes: ChangeEntry[]): string {
  const order: ChangeKind[] = ['added', 'modified', 'deleted', 'renamed', 'mode'];
  const parts = order
    .map((kind) => [kind, changes.filter((c) => c.kind === kind).length] as const)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${n} ${kind === 'mode' ? 'mode change' + (n === 1 ? '' : 's') : kind}`);
  return parts.length > 0 ? parts.join(', ') : 'no changes';
}

/** The pendingChanges tool's text: counts, each path, flags, refused entries, what sync leaves out. */
export function summarizeChangeSet(changeSet: ChangeSet): string {
  const lines = [`Pending changes in the sandbox box (awaiting the developer's review): ${countByKind(changeSet.changes)}.`];
  lines.push(...listChanges(changeSet.changes));
  const flagged = changeSet.changes.filter((c) => c.flags.length > 0).length;
  if (flagged > 0) {
    lines.push(`${flagged} of them can run code on the developer's machine or touch .git/ and need a deliberate approval.`);
  }
  if (changeSet.refused.length > 0) {
    lines.push(`Refused (unsafe entries that will never be applied): ${changeSet.refused.length}.`);
    for (const r of changeSet.refused.slice(0, MAX_LISTED)) lines.push(`- ${r.path}: ${r.reason}${r.detail ? ` (${r.detail})` : ''}`);
  }
  if (changeSet.ignoredCount > 0) {
    lines.push(`${changeSet.ignoredCount} changed path(s) are excluded from sync (secrets or exclude globs) and are never proposed.`);
  }
  return lines.join('\n');
}

/** The last `max` characters, with a marker saying how much was cut before them. */
export function tail(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.length - max;
  return `[… ${cut} earlier characters cut …]\n${text.slice(cut)}`;
}

/** The runCommand tool's text: how it ended, output tails, and the files this run changed. */
export function formatRunResult(
  command: string,
  result: ExecResult,
  byRun: { changed: ChangeEntry[]; settled: ChangeEntry[] },
  pending: ChangeEntry[],
): string {
  const lines = [`$ ${command}`, `${describeOutcome(result)} after ${(result.durationMs / 1000).toFixed(1)} s.`];
  if (result.policy.offline) lines.push('It ran offline (network "none"): the box\'s gateway refused every connection while it ran.');
  if (result.truncated) lines.push("Output beyond the box's limit (agentSandbox.outputLimitKiB) was dropped.");
  lines.push(...runNotes(result));
  lines.push('', section('stdout', result.stdout, OUTPUT_TAIL_CHARS.stdout), '', section('stderr', result.stderr, OUTPUT_TAIL_CHARS.stderr), '');
  if (byRun.changed.length === 0 && byRun.settled.length === 0) {
    lines.push('This run changed no files.');
  } else {
    if (byRun.changed.length > 0) lines.push(`Files this run changed (${countByKind(byRun.changed)}):`, ...listChanges(byRun.changed));
    if (byRun.settled.length > 0) {
      lines.push(`No longer pending (this run undid them; they match the workspace again): ${byRun.settled.map((c) => c.path).join(', ')}`);
    }
  }
  if (result.conflicts.length > 0) {
    lines.push(`Changed both in the workspace and in the box (the box kept its version; the developer resolves it): ${result.conflicts.join(', ')}`);
  }
  lines.push(`All pending changes in the box: ${countByKind(pending)}. ${REVIEW_NOTE}`);
  return lines.join('\n');
}

function section(name: string, text: string, max: number): string {
  if (text === '') return `${name}: (empty)`;
  return `${name}${text.length > max ? ` (last ${max} characters)` : ''}:\n${tail(text, max).replace(/\n$/, '')}`;
}

/** What a person or an agent should know about how a run ended beyond its outcome: each note names the fix. */
export function runNotes(result: ExecResult): string[] {
  const notes = [workspaceFullNote(result)];
  if (result.gitNote) notes.push(`Git in the box: ${result.gitNote}.`);
  if (result.leftoversKilled) {
    notes.push(
      `Processes this run left running filled the box's process limit (agentSandbox.pidsLimit), e.g. a fork bomb; they were killed. Background processes that stay within the limit keep running.`,
    );
  }
  return notes.filter((note): note is string => note !== undefined);
}

/** Why a failed run probably failed when it left /workspace full, and the setting that fixes it; else undefined. */
export function workspaceFullNote(result: ExecResult): string | undefined {
  const full = result.workspaceFull;
  if (!full) return undefined;
  const mib = (kib: number): string => `${Math.round(kib / 1024)} MiB`;
  const state = `/workspace in the box is full (${mib(full.usedKiB)} used of ${mib(full.sizeKiB)}, ${mib(full.availableKiB)} free): writes fail with "No space left on device" (ENOSPC).`;
  return full.volume === 'tmpfs'
    ? `${state} Delete files in the box or raise agentSandbox.workspaceSizeMiB and reset the box (Agent Sandbox: Reset Box) to get a bigger one.`
    : `${state} The workspace volume is on the Docker engine's disk (agentSandbox.workspaceVolume "disk"): free space there.`;
}

export function describeOutcome(result: ExecResult): string {
  switch (result.outcome) {
    case 'exited':
      return `Exited with code ${result.exitCode}`;
    case 'timeout':
      return 'Timed out; its whole process tree was killed';
    case 'cancelled':
      return 'Cancelled; its whole process tree was killed';
    case 'oom':
      return "Killed: out of memory (the box's memory limit is agentSandbox.memoryMiB)";
    case 'engine-error':
      return `Failed in the engine: ${result.error ?? 'unknown error'}`;
  }
}

/**
 * Lines `startLine`..`endLine` (1-based, inclusive) of a file's text, with a header naming the range. Without a
 * range, the first `READ_MAX_LINES` lines.
 */
export function sliceLines(filePath: string, content: string, startLine?: number, endLine?: number): string {
  const lines = content.split('\n');
  // A trailing newline ends the last line; it does not start another.
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  const total = content === '' ? 0 : lines.length;
  if (total === 0) return `${filePath} is empty.`;
  const ranged = startLine !== undefined || endLine !== undefined;
  const start = Math.max(1, Math.floor(startLine ?? 1));
  if (start > total) {
    throw new Error(`startLine ${start} is past the end of ${filePath}, which has ${total} line(s).`);
  }
  let end = Math.min(total, Math.floor(endLine ?? total));
  if (end < start) throw new Error(`endLine ${endLine} is before startLine ${start}.`);
  let note = '';
  if (end - start + 1 > READ_MAX_LINES) {
    end = start + READ_MAX_LINES - 1;
    note = `\n[… ${total - end} more line(s); read on with startLine ${end + 1}]`;
  }
  const header = ranged || end < total ? `${filePath}, lines ${start}-${end} of ${total}:` : `${filePath} (${total} line(s)):`;
  return `${header}\n${lines.slice(start - 1, end).join('\n')}${note}`;
}

/** The applyPatch tool's text. */
export function formatPatched(patched: PatchedFile[]): string {
  const lines = patched.map((p) => (p.kind === 'renamed' ? `- renamed ${p.fromPath} → ${p.path}` : `- ${p.kind} ${p.path}`));
  return [`Applied the patch to ${patched.length} file(s) in the sandbox box:`, ...lines, REVIEW_NOTE].join('\n');
}

/** True when text decoded from UTF-8 is not text: NUL bytes or invalid sequences. */
export function looksBinary(text: string): boolean {
  return text.includes('\0') || text.includes('\uFFFD');
}
