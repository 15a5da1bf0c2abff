// Filtering and wording of runs for the panel. Pure (no DOM), so unit tests can hold it to its word.
import type { HistoryFileChange, HistoryRecord } from '../../core/history/historyRecord';
import { egressSearchText } from '../../core/history/egressSummary';

/** Outcome groups the panel filters by: `succeeded` / `failed` split the runs that exited by exit code. */
export type OutcomeFilter = 'all' | 'succeeded' | 'failed' | 'timeout' | 'oom' | 'cancelled' | 'engine-error' | 'running' | 'interrupted';
export type SourceFilter = 'all' | 'command' | 'tool' | 'terminal' | 'mcp';

export const OUTCOME_FILTERS: readonly { value: OutcomeFilter; label: string }[] = [
  { value: 'all', label: 'All outcomes' },
  { value: 'succeeded', label: 'Succeeded' },
  { value: 'failed', label: 'Failed (non-zero exit)' },
  { value: 'timeout', label: 'Timed out' },
  { value: 'oom', label: 'Out of memory' },
  { value: 'cancelled', label: 'Cancelled' },
  { value: 'engine-error', label: 'Engine error' },
  { value: 'running', label: 'Running' },
  { value: 'interrupted', label: 'Interrupted' },
];

export const SOURCE_FILTERS: readonly { value: SourceFilter; label: string }[] = [
  { value: 'all', label: 'All sources' },
  { value: 'command', label: 'Commands' },
  { value: 'tool', label: 'Agent tools' },
  { value: 'terminal', label: 'Terminals' },
  { value: 'mcp', label: 'MCP clients' },
];

export function outcomeGroup(record: HistoryRecord): Exclude<OutcomeFilter, 'all'> {
  if (record.outcome === 'exited') return record.exitCode === 0 ? 'succeeded' : 'failed';
  return record.outcome;
}

/** A short phrase for how the run ended, e.g. `exit 0`, `exit 2`, `timed out`. */
export function outcomeLabel(record: HistoryRecord): string {
  switch (record.outcome) {
    case 'exited':
      return `exit ${record.exitCode}`;
    case 'timeout':
      return 'timed out';
    case 'oom':
      return 'out of memory';
    case 'cancelled':
      return 'cancelled';
    case 'engine-error':
      return 'engine error';
    case 'running':
      return 'running';
    case 'interrupted':
      return 'interrupted';
  }
}

export function sourceLabel(record: HistoryRecord): string {
  const source = record.source === 'tool' ? 'agent tool' : record.source === 'mcp' ? 'MCP' : record.source;
  return record.agent ? `${source} · ${record.agent}` : source;
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Every word of `text` (case-insensitive) must occur in the run's command, agent, outcome, files, hosts contacted, output or error. */
export function matchesText(record: HistoryRecord, text: string): boolean {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const haystack = [
    record.command,
    record.agent ?? '',
    record.cwd ?? '',
    outcomeLabel(record),
    record.image?.reference ?? '',
    record.error?.message ?? '',
    ...record.files.map((f) => f.path),
    egressSearchText(record.egress),
    record.output?.stdout ?? '',
    record.output?.stderr ?? '',
  ]
    .join('\n')
    .toLowerCase();
  return words.every((word) => haystack.includes(word));
}

export function filterRuns(
  records: readonly HistoryRecord[],
  filter: { text: string; outcome: OutcomeFilter; source: SourceFilter },
): HistoryRecord[] {
  return records.filter(
    (r) =>
      (filter.outcome === 'all' || outcomeGroup(r) === filter.outcome) &&
      (filter.source === 'all' || r.source === filter.source) &&
      matchesText(r, filter.text),
  );
}

/**
 * What was decided about a file, in words: the whole-file decision, or every hunk decided since the last
 * whole-file one (`hunks: 1 accepted, 1 rejected`), with the time of the latest decision.
 */
export function decisionSummary(file: HistoryFileChange): { text: string; className: string; at?: number } {
  const last = file.decisions.at(-1);
  if (!last) return { text: 'pending', className: 'pending' };
  if (last.hunk) {
    let first = file.decisions.length;
    while (first > 0 && file.decisions[first - 1].hunk) first--;
    const hunks = file.decisions.slice(first);
    const parts = (['accepted', 'rejected'] as const)
      .map((word) => ({ word, count: hunks.filter((d) => d.decision === word).length }))
      .filter((p) => p.count > 0)
      .map((p) => `${p.count} ${p.word}`);
    return { text: `hunks: ${parts.join(', ')}`, className: parts.length > 1 ? 'partial' : hunks[0].decision, at: last.at };
  }
  return { text: last.decision === 'merged' ? 'merged by hand' : last.decision, className: last.decision, at: last.at };
}
