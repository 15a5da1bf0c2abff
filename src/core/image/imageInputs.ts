import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SandboxError } from '../errors';
import { sha256 } from '../util/hash';

/** The parts of a devcontainer.json (as the Dev Containers CLI read it) that decide what is built. */
export interface DevcontainerBuildInputs {
  /** Absolute path of the devcontainer.json. */
  configFile: string;
  /** The configuration as `devcontainer read-configuration` returned it. */
  configuration: Record<string, unknown>;
}

/** Files or folders whose content decides a built image, each inside the workspace folder. */
export interface ImageInputs {
  /** What kind of source, part of the hash (the same files built as another kind make another image). */
  kind: 'devcontainer' | 'dockerfile';
  /** Single files hashed by content (the config, the Dockerfile). */
  files: string[];
  /** Folders hashed as trees (the build context, local features). */
  trees: string[];
  /** Anything else the build depends on (the builder's version). */
  extra: string[];
}

/** Local features are keys that start with `./` or `../` (the spec's form), relative to the devcontainer.json. */
export function localFeatureFolders(inputs: DevcontainerBuildInputs): string[] {
  const features = inputs.configuration.features;
  if (!features || typeof features !== 'object') return [];
  const base = path.dirname(inputs.configFile);
  return Object.keys(features)
    .filter((id) => id.startsWith('./') || id.startsWith('../'))
    .map((id) => path.resolve(base, id));
}

/** The Dockerfile and build context of a devcontainer.json's `build`, absolute; undefined for the image form. */
export function devcontainerDockerBuild(inputs: DevcontainerBuildInputs): { dockerfile: string; context: string } | undefined {
  const build = inputs.configuration.build as { dockerfile?: unknown; context?: unknown } | undefined;
  const dockerfile = build?.dockerfile ?? inputs.configuration.dockerFile;
  if (typeof dockerfile !== 'string') return undefined;
  const base = path.dirname(inputs.configFile);
  const context =
    typeof build?.context === 'string' ? build.context : typeof inputs.configuration.context === 'string' ? inputs.configuration.context : '.';
  return { dockerfile: path.resolve(base, dockerfile), context: path.resolve(base, context) };
}

/** What a devcontainer.json's image depends on: itself, its Dockerfile and build context, its local features. */
export function devcontainerInputs(folder: string, inputs: DevcontainerBuildInputs, builderVersion: string): ImageInputs {
  const docker = devcontainerDockerBuild(inputs);
  return checkedInside(folder, {
    kind: 'devcontainer',
    files: [inputs.configFile, ...(docker ? [docker.dockerfile] : [])],
    trees: [...(docker ? [docker.context] : []), ...localFeatureFolders(inputs)],
    extra: [builderVersion],
  });
}

/** What `.agent-sandbox/Dockerfile`'s image depends on: the Dockerfile and its folder (the build context). */
export function dockerfileInputs(folder: string, dockerfile: string, builderVersion: string): ImageInputs {
  return checkedInside(folder, { kind: 'dockerfile', files: [dockerfile], trees: [path.dirname(dockerfile)], extra: [builderVersion] });
}

/** A build may only read the workspace folder: a path leading out of it (`../..`, an absolute path) is refused. */
function checkedInside(folder: string, inputs: ImageInputs): ImageInputs {
  const root = path.resolve(folder);
  for (const file of [...inputs.files, ...inputs.trees]) {
    const relative = path.relative(root, file);
    if (relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new SandboxError(
        'image-build-failed',
        `The image's build reads ${file}, outside the workspace folder ${root}. Keep the Dockerfile, build context and local features inside the folder.`,
      );
    }
  }
  return inputs;
}

/**
 * The SHA-256 of everything the image is built from: each file's content, each tree's paths, types, executable
 * bits and contents (links by their target text, never followed; `.git` left out), and the extra strings. Paths
 * are relative to the workspace folder, so a copy of the folder elsewhere has the same hash.
 */
export function imageInputHash(folder: string, inputs: ImageInputs): string {
  const hash = createHash('sha256');
  const root = path.resolve(folder);
  const add = (...parts: string[]) => hash.update(parts.join('\0') + '\n');
  add('kind', inputs.kind);
  for (const extra of inputs.extra) add('extra', extra);
  for (const file of inputs.files) add('file', rel(root, file), contentHash(file));
  for (const tree of [...new Set(inputs.trees)].sort()) {
    add('tree', rel(root, tree));
    for (const entry of treeEntries(tree)) add(...entry);
  }
  return hash.digest('hex');
}

function rel(root: string, file: string): string {
  return path.relative(root, file).split(path.sep).join('/') || '.';
}

function contentHash(file: string): string {
  try {
    return sha256(fs.readFileSync(file));
  } catch (error) {
    throw new SandboxError('image-build-failed', `Cannot read ${file} for the image's build: ${(error as Error).message}.`, { cause: error });
  }
}

/** Entries of a tree, sorted: `[path, type, x-bit, content or link hash]`. */
function treeEntries(tree: string): string[][] {
  const entries: string[][] = [];
  const walk = (dir: string, prefix: string) => {
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort();
    } catch {
      entries.push([prefix || '.', 'missing']);
      return;
    }
    for (const name of names) {
      if (name === '.git') continue;
      const full = path.join(dir, name);
      const relative = prefix ? `${prefix}/${name}` : name;
      const stat = fs.lstatSync(full);
      if (stat.isDirectory()) {
        entries.push([relative, 'dir']);
        walk(full, relative);
      } else if (stat.isSymbolicLink()) {
        entries.push([relative, 'link', sha256(fs.readlinkSync(full))]);
      } else if (stat.isFile()) {
        entries.push([relative, 'file', stat.mode & 0o111 ? 'x' : '-', contentHash(full)]);
      }
    }
  };
  walk(tree, '');
  return entries;
}

/** The local tag of a built image: one repository, the source's kind and the input hash as the tag. */
export function builtImageTag(kind: ImageInputs['kind'], inputHash: string): string {
  return `agent-sandbox-built:${kind}-${inputHash.slice(0, 32)}`;
}
