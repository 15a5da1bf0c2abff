import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeEntry, ChangeSet, EgressAttempt } from '../../shared/protocol';
import { runEgress } from '../../core/history/egressSummary';
import { DECIDED_MAX_FILE_BYTES, type DecidedContents } from '../../core/history/decidedContents';
import type { HistoryFileChange, HistoryRecord } from '../../core/history/historyRecord';
import type { HistoryStore } from '../../core/history/historyStore';
import { countLineChanges, LINE_COUNT_MAX_BYTES } from '../../core/history/lineCounts';
import { redactSecrets } from '../../core/history/redaction';
import { changedByRun, endedRecord, fileChange, recordDecision, startedRecord, type Redactor } from '../../core/history/runRecords';
import { Disposable } from '../../core/lifecycle';
import type { DecisionEvent, RunEndedEvent, RunEvents, RunStartedEvent } from '../runEvents';
import { errorText } from '../../core/util/errorText';

/** Files of one run whose added/removed lines are counted; the rest are listed without counts. */
const MAX_COUNTED_FILES = 100;

export interface HistoryRecorderDeps {
  /** Resolves to the opened store; events that arrive earlier wait for it. */
  store: Promise<HistoryStore>;
  runEvents: RunEvents;
  /** Reads the box's version of a changed file from the last collect. */
  readProposal(folder: string, relPath: string): Promise<Uint8Array>;
  /** The folder's pending changes as of the last collect (or restored from an earlier window), without a new collect. */
  pendingChanges(folder: string): Promise<ChangeSet>;
  /** What the folder's box tried to reach through its egress gateway so far (empty without one). */
  egressAttempts?(folder: string): Promise<EgressAttempt[]>;
  log: vscode.LogOutputChannel;
  /** Names of the host variables passed into the box (their values are redacted from records). */
  envAllowlist(): readonly string[];
  /** The host environment the allowlisted values come from. */
  env?: NodeJS.ProcessEnv;
  /** Where the two sides of each decided file are kept for the decided diff (bounded, pruned with the records). */
  decided?: DecidedContents;
}

/** A record was added or changed (`record`), or the whole history changed (`reset`: cleared or reloaded). */
export type HistoryChange = { record: HistoryRecord } | { reset: true };

/**
 * Turns the run event stream into history records: a run is stored the moment it starts and again when it
 * ends; a decision is stored on the newest run that changed the file. Events are handled one at a time in
 * arrival order, so a decision never overtakes the end of the run it belongs to.
 */
export class HistoryRecorder extends Disposable {
  private queue: Promise<unknown>;
  /** Per folder: the pending changes after the last run (to tell what the next run itself changed). */
  private readonly pending = new Map<string, Map<string, ChangeEntry>>();
  /**
   * For the first run of a folder this session: what was pending before it (changes restored from an earlier
   * window), asked for the moment the run starts, before its own collect can replace the answer.
   */
  private readonly pendingBefore = new Map<string, Promise<ChangeSet | undefined>>();
  private readonly changeEmitter = this._register(new vscode.EventEmitter<HistoryChange>());
  readonly onDidChange = this.changeEmitter.event;

  constructor(private readonly deps: HistoryRecorderDeps) {
    super();
    this.queue = deps.store;
    this._register(
      deps.runEvents.onDidStartRun((e) => {
        if (!this.pending.has(e.folder) && !this.pendingBefore.has(e.runId)) {
          this.pendingBefore.set(
            e.runId,
            deps.pendingChanges(e.folder).catch(() => undefined),
          );
        }
        void this.enqueue(`start ${e.runId}`, () => this.onStarted(e));
      }),
    );
    this._register(deps.runEvents.onDidEndRun((e) => this.enqueue(`end ${e.runId}`, () => this.onEnded(e))));
    this._register(deps.runEvents.onDidDecide((e) => this.enqueue(`decision on ${e.paths.length} path(s)`, () => this.onDecided(e))));
  }

  /** The store, once open. */
  get store(): Promise<HistoryStore> {
    return this.deps.store;
  }

  /** Resolves once every event received so far is stored. */
  async idle(): Promise<void> {
    await this.queue;
    await (await this.deps.store).flush();
  }

  async clear(): Promise<void> {
    await this.enqueue('clear', async (store) => {
      await store.clear();
      await this.deps.decided?.clear();
      this.changeEmitter.fire({ reset: true });
    });
  }

  private enqueue(what: string, work: (store: HistoryStore) => Promise<void>): Promise<void> {
    const next = this.queue.then(async () => work(await this.deps.store));
    this.queue = next.catch((error: unknown) => {
      this.deps.log.error(`[history] could not record ${what}: ${errorText(error)}`);
    });
    return this.queue as Promise<void>;
  }

  private async save(store: HistoryStore, record: HistoryRecord): Promise<void> {
    await store.put(record);
    this.changeEmitter.fire({ record });
  }

  private redactor(extraNames: readonly string[] = []): Redactor {
    const env = this.deps.env ?? process.env;
    const values = [...new Set([...this.deps.envAllowlist(), ...extraNames])].map((name) => env[name]).filter((v): v is string => !!v);
    return (text) => redactSecrets(text, values);
  }

  private async onStarted(event: RunStartedEvent): Promise<void> {
    const store = await this.deps.store;
    await this.save(store, startedRecord({ ...event }, this.redactor()));
  }

  private async onEnded(event: RunEndedEvent): Promise<void> {
    const store = await this.deps.store;
    // A run whose start was never seen (fired before the recorder existed) is still recorded.
    const started =
      store.get(event.runId) ??
      startedRecord(
        {
          runId: event.runId,
          folder: event.folder,
          source: 'command',
          command: '(unknown)',
          startedAt: event.endedAt - (event.result?.durationMs ?? 0),
        },
        this.redactor(),
      );
    const restoredBefore = this.pendingBefore.get(event.runId);
    this.pendingBefore.delete(event.runId);
    const record = endedRecord(started, event, this.redactor(event.result?.policy.envNames));
    const egress = await this.egressOf(record);
    if (egress) record.egress = egress;
    if (event.changeSet) {
      const restored = await restoredBefore;
      const before = this.pending.get(event.folder) ?? new Map((restored?.changes ?? []).map((c) => [c.path, c]));
      const changed = changedByRun(before, event.changeSet.changes);
      this.pending.set(event.folder, new Map(event.changeSet.changes.map((c) => [c.path, c])));
      record.files = await this.describeFiles(record.id, event.folder, changed, this.redactor(event.result?.policy.envNames));
      if (event.changeSet.refused.length) record.refused = event.changeSet.refused.length;
    }
    await this.save(store, record);
    await this.pruneDecided(store);
  }

  /** The run's egress summary from its box's gateway; undefined when there is none (or it cannot be asked). */
  private async egressOf(record: HistoryRecord) {
    if (!this.deps.egressAttempts) return undefined;
    try {
      const attempts = await this.deps.egressAttempts(record.folder);
      return runEgress(attempts, { id: record.id, startedAt: record.startedAt, endedAt: record.endedAt ?? Date.now() });
    } catch (error) {
      this.deps.log.debug(`[history] no egress summary for ${record.id}: ${errorText(error)}`);
      return undefined;
    }
  }

  private async onDecided(event: DecisionEvent): Promise<void> {
    const store = await this.deps.store;
    // Decided paths are no longer pending: accepted ones are the new baseline, rejected ones were reverted.
    const pending = this.pending.get(event.folder);
    for (const p of event.paths) pending?.delete(p);
    for (const record of recordDecision(store.records(), event)) {
      await this.save(store, record);
      const redact = this.redactor(record.policy?.envNames);
      for (const relPath of event.paths) {
        if (!this.deps.decided || !record.files.some((f) => f.path === relPath)) continue;
        // What the decision left in the workspace: the box's version, a merge, or the file as it was.
        const decided = await readSmallText(path.join(event.folder, ...relPath.split('/')), DECIDED_MAX_FILE_BYTES);
        if (decided === undefined) continue;
        await this.deps.decided.putDecided(record.id, relPath, decided === null ? null : redact(decided));
      }
    }
    await this.pruneDecided(store);
  }

  private async pruneDecided(store: HistoryStore): Promise<void> {
    await this.deps.decided?.prune(store.records().map((r) => r.id));
  }

  private async describeFiles(runId: string, folder: string, entries: ChangeEntry[], redact: Redactor): Promise<HistoryFileChange[]> {
    const files: HistoryFileChange[] = [];
    for (const [index, entry] of entries.entries()) {
      const read = index < MAX_COUNTED_FILES && entry.type === 'file' && !entry.binary && (entry.size ?? 0) <= LINE_COUNT_MAX_BYTES;
      const sides = read ? await this.readSides(folder, entry) : undefined;
      files.push(fileChange(entry, sides ? countLineChanges(sides.before, sides.after) : undefined));
      if (sides && this.deps.decided && !sides.after.includes('\0')) {
        // The box's side of the decided diff, kept now: once decided, the proposal is gone from the server.
        await this.deps.decided.putProposed(runId, entry.path, entry.kind === 'deleted' ? null : redact(sides.after));
      }
    }
    return files;
  }

  /** The workspace's and the box's text of a file; `undefined` when either cannot be read cheaply. */
  private async readSides(folder: string, entry: ChangeEntry): Promise<{ before: string; after: string } | undefined> {
    try {
      const before = entry.kind === 'added' ? '' : await readSmallText(path.join(folder, ...(entry.fromPath ?? entry.path).split('/')));
      const after = entry.kind === 'deleted' ? '' : Buffer.from(await this.deps.readProposal(folder, entry.path)).toString('utf8');
      if (before === undefined) return undefined;
      return { before: before ?? '', after };
    } catch (error) {
      this.deps.log.debug(`[history] no line counts for ${entry.path}: ${errorText(error)}`);
      return undefined;
    }
  }
}

/**
 * A workspace file's text when it is small: `null` when there is none, `undefined` when it is not a regular
 * file, is larger than `maxBytes` or holds a NUL byte (binary).
 */
async function readSmallText(file: string, maxBytes = LINE_COUNT_MAX_BYTES): Promise<string | null | undefined> {
  const stat = await fs.promises.lstat(file).catch(() => undefined);
  if (!stat) return null;
  if (!stat.isFile() || stat.size > maxBytes) return undefined;
  const bytes = await fs.promises.readFile(file);
  return bytes.includes(0) ? undefined : bytes.toString('utf8');
}
