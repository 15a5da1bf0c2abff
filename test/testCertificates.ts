// A CA and one server certificate made at test time with openssl, for TLS stand-ins on this machine (the egress
// gateway's upstreams). Nothing here is trusted outside the test that made it.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface TestCertificates {
  caPem: string;
  keyPem: string;
  certPem: string;
}

/** A fresh CA in `dir` and a certificate it signed for `names` (subjectAltName DNS entries). */
export function makeTestCertificates(dir: string, names: readonly string[]): TestCertificates {
  const run = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Agent Sandbox test CA']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${names[0]}`]);
  fs.writeFileSync(path.join(dir, 'san.ext'), `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`);
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext']);
  const read = (name: string): string => fs.readFileSync(path.join(dir, name), 'utf8');
  return { caPem: read('ca.pem'), keyPem: read('server.key'), certPem: read('server.pem') };
}
