import { sha256 } from '../core/util/hash';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The extension's id: VS Code names its storage folder after it. */
export const EXTENSION_ID = 'agent-sandbox.agent-sandbox';

/** Overrides where the command line keeps a folder's pending review and history. */
export const STORAGE_VARIABLE = 'AGENT_SANDBOX_STORAGE';
/** A VS Code user data directory to look in first (e.g. a portable install or `--user-data-dir`). */
export const USER_DATA_VARIABLE = 'AGENT_SANDBOX_VSCODE_USER_DATA';

export interface FolderStorage {
  /** Directory given to the engine server as `storagePath`: reviews under `reviews/`, the run history under `history/`. */
  dir: string;
  /** `vscode`: the extension's own workspace storage of this folder, so VS Code shows what the command line left. */
  kind: 'override' | 'vscode' | 'own';
}

/** VS Code's user data directories on this platform (stable, Insiders, VSCodium). */
function userDataDirs(env: Record<string, string | undefined>, home: string): string[] {
  const names = ['Code', 'Code - Insiders', 'VSCodium'];
  const base =
    process.platform === 'darwin'
      ? path.join(home, 'Library', 'Application Support')
      : process.platform === 'win32'
        ? (env.APPDATA ?? path.join(home, 'AppData', 'Roaming'))
        : (env.XDG_CONFIG_HOME ?? path.join(home, '.config'));
  return [...(env[USER_DATA_VARIABLE] ? [env[USER_DATA_VARIABLE]!] : []), ...names.map((n) => path.join(base, n))];
}

/**
 * Where a folder's pending review and run history live for the command line: `$AGENT_SANDBOX_STORAGE`, else the
 * extension's workspace storage of that folder (found by the `workspace.json` VS Code writes beside it), else a
 * directory of the command line's own under `$XDG_STATE_HOME/agent-sandbox` (VS Code has never opened the folder).
 */
export async function folderStorage(
  folder: string,
  env: Record<string, string | undefined> = process.env,
  home = os.homedir(),
): Promise<FolderStorage> {
  if (env[STORAGE_VARIABLE]) return { dir: path.resolve(env[STORAGE_VARIABLE]!), kind: 'override' };
  for (const userData of userDataDirs(env, home)) {
    const found = await findWorkspaceStorage(path.join(userData, 'User', 'workspaceStorage'), folder);
    if (found) return { dir: path.join(found, EXTENSION_ID), kind: 'vscode' };
  }
  return { dir: ownFolderStorage(folder, env, home), kind: 'own' };
}

/**
 * The command line's own storage of a folder VS Code has never opened: `$XDG_STATE_HOME/agent-sandbox/folders/
 * <sha256(folder)>`. The extension looks here when it opens the folder (see adoptOwnStorage.ts).
 */
export function ownFolderStorage(folder: string, env: Record<string, string | undefined> = process.env, home = os.homedir()): string {
  const state = env.XDG_STATE_HOME || path.join(home, '.local', 'state');
  const digest = sha256(path.resolve(folder)).slice(0, 32);
  return path.join(state, 'agent-sandbox', 'folders', digest);
}

/** The workspace storage directory whose `workspace.json` names `folder`, newest first when several do. */
async function findWorkspaceStorage(root: string, folder: string): Promise<string | undefined> {
  const entries = await fs.readdir(root).catch(() => [] as string[]);
  const matches: { dir: string; mtime: number }[] = [];
  for (const entry of entries) {
    const dir = path.join(root, entry);
    try {
      const { folder: uri } = JSON.parse(await fs.readFile(path.join(dir, 'workspace.json'), 'utf8')) as { folder?: string };
      if (typeof uri === 'string' && uri.startsWith('file://') && samePath(new URL(uri), folder)) {
        matches.push({ dir, mtime: (await fs.stat(dir)).mtimeMs });
      }
    } catch {
      // Not a folder workspace, or unreadable: not ours.
    }
  }
  return matches.sort((a, b) => b.mtime - a.mtime)[0]?.dir;
}

function samePath(uri: URL, folder: string): boolean {
  let fsPath = decodeURIComponent(uri.pathname);
  if (process.platform === 'win32') fsPath = fsPath.replace(/^\/([a-zA-Z]:)/, '$1');
  const a = path.resolve(fsPath);
  const b = path.resolve(folder);
  return process.platform === 'linux' ? a === b : a.toLowerCase() === b.toLowerCase();
}
