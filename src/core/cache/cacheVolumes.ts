import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type * as Dockerode from 'dockerode';
import type { CacheInfo } from '../../shared/protocol';
import type { DockerEngine } from '../docker/dockerEngine';
import { engineStatusOf } from '../docker/dockerEngine';
import { SandboxError } from '../errors';
import { sha256 } from '../util/hash';
import { LABEL_FOLDER } from '../box/boxConfig';
import { giveVolumesToBoxUser } from '../box/volumeOwner';

/**
 * Package caches that outlive a box: one engine-managed named volume per tool, keyed by the workspace (host and
 * folder), the image ID and the tool's lockfile. Only a box of the same workspace ever mounts a cache, so what
 * one box leaves in it reaches that workspace's next box and nothing else.
 *
 * The volumes are mounted under `CACHE_ROOT` and each tool is pointed there by its own variable, not mounted at
 * its default path under `$HOME`: `$HOME` is a tmpfs owned by the box user, and a mount at a nested default
 * (`~/.cache/pip`, `~/go/pkg/mod`, `~/.cargo/registry`) would make the engine create the parents (`~/.cache`,
 * `~/go`, `~/.cargo`) owned by root, which breaks every other tool that writes there.
 */
export const CACHE_ROOT = '/var/cache/agent-sandbox';

/** Labels of cache volumes. They carry no `dev.agent-sandbox.managed`, so orphan cleanup never takes them. */
export const LABEL_CACHE_TOOL = 'dev.agent-sandbox.cache';
export const LABEL_CACHE_WORKSPACE = 'dev.agent-sandbox.cache-workspace';
export const LABEL_CACHE_HOST = 'dev.agent-sandbox.cache-host';
export const LABEL_CACHE_IMAGE = 'dev.agent-sandbox.cache-image';
export const LABEL_CACHE_LOCK = 'dev.agent-sandbox.cache-lock';

export interface CacheTool {
  /** Name in volume names, labels and the Clear Caches list. */
  tool: string;
  /** Lockfiles at the workspace root whose content keys the cache (any present; none = one "no lockfile" key). */
  lockfiles: readonly string[];
  /** The variable that points the tool at the mounted cache. */
  variable: string;
}

export const CACHE_TOOLS: readonly CacheTool[] = [
  { tool: 'npm', lockfiles: ['package-lock.json', 'npm-shrinkwrap.json'], variable: 'npm_config_cache' },
  { tool: 'pnpm', lockfiles: ['pnpm-lock.yaml'], variable: 'npm_config_store_dir' },
  { tool: 'yarn', lockfiles: ['yarn.lock'], variable: 'YARN_CACHE_FOLDER' },
  { tool: 'pip', lockfiles: ['requirements.txt', 'poetry.lock', 'Pipfile.lock', 'pdm.lock'], variable: 'PIP_CACHE_DIR' },
  { tool: 'uv', lockfiles: ['uv.lock'], variable: 'UV_CACHE_DIR' },
  // Cargo writes its lock file at the root of CARGO_HOME, so the cache is the whole cargo home (registry, git, bin).
  { tool: 'cargo', lockfiles: ['Cargo.lock'], variable: 'CARGO_HOME' },
  { tool: 'go-mod', lockfiles: ['go.sum'], variable: 'GOMODCACHE' },
  { tool: 'go-build', lockfiles: ['go.sum'], variable: 'GOCACHE' },
];

/** Who a cache belongs to: the workspace folder on a given host (the same path on two machines is two workspaces). */
export interface CacheWorkspace {
  folder: string;
  host: string;
}

export interface CacheVolume {
  tool: string;
  volumeName: string;
  target: string;
  labels: Record<string, string>;
}

/** The box's cache mounts and the variables that point the tools at them. */
export interface CacheMounts {
  volumes: CacheVolume[];
  env: string[];
}

function workspaceId(workspace: CacheWorkspace): string {
  return sha256(`${workspace.host}\0${workspace.folder}`).slice(0, 16);
}

/** Hash of a tool's lockfiles at the workspace root (names and contents), or `none` without any. */
export async function lockfileHash(folder: string, lockfiles: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const name of lockfiles) {
    try {
      parts.push(`${name}\0${sha256(await fs.readFile(path.join(folder, name)))}`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return parts.length === 0 ? 'none' : sha256(parts.join('\0')).slice(0, 16);
}

/** The volumes a box of this workspace and image mounts now (names depend on workspace, image, tool and lockfile). */
export async function cacheVolumesFor(workspace: CacheWorkspace, imageId: string): Promise<CacheVolume[]> {
  const id = workspaceId(workspace);
  return Promise.all(
    CACHE_TOOLS.map(async ({ tool, lockfiles }) => {
      const lock = await lockfileHash(workspace.folder, lockfiles);
      const key = sha256(`${id}\0${imageId}\0${tool}\0${lock}`).slice(0, 24);
      return {
        tool,
        volumeName: `agent-sandbox-cache-${tool}-${key}`,
        target: `${CACHE_ROOT}/${tool}`,
        labels: {
          [LABEL_CACHE_TOOL]: tool,
          [LABEL_CACHE_WORKSPACE]: id,
          [LABEL_FOLDER]: workspace.folder,
          [LABEL_CACHE_HOST]: workspace.host,
          [LABEL_CACHE_IMAGE]: imageId,
          [LABEL_CACHE_LOCK]: lock,
        },
      };
    }),
  );
}

/** Every cache volume on the engine (one workspace's with `workspace`). */
async function listCacheVolumes(engine: DockerEngine, workspace?: CacheWorkspace, signal?: AbortSignal): Promise<Dockerode.VolumeInspectInfo[]> {
  const label = workspace ? [LABEL_CACHE_TOOL, `${LABEL_CACHE_WORKSPACE}=${workspaceId(workspace)}`] : [LABEL_CACHE_TOOL];
  const list = await engine.call('listing cache volumes', (d, abortSignal) => d.listVolumes({ filters: { label }, abortSignal }), { signal });
  return list.Volumes ?? [];
}

/** Sizes and use counts of volumes as the engine measures them (`docker system df`), by name. */
async function volumeUsage(engine: DockerEngine, signal?: AbortSignal): Promise<Map<string, { size: number; refCount: number }>> {
  // dockerode's typings omit df's options; it does take the abort signal.
  type Df = (options: { abortSignal: AbortSignal }) => Promise<{ Volumes?: DfVolume[] }>;
  const df = await engine.call('measuring volumes', (d, abortSignal) => (d.df as unknown as Df).call(d, { abortSignal }), { signal });
  return new Map((df.Volumes ?? []).map((v) => [v.Name, { size: v.UsageData?.Size ?? -1, refCount: v.UsageData?.RefCount ?? 0 }]));
}

interface DfVolume {
  Name: string;
  UsageData?: { Size: number; RefCount: number };
}

/** Removes a volume; a missing one counts as removed, one still mounted by a container is reported as in use. */
async function removeVolume(engine: DockerEngine, name: string, signal?: AbortSignal): Promise<'removed' | 'in-use'> {
  try {
    await engine.call(`removing cache volume ${name}`, (d, abortSignal) => d.getVolume(name).remove({ abortSignal }), { signal });
    return 'removed';
  } catch (error) {
    const status = engineStatusOf(error);
    if (status === 404 || SandboxError.is(error, 'not-found')) return 'removed';
    if (status === 409) return 'in-use';
    throw error;
  }
}

/**
 * Makes the workspace's cache volumes for a new box: superseded ones (same workspace and tool, another image or
 * lockfile) go, the current ones are emptied when together they are over `maxSizeMiB` (measured by the engine, not
 * by the box), and missing ones are created owned by the box user. Returns the mounts and variables for the box.
 */
export async function prepareCaches(
  engine: DockerEngine,
  options: {
    workspace: CacheWorkspace;
    image: { reference: string; id: string };
    maxSizeMiB: number;
    /** Labels for the preparation container (the box's, so orphan cleanup finds one left behind). */
    labels: Record<string, string>;
    signal?: AbortSignal;
    log?: (line: string) => void;
  },
): Promise<CacheMounts> {
  const { signal } = options;
  const wanted = await cacheVolumesFor(options.workspace, options.image.id);
  const wantedNames = new Set(wanted.map((v) => v.volumeName));
  const existing = await listCacheVolumes(engine, options.workspace, signal);
  for (const volume of existing) {
    if (!wantedNames.has(volume.Name) && (await removeVolume(engine, volume.Name, signal)) === 'removed') {
      options.log?.(`[cache] removed superseded cache ${volume.Name}`);
    }
  }
  let present = new Set(existing.filter((v) => wantedNames.has(v.Name)).map((v) => v.Name));
  if (present.size > 0) {
    const usage = await volumeUsage(engine, signal);
    const total = [...present].reduce((sum, name) => sum + Math.max(0, usage.get(name)?.size ?? 0), 0);
    if (total > options.maxSizeMiB * 1024 * 1024) {
      options.log?.(`[cache] caches of ${options.workspace.folder} hold ${mib(total)} MiB, over the ${options.maxSizeMiB} MiB bound: emptied`);
      for (const name of present) await removeVolume(engine, name, signal);
      present = new Set((await listCacheVolumes(engine, options.workspace, signal)).map((v) => v.Name));
    }
  }
  const missing = wanted.filter((v) => !present.has(v.volumeName));
  for (const volume of missing) {
    await engine.call(
      `creating cache volume ${volume.volumeName}`,
      (d, abortSignal) => d.createVolume({ Name: volume.volumeName, Driver: 'local', Labels: volume.labels, abortSignal }),
      { signal },
    );
  }
  if (missing.length > 0) {
    const volumes = missing.map((v) => ({ volumeName: v.volumeName, dir: `cache-${v.tool}` }));
    await giveVolumesToBoxUser(engine, options.image.id, volumes, { labels: options.labels, signal });
  }
  return { volumes: wanted, env: CACHE_TOOLS.map(({ tool, variable }) => `${variable}=${CACHE_ROOT}/${tool}`) };
}

function mib(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}

/** Every cache on the engine, with its size and use as the engine measures them. */
export async function listCaches(engine: DockerEngine, lastUse: ReadonlyMap<string, number>, signal?: AbortSignal): Promise<CacheInfo[]> {
  const volumes = await listCacheVolumes(engine, undefined, signal);
  const usage = volumes.length > 0 ? await volumeUsage(engine, signal) : new Map<string, { size: number; refCount: number }>();
  return volumes
    .map((v) => {
      const labels = v.Labels ?? {};
      const use = usage.get(v.Name);
      const lastUsed = lastUse.get(v.Name);
      const createdAt = (v as { CreatedAt?: string }).CreatedAt;
      return {
        volumeName: v.Name,
        tool: labels[LABEL_CACHE_TOOL] ?? '',
        folder: labels[LABEL_FOLDER] ?? '',
        host: labels[LABEL_CACHE_HOST] ?? '',
        ...(use && use.size >= 0 ? { sizeBytes: use.size } : {}),
        inUse: (use?.refCount ?? 0) > 0,
        ...(createdAt ? { createdAt: new Date(createdAt).toISOString() } : {}),
        ...(lastUsed !== undefined ? { lastUsed: new Date(lastUsed).toISOString() } : {}),
      } satisfies CacheInfo;
    })
    .sort((a, b) => a.folder.localeCompare(b.folder) || a.tool.localeCompare(b.tool));
}

/**
 * Removes cache volumes: the named ones (which must be cache volumes), or all. A cache a running box mounts
 * stays and is reported as in use (it goes with the next Clear Caches after that box is reset).
 */
export async function clearCaches(
  engine: DockerEngine,
  volumeNames: readonly string[] | undefined,
  signal?: AbortSignal,
): Promise<{ removed: string[]; inUse: string[] }> {
  const caches = new Set((await listCacheVolumes(engine, undefined, signal)).map((v) => v.Name));
  const targets = volumeNames ?? [...caches];
  const notCaches = targets.filter((name) => !caches.has(name));
  if (volumeNames && notCaches.length > 0 && notCaches.length === targets.length) {
    // Only cache volumes can be cleared here; a name that is not one (or is gone already) is said, not guessed at.
    throw new SandboxError('not-found', `No cache volume named ${notCaches.join(', ')}; Agent Sandbox: Clear Caches lists the caches there are.`);
  }
  const result = { removed: [] as string[], inUse: [] as string[] };
  for (const name of targets.filter((n) => caches.has(n))) {
    result[(await removeVolume(engine, name, signal)) === 'removed' ? 'removed' : 'inUse'].push(name);
  }
  return result;
}
