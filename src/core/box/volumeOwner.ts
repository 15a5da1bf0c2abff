import * as tarStream from 'tar-stream';
import type { DockerEngine } from '../docker/dockerEngine';
import { BOX_GID, BOX_UID } from './boxConfig';

/** A volume and the top-level directory it is mounted at in the preparation container (`workspace` → `/workspace`). */
export interface VolumeToOwn {
  volumeName: string;
  dir: string;
}

/**
 * A fresh disk volume's root belongs to root, and the box has no capability to chown it. The archive API
 * does chown from tar headers, but skips the extraction root itself, and refuses a read-only root file
 * system. So a never-started helper container (writable root, same image, no network) mounts the volumes
 * and receives one `<dir>/` entry per volume, owned by the box user, at `/`. Nothing runs in the helper.
 */
export async function giveVolumesToBoxUser(
  engine: DockerEngine,
  image: string,
  volumes: readonly VolumeToOwn[],
  options: { labels: Record<string, string>; signal?: AbortSignal },
): Promise<void> {
  const tar = await ownerTar(volumes.map((v) => v.dir));
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

function ownerTar(dirs: readonly string[]): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const dir of dirs) {
    pack.entry({ name: `${dir}/`, type: 'directory', mode: 0o755, uid: BOX_UID, gid: BOX_GID, mtime: new Date() });
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
}
