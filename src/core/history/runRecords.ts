// Pure steps from run events to history records. The host's recorder feeds them; unit tests drive them directly.
import type { ChangeEntry, ExecResult } from '../../shared/protocol';
import type { FileDecision, HistoryFileChange, HistoryOutcome, HistoryRecord, HistorySource } from './historyRecord';
import { capText } from './redaction';

/** Bytes of each output stream kept in a record (the server's own cap may have cut it already). */
export const HISTORY_OUTPUT_CAP_BYTES = 64 * 1024;

export interface RunStart {
  runId: string;
  folder: string;
  source: HistorySource;
  agent?: string;
  command: string;
  cwd?: string;
  startedAt: number;
}

export interface RunEnd {
  endedAt: number;
  result?: ExecResult;
  error?: { reason?: string; message: string };
}

/** Redacts a piece of recorded text. */
export type Redactor = (text: string) => string;

export function startedRecord(start: RunStart, redact: Redactor): HistoryRecord {
  return {
    id: start.runId,
    folder: start.folder,
    source: start.source,
    ...(start.agent ? { agent: start.agent } : {}),
    command: redact(start.command),
    ...(start.cwd ? { cwd: start.cwd } : {}),
    startedAt: start.startedAt,
    outcome: 'running',
    files: [],
  };
}

/** The record once the run ended: outcome, output (redacted, then capped), image, policy. */
export function endedRecord(record: HistoryRecord, end: RunEnd, redact: Redactor, outputCapBytes = HISTORY_OUTPUT_CAP_BYTES): HistoryRecord {
  const { result, error } = end;
  const next: HistoryRecord = { ...record, endedAt: end.endedAt, durationMs: result?.durationMs ?? Math.max(0, end.endedAt - record.startedAt) };
  next.outcome = result ? result.outcome : outcomeOfError(error?.reason);
  next.exitCode = result ? result.exitCode : null;
  if (result) {
    const stdout = capText(redact(result.stdout), outputCapBytes);
    const stderr = capText(redact(result.stderr), outputCapBytes);
    next.output = { stdout: stdout.text, stderr: stderr.text, truncated: result.truncated || stdout.cut || stderr.cut };
    next.image = { ...result.image };
    next.runtime = result.policy.runtime;
    next.policy = { ...result.policy, envNames: [...result.policy.envNames] };
    if (result.conflicts.length) next.conflicts = [...result.conflicts];
    if (result.error) next.error = { reason: 'engine-error', message: redact(result.error) };
  }
  if (error) next.error = { ...(error.reason ? { reason: error.reason } : {}), message: redact(error.message) };
  return next;
}

function outcomeOfError(reason: string | undefined): HistoryOutcome {
  if (reason === 'cancelled') return 'cancelled';
  if (reason === 'timeout') return 'timeout';
  return 'engine-error';
}

/**
 * What one run changed: the entries of the change set after it that differ from the pending changes before
 * it. A change set is cumulative (everything not yet decided), so without this every run would list the
 * files of the runs before it.
 */
export function changedByRun(before: ReadonlyMap<string, ChangeEntry>, after: readonly ChangeEntry[]): ChangeEntry[] {
  return after.filter((entry) => {
    const previous = before.get(entry.path);
    return (
      !previous ||
      previous.kind !== entry.kind ||
      previous.hash !== entry.hash ||
      previous.mode !== entry.mode ||
      previous.fromPath !== entry.fromPath ||
      previous.linkTarget !== entry.linkTarget ||
      previous.type !== entry.type
    );
  });
}

export function fileChange(entry: ChangeEntry, counts?: { added: number; removed: number }): HistoryFileChange {
  return {
    path: entry.path,
    kind: entry.kind,
    ...(entry.fromPath ? { fromPath: entry.fromPath } : {}),
    binary: entry.binary,
    flags: [...entry.flags],
    ...(counts ? { added: counts.added, removed: counts.removed } : {}),
    decisions: [],
  };
}

/**
 * Attaches a decision on `paths` of `folder` to the newest run that changed each path. Returns the records
 * that changed (copies), to be stored again.
 */
export function recordDecision(
  recordsNewestFirst: readonly HistoryRecord[],
  decision: { folder: string; paths: readonly string[]; decision: FileDecision['decision']; at: number; hunk?: string },
): HistoryRecord[] {
  const changed = new Map<string, HistoryRecord>();
  for (const filePath of decision.paths) {
    const owner = recordsNewestFirst.find((r) => r.folder === decision.folder && r.files.some((f) => f.path === filePath));
    if (!owner) continue;
    const record = changed.get(owner.id) ?? { ...owner, files: owner.files.map((f) => ({ ...f, decisions: [...f.decisions] })) };
    const file = record.files.find((f) => f.path === filePath)!;
    file.decisions.push({ decision: decision.decision, at: decision.at, ...(decision.hunk ? { hunk: decision.hunk } : {}) });
    changed.set(owner.id, record);
  }
  return [...changed.values()];
}
