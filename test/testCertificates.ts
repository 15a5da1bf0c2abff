// A CA and one server certificate made at test time with openssl, for TLS stand-ins on this machine (the egress
// gateway's upstreams). Nothing here is trusted outside the test that made it.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface TestCertificates {
  caPem: string;
  keyPem: string;
  certPem: string;
}

/** A fresh CA in `dir` and a certificate it signed for `names` (subjectAltName DNS entries). */
export function makeTestCertificates(dir: string, names: readonly string[]): TestCertificates {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Agent Sandbox test CA'],
    { cwd: dir, stdio: 'pipe' },
  );
  return { caPem: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'), ...issueTestCertificate(dir, names) };
}

/** A key and a certificate for `names` (the first is the subject's CN), signed by the CA `makeTestCertificates` made in `dir`. */
export function issueTestCertificate(dir: string, names: readonly string[]): { keyPem: string; certPem: string } {
  const base = `server-${createHash('sha1').update(names.join(',')).digest('hex').slice(0, 12)}`;
  const run = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]}`]);
  fs.writeFileSync(path.join(dir, `${base}.ext`), `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`);
  run([
    'x509',
    '-req',
    '-in',
    `${base}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${base}.pem`,
    '-days',
    '2',
    '-extfile',
    `${base}.ext`,
  ]);
  const read = (name: string): string => fs.readFileSync(path.join(dir, name), 'utf8');
  return { keyPem: read(`${base}.key`), certPem: read(`${base}.pem`) };
}
