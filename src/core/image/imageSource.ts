import * as fs from 'node:fs';
import * as path from 'node:path';

/** The value of `agentSandbox.image` that lets the folder choose: its dev container, its `.agent-sandbox/Dockerfile`, else `DEFAULT_IMAGE`. */
export const AUTO_IMAGE = 'auto';

/** The image a box runs when nothing else is chosen (and what `auto` falls back to). */
export const DEFAULT_IMAGE = 'node:22-bookworm';

/** Where a folder's box image can come from, in the order `auto` looks. */
export type FolderImageSource =
  | { kind: 'devcontainer'; /** Absolute path of the devcontainer.json. */ configFile: string }
  | { kind: 'dockerfile'; /** Absolute path of `.agent-sandbox/Dockerfile`. */ dockerfile: string }
  | { kind: 'default' };

/** The files `auto` looks for, in order, relative to the folder. */
export const DEVCONTAINER_FILES = ['.devcontainer/devcontainer.json', '.devcontainer.json'] as const;
export const AGENT_SANDBOX_DOCKERFILE = '.agent-sandbox/Dockerfile';

/**
 * What `auto` builds for this folder: `.devcontainer/devcontainer.json`, then `.devcontainer.json`, then
 * `.agent-sandbox/Dockerfile`, else nothing (the default image). A file only counts when it and every folder on
 * its way are real entries of the folder: a symbolic link could point the build at files outside the repository.
 */
export function findFolderImageSource(folder: string): FolderImageSource {
  for (const relative of DEVCONTAINER_FILES) {
    if (isPlainFileInside(folder, relative)) return { kind: 'devcontainer', configFile: path.join(folder, relative) };
  }
  if (isPlainFileInside(folder, AGENT_SANDBOX_DOCKERFILE)) return { kind: 'dockerfile', dockerfile: path.join(folder, AGENT_SANDBOX_DOCKERFILE) };
  return { kind: 'default' };
}

/** The source's file relative to the folder, with `/` separators, for messages and the box's info. */
export function sourceFile(folder: string, source: FolderImageSource): string | undefined {
  const file = source.kind === 'devcontainer' ? source.configFile : source.kind === 'dockerfile' ? source.dockerfile : undefined;
  return file === undefined ? undefined : path.relative(folder, file).split(path.sep).join('/');
}

function isPlainFileInside(folder: string, relative: string): boolean {
  const parts = relative.split('/');
  let current = folder;
  for (const [index, part] of parts.entries()) {
    current = path.join(current, part);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(current);
    } catch {
      return false;
    }
    const last = index === parts.length - 1;
    if (last ? !stat.isFile() : !stat.isDirectory()) return false;
  }
  return true;
}
