// A tiny registry (Docker Registry HTTP API v2) on 127.0.0.1 for pull tests: no registry on the internet is
// reachable here, and the engine pulls from a loopback registry over plain HTTP (loopback is an insecure
// registry by default). It serves one image: by default one whose layer blob fails mid-download in a way the
// engine does not retry (the bytes do not match the layer's digest); with `image`, a copy of that local image
// (from `docker save`), which pulls for real.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as tarStream from 'tar-stream';

export interface FakeRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** Image reference to pull, e.g. `127.0.0.1:PORT/agent-sandbox-test/broken:v1`. */
  reference: string;
  /** Bytes of the layer blobs, as the manifest declares them. */
  layerSize: number;
  /** Requests served, `METHOD path`. */
  requests: string[];
  close(): Promise<void>;
}

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** The config and layers of a local image, as `docker save` writes them (layers uncompressed). */
async function savedImage(image: string): Promise<{ config: Buffer; layers: Buffer[] }> {
  const saved = spawnSync('docker', ['save', image], { maxBuffer: 1 << 30 });
  if (saved.status !== 0) throw new Error(`docker save ${image} failed: ${saved.stderr}`);
  const files = new Map<string, Buffer>();
  const extract = tarStream.extract();
  await new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
      stream.on('end', () => {
        files.set(header.name, Buffer.concat(chunks));
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    extract.end(saved.stdout);
  });
  const [entry] = JSON.parse(files.get('manifest.json')!.toString()) as { Config: string; Layers: string[] }[];
  return { config: files.get(entry.Config)!, layers: entry.Layers.map((name) => files.get(name)!) };
}

export async function startFakeRegistry(options: { layerSize?: number; image?: string } = {}): Promise<FakeRegistry> {
  const layerSize = options.layerSize ?? 4 * 1024 * 1024;
  let config: Buffer;
  let layers: Buffer[];
  /** What is served for each layer digest. */
  const blobs = new Map<string, Buffer>();
  if (options.image) {
    ({ config, layers } = await savedImage(options.image));
    for (const layer of layers) blobs.set(sha256(layer), layer);
  } else {
    // The manifest names the digest of `layer`; what is served instead has the same length and other bytes.
    const layer = randomBytes(layerSize);
    layers = [layer];
    blobs.set(sha256(layer), randomBytes(layerSize));
    config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(randomBytes(32))] } }),
    );
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) },
      // An uncompressed layer is fine: the engine detects the compression of what it downloads.
      layers: layers.map((layer) => ({
        mediaType: options.image ? 'application/vnd.docker.image.rootfs.diff.tar' : 'application/vnd.docker.image.rootfs.diff.tar.gzip',
        size: layer.length,
        digest: sha256(layer),
      })),
    }),
  );
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const headers = { 'Docker-Distribution-API-Version': 'registry/2.0' };
    const url = req.url ?? '';
    const send = (body: Buffer, type: string, digest: string) => {
      res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': body.length, 'Docker-Content-Digest': digest });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (url === '/v2/') {
      res.writeHead(200, headers);
      res.end('{}');
    } else if (/^\/v2\/.+\/manifests\//.test(url)) {
      send(manifest, 'application/vnd.docker.distribution.manifest.v2+json', sha256(manifest));
    } else if (url.endsWith(`/blobs/${sha256(config)}`)) {
      send(config, 'application/octet-stream', sha256(config));
    } else if (blobs.has(url.slice(url.lastIndexOf('/') + 1))) {
      // Slowly, in slices, so the engine reports download progress (before the digest check fails).
      const served = blobs.get(url.slice(url.lastIndexOf('/') + 1))!;
      res.writeHead(200, { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': served.length });
      if (req.method === 'HEAD') return void res.end();
      const slice = 256 * 1024;
      let offset = 0;
      const next = () => {
        if (offset >= served.length) return void res.end();
        res.write(served.subarray(offset, offset + slice));
        offset += slice;
        setTimeout(next, 20);
      };
      next();
    } else {
      res.writeHead(404, { ...headers, 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    reference: `${host}/agent-sandbox-test/${options.image ? 'pullable' : 'broken'}:v1`,
    layerSize: layers.reduce((n, layer) => n + layer.length, 0),
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
