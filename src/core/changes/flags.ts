import picomatch from 'picomatch';
import { findSecrets } from '../secrets/tokenPatterns';
import { isBinary } from './binary';
import { foldHostPath, touchesGitDirectory } from '../workspace/pathGuard';
import type { ChangeEntry, FlagReason } from '../../shared/protocol';

/**
 * Flags for changes that need a deliberate approval (design.md invariant 5): anything in a `.git` directory,
 * files the host runs or that steer what it runs (editor tasks, dev containers, CI, hooks, build files,
 * package scripts, lockfiles, package-manager config), files agents on the host read as instructions, and
 * files that become executable or writable by the group or others. Paths match in every spelling a host disk folds to them (`foldHostPath`).
 */

/** Globs (matched against the whole workspace-relative path, any depth, case-insensitive) for host-executed files. */
export const HOST_EXECUTED_GLOBS: readonly string[] = [
  '**/.vscode/*.json',
  '**/*.code-workspace',
  '**/.devcontainer/**',
  '**/.devcontainer.json',
  '**/.github/workflows/**',
  '**/.github/actions/**',
  '**/.gitlab-ci.yml',
  '**/.husky/**',
  '**/.githooks/**',
  '**/.pre-commit-config.yaml',
  '**/lefthook.yml',
  '**/lefthook.yaml',
  '**/.lefthook.yml',
  '**/.lefthook.yaml',
  '**/lefthook-local.yml',
  '**/.gitmodules',
  '**/Makefile',
  '**/GNUmakefile',
  '**/*.mk',
  '**/.envrc',
  '**/Dockerfile*',
  '**/*.dockerfile',
  '**/Containerfile*',
  '**/docker-compose*.yml',
  '**/docker-compose*.yaml',
  '**/compose.yml',
  '**/compose.yaml',
  '**/.npmrc',
  '**/.yarnrc',
  '**/.yarnrc.yml',
  '**/.pnpmfile.cjs',
  '**/bunfig.toml',
  '**/pip.conf',
  '**/.pypirc',
  '**/.tool-versions',
  '**/.nvmrc',
  ...[
    'package-lock.json',
    'npm-shrinkwrap.json',
    'yarn.lock',
    'pnpm-lock.yaml',
    'bun.lock',
    'bun.lockb',
    'Cargo.lock',
    'poetry.lock',
    'Pipfile.lock',
    'uv.lock',
    'pdm.lock',
    'Gemfile.lock',
    'go.sum',
    'composer.lock',
    'mix.lock',
    'Podfile.lock',
    'packages.lock.json',
    'gradle.lockfile',
    'flake.lock',
  ].map((lockfile) => `**/${lockfile}`),
];

/**
 * Globs (same matching) for files that agents and their tools on the host read as instructions or
 * configuration: custom agents, chat modes, prompts and instruction files, MCP server lists (which start
 * programs), agent CLIs' settings and hooks. A box-made change there steers what runs on the developer's
 * machine next time an agent starts, so it needs a deliberate approval like a build file.
 */
export const AGENT_INSTRUCTION_GLOBS: readonly string[] = [
  '**/.github/agents/**',
  '**/.github/chatmodes/**',
  '**/.github/prompts/**',
  '**/.github/instructions/**',
  '**/.github/copilot-instructions.md',
  '**/.vscode/mcp.json',
  '**/.mcp.json',
  '**/.claude/**',
  '**/CLAUDE.md',
  '**/CLAUDE.local.md',
  '**/AGENTS.md',
  '**/GEMINI.md',
  '**/.gemini/**',
  '**/.cursor/**',
  '**/.cursorrules',
  '**/.codex/**',
  '**/.aider*',
  '**/.aider*/**',
  '**/.continue/**',
];

const isHostExecutedPath = picomatch(HOST_EXECUTED_GLOBS as string[], { dot: true, nocase: true });
const isAgentInstructionPath = picomatch(AGENT_INSTRUCTION_GLOBS as string[], { dot: true, nocase: true });

/**
 * True for paths in a `.git` directory (or a `.git` file), at any depth (nested repositories have hooks too),
 * in every spelling a host disk folds to `.git` (`.GIT`, `.git.`, `git~1`, …), as the apply planner sees them.
 */
export function isGitInternal(relPath: string): boolean {
  return touchesGitDirectory(relPath);
}

/**
 * True when git or a tool on the host would run the file, or it changes what they run — as spelled or as a
 * host disk may resolve the name (`foldHostPath`: `.VSCODE/tasks.json`, `Makefile.`, `.envrc::$DATA`, NFD).
 */
export function isHostExecuted(relPath: string): boolean {
  return isHostExecutedPath(relPath) || isHostExecutedPath(foldHostPath(relPath));
}

/** True when agents or their tools on the host read the file as instructions or configuration (same folding). */
export function isAgentInstructions(relPath: string): boolean {
  return isAgentInstructionPath(relPath) || isAgentInstructionPath(foldHostPath(relPath));
}

/** What `flagsFor` needs of a change. */
export type FlaggableChange = Pick<ChangeEntry, 'path' | 'kind' | 'type'> & Partial<Pick<ChangeEntry, 'fromPath' | 'mode' | 'baseMode'>>;

/**
 * Flags for one change. `contents` lets `package.json` be judged by its `scripts`: flagged when they differ
 * between base and box, when either side is unparsable, or when a side is needed but not given.
 * Deletions are only flagged inside `.git` (removing a build file runs nothing).
 */
export function flagsFor(change: FlaggableChange, contents: { base?: Buffer; box?: Buffer } = {}): FlagReason[] {
  const flags: FlagReason[] = [];
  if (isGitInternal(change.path) || (change.fromPath !== undefined && isGitInternal(change.fromPath))) {
    flags.push('git-internal');
  }
  if (change.kind === 'added' || change.kind === 'modified' || change.kind === 'renamed') {
    if (isHostExecuted(change.path) || (isPackageJson(change.path) && packageScriptsChanged(change, contents))) {
      flags.push('host-executed');
    }
    if (isAgentInstructions(change.path)) {
      flags.push('agent-instructions');
    }
  }
  // A proposed file that holds a credential must not slip into the workspace (or a commit) unnoticed.
  if (change.kind !== 'deleted' && contents.box !== undefined && !isBinary(contents.box) && findSecrets(contents.box.toString('utf8')).length > 0) {
    flags.push('secret');
  }
  // Another user on the machine (or a process running as one) could then change what the host runs or reads.
  if (change.kind !== 'deleted' && change.type !== 'symlink' && change.mode !== undefined && (change.mode & 0o022 & ~(change.baseMode ?? 0)) !== 0) {
    flags.push('others-writable');
  }
  if (
    change.kind !== 'deleted' &&
    change.type === 'file' &&
    change.mode !== undefined &&
    (change.mode & 0o111) !== 0 &&
    ((change.baseMode ?? 0) & 0o111) === 0
  ) {
    flags.push('newly-executable');
  }
  return flags;
}

function isPackageJson(relPath: string): boolean {
  const folded = foldHostPath(relPath);
  return folded === 'package.json' || folded.endsWith('/package.json');
}

function packageScriptsChanged(change: FlaggableChange, contents: { base?: Buffer; box?: Buffer }): boolean {
  if (change.type !== 'file' || contents.box === undefined) {
    return true;
  }
  const boxScripts = scriptsOf(contents.box);
  if (boxScripts === undefined) {
    return true;
  }
  // A new package.json (or one renamed here) runs its scripts on the next install: flag it if it has any.
  if (change.kind !== 'modified') {
    return boxScripts !== NO_SCRIPTS;
  }
  if (contents.base === undefined) {
    return true;
  }
  const baseScripts = scriptsOf(contents.base);
  return baseScripts === undefined || baseScripts !== boxScripts;
}

const NO_SCRIPTS = '[]';

/** Canonical JSON of `scripts` (entries sorted by key; absent = none); undefined when the file is not a JSON object. */
function scriptsOf(content: Buffer): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content.toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return undefined;
  }
  const scripts = (parsed as { scripts?: unknown }).scripts;
  if (scripts === undefined) {
    return NO_SCRIPTS;
  }
  if (scripts === null || typeof scripts !== 'object' || Array.isArray(scripts)) {
    return JSON.stringify(scripts);
  }
  const sorted = Object.keys(scripts)
    .sort()
    .map((key) => [key, (scripts as Record<string, unknown>)[key]]);
  return JSON.stringify(sorted);
}
