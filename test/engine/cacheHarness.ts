import { spawnSync } from 'node:child_process';
import { LABEL_FOLDER } from '../../src/core/box/boxConfig';
import { clearCaches, LABEL_CACHE_TOOL, listCaches } from '../../src/core/cache/cacheVolumes';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';

/** Removes every cache volume of these folders (cache volumes carry no owner label, so suite cleanup misses them). */
export async function removeCachesOf(engine: DockerEngine | undefined, folders: readonly string[]): Promise<void> {
  if (!engine) return;
  const names = (await listCaches(engine, new Map())).filter((c) => folders.includes(c.folder)).map((c) => c.volumeName);
  if (names.length > 0) await clearCaches(engine, names).catch(() => undefined);
}

/**
 * For suites that run the product's own defaults (the command line, the host and UI workbenches, caches on):
 * removes the boxes and then the cache volumes of every folder under `root` with the docker CLI, synchronously, so
 * a teardown leaves nothing behind (a volume a box still mounts cannot be removed, and a workbench's server may
 * have died before resetting its boxes).
 */
export function removeCachesUnder(root: string): void {
  const under = (folder: string | undefined): boolean => !!folder && (folder === root || folder.startsWith(`${root}/`));
  const folderOf = (kind: 'container' | 'volume', name: string): string | undefined =>
    spawnSync('docker', [kind, 'inspect', '--format', `{{index ${kind === 'container' ? '.Config.Labels' : '.Labels'} "${LABEL_FOLDER}"}}`, name], {
      encoding: 'utf8',
    }).stdout?.trim();
  const boxes = spawnSync('docker', ['ps', '-aq', '--filter', `label=${LABEL_FOLDER}`], { encoding: 'utf8' });
  for (const id of (boxes.stdout ?? '').split('\n').filter(Boolean)) {
    if (under(folderOf('container', id))) spawnSync('docker', ['rm', '-f', '-v', id]);
  }
  const list = spawnSync('docker', ['volume', 'ls', '-q', '--filter', `label=${LABEL_CACHE_TOOL}`], { encoding: 'utf8' });
  for (const name of (list.stdout ?? '').split('\n').filter(Boolean)) {
    if (under(folderOf('volume', name))) spawnSync('docker', ['volume', 'rm', name]);
  }
}
