import * as tarStream from 'tar-stream';
import type { DockerEngine } from '../docker/dockerEngine';
import { BOX_GID, BOX_UID } from './boxConfig';

/** A volume and the top-level directory it is mounted at in the preparation container (`workspace` → `/workspace`). */
export interface VolumeToOwn {
  volumeName: string;
  dir: string;
  /**
   * What to put into it, named from `/` (so under `<dir>/`); default: only `<dir>/` itself, owned by the box user.
   * (The box's tools volume of a shell-less image gets its keep-alive program this way.)
   */
  entries?: VolumeEntry[];
}

/** One tar entry for a volume. */
export interface VolumeEntry {
  header: Partial<tarStream.Header> & { name: string };
  content?: Buffer;
}

/**
 * Fills fresh volumes without starting anything. A fresh disk volume's root belongs to root, and the box has no capability to chown it. The archive API
 * does chown from tar headers, but skips the extraction root itself, and refuses a read-only root file
 * system. So a never-started helper container (writable root, same image, no network) mounts the volumes
 * and receives at `/` each volume's entries (by default one `<dir>/` entry owned by the box user). Nothing runs
 * in the helper, so an image without a shell serves as well.
 */
export async function giveVolumesToBoxUser(
  engine: DockerEngine,
  image: string,
  volumes: readonly VolumeToOwn[],
  options: { labels: Record<string, string>; signal?: AbortSignal },
): Promise<void> {
  const tar = await smallTar(volumes.flatMap((v) => v.entries ?? [ownedDirectory(v.dir)]));
  let helperId: string | undefined;
  try {
    const helper = await engine.call(
      'creating the volume preparation container',
      (d, abortSignal) =>
        d.createContainer({
          Image: image,
          Entrypoint: [],
          Cmd: ['true'],
          User: '0:0',
          NetworkDisabled: true,
          Labels: options.labels,
          HostConfig: {
            NetworkMode: 'none',
            CapDrop: ['ALL'],
            SecurityOpt: ['no-new-privileges'],
            Mounts: volumes.map((v) => ({ Type: 'volume', Source: v.volumeName, Target: `/${v.dir}`, VolumeOptions: { NoCopy: true } as never })),
          },
          abortSignal,
        }),
      { signal: options.signal, image },
    );
    helperId = helper.id;
    await engine.call(
      'preparing the volumes',
      (d, abortSignal) =>
        d
          .getContainer(helper.id)
          .putArchive(tar, { path: '/', abortSignal })
          .then(() => undefined),
      { signal: options.signal },
    );
  } finally {
    if (helperId) {
      const id = helperId;
      await engine
        .call('removing the volume preparation container', (d, abortSignal) => d.getContainer(id).remove({ force: true, abortSignal }))
        .catch(() => undefined); // orphan cleanup catches a helper left behind (it carries the box's labels)
    }
  }
}

function ownedDirectory(dir: string): VolumeEntry {
  return { header: { name: `${dir}/`, type: 'directory', mode: 0o755, uid: BOX_UID, gid: BOX_GID, mtime: new Date() } };
}

function smallTar(entries: readonly VolumeEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const entry of entries) {
    if (entry.content) pack.entry(entry.header, entry.content);
    else pack.entry(entry.header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
}
