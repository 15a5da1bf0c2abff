import { lstatSync } from 'node:fs';
import * as path from 'node:path';
import { runBoxHelperRaw } from '../box/boxExec';
import type { DockerEngine } from '../docker/dockerEngine';
import { SandboxError } from '../errors';
import type { Manifest } from '../workspace/manifest';
import { readGitHead, type GitHeadInfo } from '../workspace/gitHead';
import { hostPath } from '../workspace/hostPath';

/**
 * `agentSandbox.gitHistory` `fresh`: the box gets no host `.git`; each host repository (the folder's, and
 * nested ones such as `vendor/lib`) is made anew in the box, from the files the box already holds, as one
 * commit: exactly what was mirrored (deny-listed files were never sent, so they are not in it), with HEAD's
 * message, author and date, HEAD's branch name and the remotes without credentials. No history, stash, reflog,
 * hook, index or other ref of the host enters, so `git show HEAD~1:.env` has nothing to show, while
 * `git status`, `git diff` and `git log -1` work for agents (an agent's edit shows in `git diff`).
 *
 * It runs as the box user, in the box, right after the mirror and before anything else runs there (it only
 * reads what was sent and writes `.git`). The box's `.git` is box-only state: the sync filter leaves `.git`
 * out of the scan, of catch-up and of collect, so it is never proposed and the host's is never sent.
 */

/** The most repositories made in one box (the folder's and nested ones, shallowest kept first). */
export const MAX_FRESH_REPOSITORIES = 100;
const FRESH_TIMEOUT_MS = 300_000;

/** Exit code of the script when the image has no git. */
const NO_GIT = 127;

/**
 * Args: directory (relative to /workspace, '' = root), branch, author name, email, date, message, then
 * remote name/URL pairs. Everything reaches git as a positional argument or an environment variable, never as
 * shell text. No template (so no hooks), no system config, hooks off, no signing.
 */
export const FRESH_REPOSITORY_SCRIPT = `
command -v git >/dev/null 2>&1 || exit ${NO_GIT}
dir=$1 branch=$2 message=$6
export GIT_AUTHOR_NAME="$3" GIT_AUTHOR_EMAIL="$4" GIT_AUTHOR_DATE="$5" GIT_COMMITTER_NAME="$3" GIT_COMMITTER_EMAIL="$4" GIT_COMMITTER_DATE="$5"
export GIT_CONFIG_NOSYSTEM=1
shift 6
cd "/workspace/$dir" || exit 3
rm -rf .git
git init -q --template= . >/dev/null || exit 4
git symbolic-ref HEAD "refs/heads/$branch" || exit 5
git add -A . 2>/dev/null || exit 6
printf '%s' "$message" | git -c commit.gpgsign=false -c core.hooksPath=/dev/null commit -q --allow-empty --allow-empty-message --no-verify -F - || exit 7
while [ $# -ge 2 ]; do git remote add "$1" "$2" || exit 8; shift 2; done
`;

/** Where the folder has repositories: directories (workspace-relative, '' = the folder) holding a `.git`. */
export function findRepositories(folder: string, scanned: Manifest): string[] {
  const found: string[] = [];
  for (const dir of ['', ...[...scanned.values()].filter((e) => e.type === 'directory').map((e) => e.path)]) {
    try {
      const stat = lstatSync(path.join(hostPath(folder, dir), '.git'));
      if (stat.isDirectory() || stat.isFile()) found.push(dir);
    } catch {
      // No repository here.
    }
  }
  return found;
}

/** What the box's git is after `makeFreshRepositories`, and why, when it is not what was asked for. */
export interface FreshRepositoriesResult {
  made: string[];
  note?: string;
}

/**
 * Makes the fresh repositories in the box, deepest first (so a nested one is a gitlink in its parent, as a
 * repository inside a repository is on the host). A repository that fails is removed again and named in the
 * note; with no git in the image the box gets no `.git` at all.
 */
export async function makeFreshRepositories(
  engine: DockerEngine,
  containerId: string,
  folder: string,
  repositories: string[],
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<FreshRepositoriesResult> {
  const made: string[] = [];
  const failed: string[] = [];
  const kept = [...repositories].sort((a, b) => depth(a) - depth(b)).slice(0, MAX_FRESH_REPOSITORIES);
  const left = repositories.length - kept.length;
  for (const dir of kept.sort((a, b) => depth(b) - depth(a) || (a < b ? -1 : 1))) {
    const head = readGitHead(hostPath(folder, dir));
    const result = await runBoxHelperRaw(engine, containerId, FRESH_REPOSITORY_SCRIPT, freshArgs(dir, head), {
      signal,
      timeoutMs: FRESH_TIMEOUT_MS,
      maxStdoutBytes: 64 * 1024,
    });
    if (result.exitCode === NO_GIT) {
      return { made: [], note: 'the image has no git, so the box has no .git: git commands do not work there (the workspace files are all present)' };
    }
    if (result.exitCode !== 0) {
      failed.push(dir || '.');
      log(`[session] making a fresh repository at /workspace/${dir} failed (exit ${result.exitCode}): ${result.stderr.trim().slice(0, 300)}`);
      await runBoxHelperRaw(engine, containerId, 'rm -rf "/workspace/$1/.git"', [dir], { signal, maxStdoutBytes: 1024 }).catch((error) => {
        if (SandboxError.is(error, 'cancelled')) throw error;
      });
      continue;
    }
    made.push(dir);
  }
  const notes: string[] = [];
  if (failed.length > 0) notes.push(`no repository could be made in the box at ${failed.join(', ')}`);
  if (left > 0) notes.push(`${left} nested repositories beyond the first ${MAX_FRESH_REPOSITORIES} got no .git in the box`);
  return notes.length > 0 ? { made, note: notes.join('; ') } : { made };
}

/** The script's arguments for one repository; neutral values where the host's HEAD could not be read. */
export function freshArgs(dir: string, head: GitHeadInfo | undefined): string[] {
  const branch = head?.branch !== undefined && /^[A-Za-z0-9._/-]{1,200}$/.test(head.branch) && !head.branch.includes('..') ? head.branch : 'main';
  const commit = head?.commit ?? {
    authorName: 'Agent Sandbox',
    authorEmail: 'agent-sandbox@localhost',
    authorDate: `${Math.floor(Date.now() / 1000)} +0000`,
    message: 'Workspace as mirrored into the sandbox box\n',
  };
  const args = [dir, branch, commit.authorName || 'unknown', commit.authorEmail || 'unknown', commit.authorDate, commit.message];
  for (const remote of head?.remotes ?? []) args.push(remote.name, remote.url);
  return args;
}

function depth(dir: string): number {
  return dir === '' ? 0 : dir.split('/').length;
}
