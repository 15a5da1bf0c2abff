// A stand-in for the npm registry, for the end-to-end package-install test: the real registry is not to be reached
// by a test (nothing may leave the machine), so this serves real package tarballs the test gives it, at the paths
// the registry uses. Run as a program (see standInHttp.ts for how it listens and logs); it serves the files under
// STAND_IN_FILES (default /tmp/registry): `GET /<name>` answers `<name>/index.json` (the package document),
// `GET /<name>/-/<file>.tgz` the tarball; anything else is a 404 that names what was asked.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { logRequest, sendJson, serve } from './standInHttp';

const root = process.env.STAND_IN_FILES ?? '/tmp/registry';

serve((req, res, requestPath) => {
  logRequest({ method: req.method ?? '', path: requestPath, headers: req.headers });
  const relative = path.posix.normalize(requestPath).replace(/^\/+/, '');
  const file = path.join(root, relative.endsWith('.tgz') ? relative : path.join(relative, 'index.json'));
  if (req.method !== 'GET' || relative.startsWith('..') || !fs.existsSync(file)) {
    return sendJson(res, 404, { error: `the registry stand-in has no ${req.method} ${requestPath}` });
  }
  res.writeHead(200, { 'content-type': file.endsWith('.tgz') ? 'application/octet-stream' : 'application/json' });
  res.end(fs.readFileSync(file));
});
