import { clearCaches, listCaches } from '../../src/core/cache/cacheVolumes';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';

/** Removes every cache volume of these folders (cache volumes carry no owner label, so suite cleanup misses them). */
export async function removeCachesOf(engine: DockerEngine | undefined, folders: readonly string[]): Promise<void> {
  if (!engine) return;
  const names = (await listCaches(engine, new Map())).filter((c) => folders.includes(c.folder)).map((c) => c.volumeName);
  if (names.length > 0) await clearCaches(engine, names).catch(() => undefined);
}
