import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import ignore from 'ignore';
import type { Ignore } from 'ignore';
import picomatch from 'picomatch';
import { SandboxError } from '../errors';
import { isSecretPath } from './secretPatterns';
import { hostPath } from './hostPath';

/** The setting whose globs `SyncFilter` validates; errors name it so the host can point at it. */
export const EXCLUDE_SETTING = 'agentSandbox.exclude';

/** Options for `SyncFilter.create`. */
export interface SyncFilterOptions {
  /**
   * Workspace-relative globs (picomatch, dotfiles included). A glob without `/` also matches a name at any
   * depth (`*.log`, `node_modules`), like a `.gitignore` line; a leading `/` anchors it at the root; a
   * trailing `/` or `/**` also excludes the directory itself. `!` negation is not supported.
   */
  exclude: string[];
  /** Also leave out what `.gitignore` files (root and nested) and `.git/info/exclude` ignore. */
  useGitignore: boolean;
  /**
   * Leave out every `.git` (directory or file, any depth, any case): the host's is not sent, and the box's is
   * box-only state that collect never proposes (`agentSandbox.gitHistory` `fresh` and `none`).
   */
  leaveOutGit?: boolean;
}

/** One `.gitignore` file's rules and the directory (workspace-relative, '' = root) they apply below. */
interface GitignoreLevel {
  directory: string;
  rules: Ignore;
}

/**
 * Decides which workspace paths are kept out of the box: secrets (always), the user's exclude globs and,
 * optionally, gitignored paths. A path under an excluded directory is excluded too. `.git/` itself is never
 * gitignored (its content is mirrored so git works in the box), but secrets and globs still apply inside it.
 */
export class SyncFilter {
  private readonly excludedDirectories = new Map<string, boolean>();

  private constructor(
    private readonly globMatchers: ((relPath: string) => boolean)[],
    private readonly gitignoreLevels: Map<string, GitignoreLevel>,
    private readonly leaveOutGit: boolean,
  ) {}

  /** Validates the globs and, with `useGitignore`, reads every `.gitignore` below `root` (not through links). */
  static async create(root: string, options: SyncFilterOptions): Promise<SyncFilter> {
    const matchers = options.exclude.map(compileExcludeGlob);
    const filter = new SyncFilter(matchers, new Map(), options.leaveOutGit === true);
    if (options.useGitignore) {
      await filter.loadGitignores(root);
    }
    return filter;
  }

  /** True when the path is a secret by the deny-list (see `secretPatterns.ts`). */
  isSecret(relPath: string): boolean {
    return isSecretPath(relPath);
  }

  /** True when the path, or a directory above it, is a secret, matches an exclude glob or is gitignored. */
  isExcluded(relPath: string, isDirectory: boolean): boolean {
    const segments = relPath.split('/');
    for (let i = 1; i < segments.length; i++) {
      if (this.isDirectoryExcluded(segments.slice(0, i).join('/'))) {
        return true;
      }
    }
    return isDirectory ? this.isDirectoryExcluded(relPath) : this.isExcludedItself(relPath, false);
  }

  private isDirectoryExcluded(relPath: string): boolean {
    let cached = this.excludedDirectories.get(relPath);
    if (cached === undefined) {
      cached = this.isExcludedItself(relPath, true);
      this.excludedDirectories.set(relPath, cached);
    }
    return cached;
  }

  /** The path's own verdict, not looking at its ancestors. */
  private isExcludedItself(relPath: string, isDirectory: boolean): boolean {
    if (isSecretPath(relPath) || this.globMatchers.some((matches) => matches(relPath))) {
      return true;
    }
    if (this.leaveOutGit && relPath.slice(relPath.lastIndexOf('/') + 1).toLowerCase() === '.git') {
      return true;
    }
    return this.isGitignored(relPath, isDirectory);
  }

  private isGitignored(relPath: string, isDirectory: boolean): boolean {
    if (this.gitignoreLevels.size === 0 || relPath === '.git' || relPath.startsWith('.git/')) {
      return false;
    }
    // Git's precedence: deeper .gitignore files win over shallower ones, the last matching line within one wins.
    let ignored = false;
    const segments = relPath.split('/');
    for (let depth = 0; depth < segments.length; depth++) {
      const directory = segments.slice(0, depth).join('/');
      const level = this.gitignoreLevels.get(directory);
      if (level === undefined) {
        continue;
      }
      const below = segments.slice(depth).join('/') + (isDirectory ? '/' : '');
      const result = level.rules.test(below);
      if (result.ignored) {
        ignored = true;
      } else if (result.unignored) {
        ignored = false;
      }
    }
    return ignored;
  }

  private async loadGitignores(root: string): Promise<void> {
    const infoExclude = await readTextOrUndefined(path.join(root, '.git', 'info', 'exclude'));
    const rootRules = ignore({ allowRelativePaths: true });
    if (infoExclude !== undefined) {
      rootRules.add(infoExclude);
    }
    const rootGitignore = await readTextOrUndefined(path.join(root, '.gitignore'));
    if (rootGitignore !== undefined) {
      rootRules.add(rootGitignore);
    }
    if (infoExclude !== undefined || rootGitignore !== undefined) {
      this.gitignoreLevels.set('', { directory: '', rules: rootRules });
    }
    // Breadth-first so that a directory's rules are known before its children are judged.
    let current = [''];
    while (current.length > 0) {
      const next: string[] = [];
      for (const directory of current) {
        let children: import('node:fs').Dirent[];
        try {
          children = await fs.readdir(hostPath(root, directory), { withFileTypes: true });
        } catch {
          continue;
        }
        for (const child of children) {
          if (!child.isDirectory()) {
            continue;
          }
          const childPath = directory === '' ? child.name : `${directory}/${child.name}`;
          if (childPath === '.git' || this.isExcluded(childPath, true)) {
            continue;
          }
          const text = await readTextOrUndefined(path.join(hostPath(root, childPath), '.gitignore'));
          if (text !== undefined) {
            this.gitignoreLevels.set(childPath, { directory: childPath, rules: ignore({ allowRelativePaths: true }).add(text) });
          }
          next.push(childPath);
        }
      }
      current = next;
    }
    this.excludedDirectories.clear();
  }
}

/** Compiles one exclude glob, or throws `invalid-setting` naming the glob and what is wrong with it. */
export function compileExcludeGlob(glob: string): (relPath: string) => boolean {
  const fail = (why: string): never => {
    throw new SandboxError(
      'invalid-setting',
      `The exclude pattern ${JSON.stringify(glob)} in ${EXCLUDE_SETTING} is not valid: ${why}. Fix or remove it in the settings.`,
      { setting: EXCLUDE_SETTING },
    );
  };
  if (typeof glob !== 'string' || glob.trim().length === 0) {
    return fail('it is empty');
  }
  if (glob.includes('\0')) {
    return fail('it contains a NUL character');
  }
  if (glob.startsWith('!')) {
    return fail('negation ("!") is not supported; list only what to leave out');
  }
  let pattern = glob.trim().replace(/\\/g, '/');
  const anchored = pattern.startsWith('/');
  pattern = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  if (pattern.length === 0) {
    return fail('it matches the whole workspace');
  }
  if (pattern.split('/').includes('..')) {
    return fail('it points outside the workspace ("..")');
  }
  const options = { dot: true, strictBrackets: true };
  try {
    picomatch.makeRe(pattern, options);
  } catch (error) {
    return fail((error as Error).message);
  }
  const patterns = [pattern];
  if (pattern.endsWith('/**')) {
    patterns.push(pattern.slice(0, -3));
  }
  const matchPath = picomatch(patterns, options);
  if (anchored || pattern.includes('/')) {
    return matchPath;
  }
  return (relPath) => matchPath(relPath) || matchPath(relPath.slice(relPath.lastIndexOf('/') + 1));
}

async function readTextOrUndefined(absolute: string): Promise<string | undefined> {
  try {
    const stat = await fs.lstat(absolute);
    return stat.isFile() ? await fs.readFile(absolute, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}
