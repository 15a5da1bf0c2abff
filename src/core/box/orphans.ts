import * as os from 'node:os';
import { SandboxError } from '../errors';
import type { DockerEngine } from '../docker/dockerEngine';
import { engineStatusOf } from '../docker/dockerEngine';
import { LABEL_FOLDER, LABEL_MANAGED, LABEL_OWNER, LABEL_OWNER_HOST, LABEL_OWNER_PID, LABEL_VOLUME } from './boxConfig';

/** A managed container as found on the engine. */
export interface BoxSummary {
  containerId: string;
  /** Container name without the leading `/`. */
  name: string;
  folder: string;
  ownerId: string;
  /** Pid of the owning server process; NaN when the label is missing or malformed. */
  ownerPid: number;
  ownerHost: string;
  volumeName?: string;
  /** Engine state, e.g. `running`, `exited`, `created`. */
  state: string;
  image: string;
}

export interface BoxFilter {
  folder?: string;
  ownerId?: string;
}

/** Every container carrying the managed label (any state), optionally narrowed by folder and owner. */
export async function findBoxes(engine: DockerEngine, filter: BoxFilter = {}, signal?: AbortSignal): Promise<BoxSummary[]> {
  const label = [`${LABEL_MANAGED}=true`];
  if (filter.folder !== undefined) {
    label.push(`${LABEL_FOLDER}=${filter.folder}`);
  }
  if (filter.ownerId !== undefined) {
    label.push(`${LABEL_OWNER}=${filter.ownerId}`);
  }
  const list = await engine.call('listing sandbox containers', (d, abortSignal) => d.listContainers({ all: true, filters: { label }, abortSignal }), {
    signal,
  });
  return list.map((c) => {
    const labels = c.Labels ?? {};
    const volumeMount = c.Mounts?.find((m) => m.Type === 'volume' && m.Destination === '/workspace');
    return {
      containerId: c.Id,
      name: (c.Names?.[0] ?? c.Id).replace(/^\//, ''),
      folder: labels[LABEL_FOLDER] ?? '',
      ownerId: labels[LABEL_OWNER] ?? '',
      ownerPid: parsePid(labels[LABEL_OWNER_PID]),
      ownerHost: labels[LABEL_OWNER_HOST] ?? '',
      volumeName: labels[LABEL_VOLUME] ?? volumeMount?.Name,
      state: c.State,
      image: c.Image,
    };
  });
}

export interface OrphanPolicy {
  /** Whether a process with this pid runs on this machine (see `processIsAlive`). */
  isAlive(ownerPid: number): boolean;
  /** This server's id: its own boxes are never orphans. */
  currentOwnerId: string;
  /** This machine's name; boxes labelled with another host are left alone (their pids mean nothing here). */
  currentHost?: string;
  /** Also remove boxes of other owners that are still alive (e.g. "reset all" from the user). */
  includeLiveOwners?: boolean;
  signal?: AbortSignal;
}

/**
 * Removes managed containers and volumes whose owner is gone: owned by another server id whose process
 * (on this host) no longer runs, or by any other id when `includeLiveOwners` is set. Volumes still used by
 * a kept container stay. Returns the names removed.
 */
export async function removeOrphans(engine: DockerEngine, policy: OrphanPolicy): Promise<{ containers: string[]; volumes: string[] }> {
  const host = policy.currentHost ?? os.hostname();
  const isOrphan = (labels: { ownerId: string; ownerPid: number; ownerHost: string }): boolean => {
    if (labels.ownerId === policy.currentOwnerId) {
      return false;
    }
    if (policy.includeLiveOwners) {
      return true;
    }
    if (labels.ownerHost && labels.ownerHost !== host) {
      return false;
    }
    return !Number.isInteger(labels.ownerPid) || labels.ownerPid <= 0 || !policy.isAlive(labels.ownerPid);
  };

  const removed = { containers: [] as string[], volumes: [] as string[] };
  const keptVolumes = new Set<string>();
  for (const box of await findBoxes(engine, {}, policy.signal)) {
    if (!isOrphan(box)) {
      if (box.volumeName) {
        keptVolumes.add(box.volumeName);
      }
      continue;
    }
    try {
      await engine.call(`removing orphaned container ${box.name}`, (d, abortSignal) =>
        d.getContainer(box.containerId).remove({ force: true, abortSignal }),
      );
      removed.containers.push(box.name);
    } catch (error) {
      if (engineStatusOf(error) !== 404) {
        throw error;
      }
    }
  }

  const volumes = await engine.call(
    'listing sandbox volumes',
    (d, abortSignal) => d.listVolumes({ filters: { label: [`${LABEL_MANAGED}=true`] }, abortSignal }),
    { signal: policy.signal },
  );
  for (const volume of volumes.Volumes ?? []) {
    const labels = volume.Labels ?? {};
    const owner = { ownerId: labels[LABEL_OWNER] ?? '', ownerPid: parsePid(labels[LABEL_OWNER_PID]), ownerHost: labels[LABEL_OWNER_HOST] ?? '' };
    if (keptVolumes.has(volume.Name) || !isOrphan(owner)) {
      continue;
    }
    try {
      await engine.call(`removing orphaned volume ${volume.Name}`, (d, abortSignal) => d.getVolume(volume.Name).remove({ abortSignal }));
      removed.volumes.push(volume.Name);
    } catch (error) {
      // 404: gone already; 409: still in use by a container we did not remove (not ours to judge).
      const status = engineStatusOf(error);
      if (status !== 404 && status !== 409 && !SandboxError.is(error, 'not-found')) {
        throw error;
      }
    }
  }
  return removed;
}

/** True when a process with this pid exists on this machine (EPERM means it exists but is not ours). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parsePid(value: string | undefined): number {
  return value !== undefined && /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
}
