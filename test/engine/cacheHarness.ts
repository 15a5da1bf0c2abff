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
 * For suites that run the product's own defaults (the command line, caches on): removes the cache volumes of every
 * folder under `root` with the docker CLI, synchronously, so a suite teardown leaves no cache behind.
 */
export function removeCachesUnder(root: string): void {
  const list = spawnSync('docker', ['volume', 'ls', '-q', '--filter', `label=${LABEL_CACHE_TOOL}`], { encoding: 'utf8' });
  for (const name of (list.stdout ?? '').split('\n').filter(Boolean)) {
    const folder = spawnSync('docker', ['volume', 'inspect', '--format', `{{index .Labels "${LABEL_FOLDER}"}}`, name], {
      encoding: 'utf8',
    }).stdout?.trim();
    if (folder && (folder === root || folder.startsWith(`${root}/`))) spawnSync('docker', ['volume', 'rm', name]);
  }
}
