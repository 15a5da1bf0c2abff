import * as fs from 'node:fs';
import * as path from 'node:path';
import { SandboxError } from '../errors';
import { Disposable } from '../lifecycle';
import type { HistoryRecord } from './historyRecord';

/** The file new records go to; `history.1.jsonl` holds the one before the last rotation. */
export const HISTORY_FILE = 'history.jsonl';
export const ROTATED_HISTORY_FILE = 'history.1.jsonl';

export interface HistoryLimits {
  /** Bytes the history may take on disk (both files together); the current file rotates at half of it. */
  maxSizeBytes: number;
  /** Records that started longer ago than this are dropped (0 = kept until the size limit drops them). */
  maxAgeMs: number;
}

export interface HistoryStoreOptions extends HistoryLimits {
  /** Folder of the history files (created if missing): the extension's storage for the workspace. */
  dir: string;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * Per-workspace run history as JSON lines: one complete record per line, appended, never edited in place.
 * A record that changes (the run ended, a file was decided) is appended again whole, and the last line with
 * an id wins on reload, so a crash can lose at most the line being written. A torn or unreadable line is
 * skipped, never fatal. Size is bounded by rotation (`history.jsonl` → `history.1.jsonl`, replacing the
 * previous one), age by dropping old records on open and at each rotation.
 */
export class HistoryStore extends Disposable {
  private readonly byId = new Map<string, HistoryRecord>();
  private currentSize = 0;
  /** The current file ends mid-line (a torn write): the next append starts on a new line. */
  private needsNewline = false;
  private queue: Promise<void> = Promise.resolve();
  private limits: HistoryLimits;
  private readonly now: () => number;
  /** Lines skipped on open because they were torn or not a record. */
  skippedLines = 0;

  private constructor(
    readonly dir: string,
    options: HistoryStoreOptions,
  ) {
    super();
    this.limits = { maxSizeBytes: options.maxSizeBytes, maxAgeMs: options.maxAgeMs };
    this.now = options.now ?? Date.now;
  }

  /** Path of the file new records are appended to. */
  get file(): string {
    return path.join(this.dir, HISTORY_FILE);
  }

  private get rotatedFile(): string {
    return path.join(this.dir, ROTATED_HISTORY_FILE);
  }

  /** Opens (or creates) the history in `options.dir` and loads it. */
  static async open(options: HistoryStoreOptions): Promise<HistoryStore> {
    const store = new HistoryStore(options.dir, options);
    await store.load();
    return store;
  }

  /** Records, newest first. */
  records(): HistoryRecord[] {
    return [...this.byId.values()].sort((a, b) => b.startedAt - a.startedAt || (a.id < b.id ? 1 : -1));
  }

  get(id: string): HistoryRecord | undefined {
    return this.byId.get(id);
  }

  setLimits(limits: HistoryLimits): void {
    this.limits = { ...limits };
  }

  /** Adds or replaces the record with this id, on disk first. Writes are serialized in call order. */
  put(record: HistoryRecord): Promise<void> {
    const copy = structuredClone(record);
    return this.enqueue(async () => {
      const line = `${JSON.stringify(copy)}\n`;
      const bytes = Buffer.byteLength(line) + (this.needsNewline ? 1 : 0);
      if (this.currentSize > 0 && this.currentSize + bytes > this.limits.maxSizeBytes / 2) await this.rotate();
      await this.append(line);
      this.byId.set(copy.id, copy);
    });
  }

  /** Removes every record and both files' contents. */
  clear(): Promise<void> {
    return this.enqueue(async () => {
      await fs.promises.rm(this.rotatedFile, { force: true });
      await fs.promises.writeFile(this.file, '');
      this.currentSize = 0;
      this.needsNewline = false;
      this.byId.clear();
    });
  }

  /** Resolves when every write so far has reached the file. */
  flush(): Promise<void> {
    return this.enqueue(async () => undefined);
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const next = this.queue.then(work);
    // A failed write must not block the ones after it; the caller still sees its own failure.
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async append(line: string): Promise<void> {
    const text = this.needsNewline ? `\n${line}` : line;
    try {
      await fs.promises.appendFile(this.file, text, { encoding: 'utf8', mode: 0o600 });
    } catch (cause) {
      throw new SandboxError(
        'internal',
        `Could not write the run history at ${this.file}: ${(cause as Error).message}. Check that the folder is writable.`,
        { cause },
      );
    }
    this.needsNewline = false;
    this.currentSize += Buffer.byteLength(text);
  }

  /** The current file becomes the rotated one (replacing it); records only in the replaced file are gone. */
  private async rotate(): Promise<void> {
    await fs.promises.rename(this.file, this.rotatedFile);
    this.currentSize = 0;
    this.needsNewline = false;
    this.byId.clear();
    for (const record of this.readFile(this.rotatedFile)) this.byId.set(record.id, record);
    this.dropExpired();
  }

  private async load(): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true });
    this.skippedLines = 0;
    for (const file of [this.rotatedFile, this.file]) {
      for (const record of this.readFile(file)) this.byId.set(record.id, record);
    }
    try {
      const stat = await fs.promises.stat(this.file);
      this.currentSize = stat.size;
      if (stat.size > 0) {
        const handle = await fs.promises.open(this.file, 'r');
        try {
          const last = Buffer.alloc(1);
          await handle.read(last, 0, 1, stat.size - 1);
          this.needsNewline = last[0] !== 0x0a;
        } finally {
          await handle.close();
        }
      }
    } catch {
      this.currentSize = 0;
    }
    // Runs that were still going when the last session ended never got their end written.
    for (const record of this.byId.values()) {
      if (record.outcome === 'running') record.outcome = 'interrupted';
    }
    const expired = this.dropExpired();
    if (expired > 0 || this.currentSize > this.limits.maxSizeBytes / 2) await this.compact();
  }

  /** Rewrites the history as one file of the live records (temp file + rename: a crash leaves the old one). */
  private async compact(): Promise<void> {
    const records = this.records().reverse();
    const budget = this.limits.maxSizeBytes / 2;
    const lines: string[] = [];
    let size = 0;
    for (let i = records.length - 1; i >= 0; i--) {
      const line = `${JSON.stringify(records[i])}\n`;
      if (size + Buffer.byteLength(line) > budget && lines.length > 0) {
        for (const dropped of records.slice(0, i + 1)) this.byId.delete(dropped.id);
        break;
      }
      lines.unshift(line);
      size += Buffer.byteLength(line);
    }
    const temp = `${this.file}.${process.pid}.tmp`;
    await fs.promises.writeFile(temp, lines.join(''), { mode: 0o600 });
    await fs.promises.rename(temp, this.file);
    await fs.promises.rm(this.rotatedFile, { force: true });
    this.currentSize = size;
    this.needsNewline = false;
  }

  private dropExpired(): number {
    if (this.limits.maxAgeMs <= 0) return 0;
    const oldest = this.now() - this.limits.maxAgeMs;
    let dropped = 0;
    for (const [id, record] of this.byId) {
      if (record.startedAt < oldest) {
        this.byId.delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  private readFile(file: string): HistoryRecord[] {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return [];
    }
    const records: HistoryRecord[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const value = JSON.parse(line) as unknown;
        if (isRecord(value)) records.push(value);
        else this.skippedLines++;
      } catch {
        this.skippedLines++;
      }
    }
    return records;
  }
}

function isRecord(value: unknown): value is HistoryRecord {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<HistoryRecord>;
  return (
    typeof v.id === 'string' &&
    typeof v.command === 'string' &&
    typeof v.startedAt === 'number' &&
    typeof v.outcome === 'string' &&
    Array.isArray(v.files)
  );
}
