import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HISTORY_FILE, ROTATED_HISTORY_FILE } from '../core/history/historyStore';
import { reviewDirName } from '../core/review/reviewStore';
import { ownFolderStorage } from './folderStorage';

/** What `adoptOwnStorage` did for a folder. */
export interface Adoption {
  /** The command line's storage it looked in. */
  from: string;
  /** The folder's pending review moved into the workspace storage. */
  review: boolean;
  /** The workspace storage has a review of the folder already: the command line's was left where it is. */
  reviewLeft: boolean;
  /** History lines (records) appended to the workspace storage's history. */
  historyLines: number;
}

/**
 * Brings what `agent-sandbox mcp` and the command line kept for `folder` while VS Code had never opened it (their
 * own storage, `ownFolderStorage`) into `storageDir`, the extension's workspace storage, so the window shows it:
 * the folder's review directory moves as it is (its content blobs are checked against their SHA-256 when loaded,
 * as any persisted review's are) unless the workspace storage has a review of that folder already, and the run
 * history's lines are appended to the workspace's history (the last line of a run wins, so order is kept).
 * Undefined when there is nothing to bring. Synchronous: it runs on activation, before the history opens.
 */
export function adoptOwnStorage(
  folder: string,
  storageDir: string,
  env: Record<string, string | undefined> = process.env,
  home = os.homedir(),
): Adoption | undefined {
  const from = ownFolderStorage(folder, env, home);
  if (!fs.existsSync(from)) return undefined;
  const adoption: Adoption = { from, review: false, reviewLeft: false, historyLines: 0 };

  const name = reviewDirName(folder);
  const ownReview = path.join(from, 'reviews', name);
  if (fs.existsSync(path.join(ownReview, 'review.json'))) {
    const target = path.join(storageDir, 'reviews', name);
    if (fs.existsSync(path.join(target, 'review.json'))) {
      adoption.reviewLeft = true;
    } else {
      fs.rmSync(target, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(target), { recursive: true });
      move(ownReview, target);
      adoption.review = true;
    }
  }

  const ownHistory = path.join(from, 'history');
  const lines: string[] = [];
  for (const file of [ROTATED_HISTORY_FILE, HISTORY_FILE]) {
    const source = path.join(ownHistory, file);
    if (!fs.existsSync(source)) continue;
    lines.push(
      ...fs
        .readFileSync(source, 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== ''),
    );
  }
  if (lines.length > 0) {
    const target = path.join(storageDir, 'history', HISTORY_FILE);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // A torn last line of the workspace's history must not swallow the first adopted record.
    const existing = fs.existsSync(target) ? fs.readFileSync(target) : Buffer.alloc(0);
    const separator = existing.length > 0 && existing[existing.length - 1] !== 0x0a ? '\n' : '';
    fs.appendFileSync(target, `${separator}${lines.join('\n')}\n`);
    adoption.historyLines = lines.length;
  }
  for (const file of [ROTATED_HISTORY_FILE, HISTORY_FILE]) fs.rmSync(path.join(ownHistory, file), { force: true });
  adoptImagesAndCacheTimes(from, storageDir);
  // What is left (empty directories, a review left in place) stays only if it still holds something.
  removeEmpty(from);
  return adoption.review || adoption.reviewLeft || adoption.historyLines > 0 ? adoption : undefined;
}

/**
 * The engine server's other state in that storage: image reports (by image id; the workspace's own copy wins),
 * digest pins (the workspace's pin of a reference wins, the command line's others are kept) and when package
 * caches were last used (the later time wins). None of it is worth a line in the log.
 */
function adoptImagesAndCacheTimes(from: string, storageDir: string): void {
  const reports = path.join(from, 'images', 'reports');
  if (fs.existsSync(reports)) {
    const target = path.join(storageDir, 'images', 'reports');
    fs.mkdirSync(target, { recursive: true });
    for (const name of fs.readdirSync(reports)) {
      if (fs.existsSync(path.join(target, name))) fs.rmSync(path.join(reports, name), { force: true });
      else move(path.join(reports, name), path.join(target, name));
    }
  }
  mergeJson(path.join(from, 'images', 'pins.json'), path.join(storageDir, 'images', 'pins.json'), (own, theirs) => ({
    version: 1,
    pins: { ...pinsOf(own), ...pinsOf(theirs) },
  }));
  mergeJson(path.join(from, 'cache-last-use.json'), path.join(storageDir, 'cache-last-use.json'), (own, theirs) => {
    const times: Record<string, number> = {};
    for (const source of [own, theirs]) {
      if (!source || typeof source !== 'object') continue;
      for (const [name, time] of Object.entries(source)) if (typeof time === 'number' && time > (times[name] ?? 0)) times[name] = time;
    }
    return times;
  });
}

function pinsOf(stored: unknown): Record<string, string> {
  const pins = (stored as { version?: unknown; pins?: unknown } | undefined)?.pins;
  return pins && typeof pins === 'object' ? (pins as Record<string, string>) : {};
}

/** Merges the JSON file `source` into `target` with `merge(source's, target's)`, then removes `source`. */
function mergeJson(source: string, target: string, merge: (own: unknown, theirs: unknown) => unknown): void {
  if (!fs.existsSync(source)) return;
  const read = (file: string): unknown => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    } catch {
      return undefined;
    }
  };
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, JSON.stringify(merge(read(source), fs.existsSync(target) ? read(target) : undefined)));
  fs.rmSync(source, { force: true });
}

/** Renames, or copies and removes across file systems. */
function move(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    fs.cpSync(from, to, { recursive: true });
    fs.rmSync(from, { recursive: true, force: true });
  }
}

/** Removes `dir` and its subdirectories bottom-up where they are empty. */
function removeEmpty(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeEmpty(path.join(dir, entry.name));
  if (fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
}
