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
  // What is left (empty directories, a review left in place) stays only if it still holds something.
  removeEmpty(from);
  return adoption.review || adoption.reviewLeft || adoption.historyLines > 0 ? adoption : undefined;
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
