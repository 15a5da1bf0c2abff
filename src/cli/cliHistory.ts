import * as path from 'node:path';
import type { ChangeEntry, ChangeSet, ExecResult } from '../shared/protocol';
import type { HistoryRecord } from '../core/history/historyRecord';
import { HistoryStore } from '../core/history/historyStore';
import { redactSecrets } from '../core/history/redaction';
import { changedByRun, endedRecord, fileChange, startedRecord, type RunStart } from '../core/history/runRecords';

/** The history's limits as the extension's defaults (`agentSandbox.history.maxSizeMiB` 20, `maxAgeDays` 30). */
const LIMITS = { maxSizeBytes: 20 * 1024 * 1024, maxAgeMs: 30 * 24 * 60 * 60 * 1000 };

/** The run history in a folder's storage: the same `history/` directory and records the extension keeps. */
export async function openHistory(storageDir: string): Promise<HistoryStore> {
  return HistoryStore.open({ dir: path.join(storageDir, 'history'), ...LIMITS });
}

/**
 * Records the runs of the command line and of MCP clients served by its own engine server, as the extension's
 * recorder does: a record when the run starts, the same record completed when it ends, with the files it changed.
 */
export class CliHistoryRecorder {
  private readonly started = new Map<string, { record: HistoryRecord; before: Map<string, ChangeEntry> }>();

  constructor(private readonly store: HistoryStore) {}

  async start(start: RunStart, pendingBefore: ChangeSet | undefined): Promise<void> {
    const record = startedRecord(start, (text) => redactSecrets(text));
    this.started.set(start.runId, { record, before: new Map((pendingBefore?.changes ?? []).map((c) => [c.path, c])) });
    await this.store.put(record);
  }

  async end(end: {
    runId: string;
    endedAt: number;
    result?: ExecResult;
    error?: { reason?: string; message: string };
    changeSet?: ChangeSet;
  }): Promise<void> {
    const started = this.started.get(end.runId);
    if (!started) return;
    this.started.delete(end.runId);
    const record = endedRecord(started.record, end, (text) => redactSecrets(text));
    if (end.changeSet) {
      record.files = changedByRun(started.before, end.changeSet.changes)
        .map((entry) => fileChange(entry))
        .sort((a, b) => a.path.localeCompare(b.path));
      if (end.changeSet.refused.length > 0) record.refused = end.changeSet.refused.length;
    }
    await this.store.put(record);
  }
}
