// A tiny registry (Docker Registry HTTP API v2) on 127.0.0.1 for pull tests: no registry on the internet is
// reachable here, and the engine pulls from a loopback registry over plain HTTP (loopback is an insecure
// registry by default). It serves one image whose layer blob fails mid-download in a way the engine does not
// retry: the bytes do not match the layer's digest.
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** Image reference to pull, e.g. `127.0.0.1:PORT/agent-sandbox-test/broken:v1`. */
  reference: string;
  /** Bytes of the layer blob, as the manifest declares them. */
  layerSize: number;
  /** Requests served, `METHOD path`. */
  requests: string[];
  close(): Promise<void>;
}

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export async function startFakeRegistry(options: { layerSize?: number } = {}): Promise<FakeRegistry> {
  const layerSize = options.layerSize ?? 4 * 1024 * 1024;
  // The manifest names the digest of `layer`; what is served instead has the same length and other bytes.
  const layer = randomBytes(layerSize);
  const served = randomBytes(layerSize);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(randomBytes(32))] } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: sha256(layer) }],
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
    } else if (url.endsWith(`/blobs/${sha256(layer)}`)) {
      // Slowly, in slices, so the engine reports download progress before the digest check fails.
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
    reference: `${host}/agent-sandbox-test/broken:v1`,
    layerSize,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
