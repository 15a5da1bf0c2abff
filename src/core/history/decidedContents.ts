import * as fs from 'node:fs';
import * as path from 'node:path';
import { SandboxError } from '../errors';
import { sha256 } from '../util/hash';

/** Folder of the decided contents, next to the history files. */
export const DECIDED_DIR = 'decided';
/** A side larger than this (UTF-8 bytes) is not kept: the diff of such a file is not offered from the history. */
export const DECIDED_MAX_FILE_BYTES = 256 * 1024;

/**
 * What a run's file looked like on each side of its decision, for the history's decided diff. Text only, and
 * redacted by the caller with the history's own rules before it gets here.
 */
export interface DecidedContent {
  /** Workspace-relative POSIX path. */
  path: string;
  /** The box's version when the run ended; `null` when the box deleted the file. */
  proposed: string | null;
  /** The workspace's version after the last decision; `null` when there is no file; absent until decided. */
  decided?: string | null;
}

/**
 * The contents behind the history's decided diffs: one small JSON file per run and path under `decided/`
 * (names are hashes, so no recorded path or run id reaches the file system), written with the history's mode
 * (0600). Bounded three ways: a side over `DECIDED_MAX_FILE_BYTES` is not kept, a run's folder goes when its
 * record leaves the history, and the oldest runs' folders go once all of them exceed the byte budget.
 */
export class DecidedContents {
  constructor(
    readonly dir: string,
    private maxBytes: number,
  ) {}

  setMaxBytes(maxBytes: number): void {
    this.maxBytes = maxBytes;
  }

  /** Keeps the box's version of `relPath` for run `runId` (when it fits); false when it was not kept. */
  async putProposed(runId: string, relPath: string, proposed: string | null): Promise<boolean> {
    if (!fits(proposed)) return false;
    await this.write(runId, { path: relPath, proposed });
    return true;
  }

  /**
   * Adds what was decided to a kept proposal; false when there is none (never kept, pruned) or the decided
   * side is too large (the entry then loses any earlier decided side, which is no longer true).
   */
  async putDecided(runId: string, relPath: string, decided: string | null): Promise<boolean> {
    const kept = await this.get(runId, relPath);
    if (!kept) return false;
    if (!fits(decided)) {
      await this.write(runId, { path: relPath, proposed: kept.proposed });
      return false;
    }
    await this.write(runId, { path: relPath, proposed: kept.proposed, decided });
    return true;
  }

  async get(runId: string, relPath: string): Promise<DecidedContent | undefined> {
    try {
      const value = JSON.parse(await fs.promises.readFile(this.fileOf(runId, relPath), 'utf8')) as unknown;
      return isDecidedContent(value) && value.path === relPath ? value : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Removes the folders of runs not in `liveIdsNewestFirst`, then the oldest runs' folders while all of them
   * together exceed the byte budget.
   */
  async prune(liveIdsNewestFirst: readonly string[]): Promise<void> {
    const live = new Map(liveIdsNewestFirst.map((id, index) => [hashOf(id), index]));
    let entries: string[];
    try {
      entries = await fs.promises.readdir(this.dir);
    } catch {
      return;
    }
    const kept: { name: string; rank: number; bytes: number }[] = [];
    for (const name of entries) {
      const rank = live.get(name);
      if (rank === undefined) {
        await fs.promises.rm(path.join(this.dir, name), { recursive: true, force: true });
        continue;
      }
      kept.push({ name, rank, bytes: await folderBytes(path.join(this.dir, name)) });
    }
    let total = 0;
    for (const entry of kept.sort((a, b) => a.rank - b.rank)) {
      total += entry.bytes;
      if (total > this.maxBytes) await fs.promises.rm(path.join(this.dir, entry.name), { recursive: true, force: true });
    }
  }

  async clear(): Promise<void> {
    await fs.promises.rm(this.dir, { recursive: true, force: true });
  }

  private fileOf(runId: string, relPath: string): string {
    return path.join(this.dir, hashOf(runId), `${hashOf(relPath)}.json`);
  }

  private async write(runId: string, content: DecidedContent): Promise<void> {
    const file = this.fileOf(runId, content.path);
    try {
      await fs.promises.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const temp = `${file}.${process.pid}.tmp`;
      await fs.promises.writeFile(temp, JSON.stringify(content), { mode: 0o600 });
      await fs.promises.rename(temp, file);
    } catch (cause) {
      throw new SandboxError(
        'internal',
        `Could not keep the decided contents of ${content.path} at ${this.dir}: ${(cause as Error).message}. Check that the folder is writable.`,
        { cause },
      );
    }
  }
}

function fits(text: string | null): boolean {
  return text === null || Buffer.byteLength(text) <= DECIDED_MAX_FILE_BYTES;
}

function hashOf(text: string): string {
  return sha256(text).slice(0, 32);
}

async function folderBytes(folder: string): Promise<number> {
  let bytes = 0;
  for (const name of await fs.promises.readdir(folder).catch(() => [] as string[])) {
    bytes += (await fs.promises.stat(path.join(folder, name)).catch(() => undefined))?.size ?? 0;
  }
  return bytes;
}

function isDecidedContent(value: unknown): value is DecidedContent {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<DecidedContent>;
  const side = (s: unknown) => s === null || typeof s === 'string';
  return typeof v.path === 'string' && side(v.proposed) && (v.decided === undefined || side(v.decided));
}
