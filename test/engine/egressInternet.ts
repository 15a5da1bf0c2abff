// A stand-in "internet" for the egress tests, made of things the test creates on this machine's engine and
// nothing else: an internal Docker network (no default route anywhere) with a subnet from 198.18.0.0/15
// (the benchmarking range, which the gateway does not refuse and which no one else uses here), and upstream
// containers on it whose names the gateway resolves through Docker's embedded DNS. The gateway's upstream
// resolver is set to its own loopback, so a name the embedded DNS does not know is never asked outside.
// The HTTPS certificates come from a CA made at test time with openssl. No traffic leaves the machine.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tarStream from 'tar-stream';
import type { Readable } from 'node:stream';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { boxLabels, LABEL_OWNER } from '../../src/core/box/boxConfig';
import type { Box } from '../../src/core/box/box';
import type { EgressAttempt } from '../../src/core/egress/egressAttempt';
import { LABEL_ROLE } from '../../src/core/egress/gatewayConfig';
import { validateEgressSettings } from '../../src/core/egress/gatewayConfig';
import type { BoxCreateOptions } from '../../src/core/box/box';
import type { ModelKeys } from '../../src/core/egress/modelProviders';
import type { EgressSettings } from '../../src/shared/protocol';
import { TEST_IMAGES } from './engineHarness';
import { issueTestCertificate, makeTestCertificates } from '../testCertificates';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const GATEWAY_PROGRAM = path.join(ROOT, 'dist', 'gateway.js');

/**
 * Names the upstream stand-ins answer to (HTTPS on 443, plain HTTP on 80; one certificate for all of them):
 * `registry.test` and `api.test` are the stand-in at .10, `other.test` a second one at .11. `api.anthropic.com`
 * is the .10 stand-in too, on this test network only (the real API is unreachable here): the gateway's model
 * provider route resolves it through its own resolver like any name, and trusts the test CA through
 * `agentSandbox.gatewayCaFile`.
 */
export const UPSTREAM_NAMES = ['registry.test', 'api.test', 'other.test', 'api.anthropic.com'] as const;

/**
 * Names the gateway's /etc/hosts maps to refused addresses: an allowed name that resolves to loopback, a
 * private, a metadata or an IPv4-mapped loopback address must still be refused.
 */
export const HOSTILE_NAMES: Record<string, string> = {
  'loopback.test': '127.0.0.1',
  'private.test': '10.11.12.13',
  'metadata.test': '169.254.169.254',
  'mapped.test': '::ffff:127.0.0.1',
};

/**
 * The upstream: HTTPS + HTTP; answers with its name, the Host it saw, the body size and the SHA-256 of the
 * credential headers it got (never the credentials: the answer goes back into the box); serves files under
 * /tmp/git (a dumb-HTTP git repository) and /tmp/npm (an npm registry stand-in: a directory's index.json is
 * the package document). /v1/stream answers with server-sent events: the second only once /tmp/release exists
 * (a request for /release makes it: a client that asks for it only after reading the first event would wait
 * forever behind a gateway that buffered).
 */
const UPSTREAM_SCRIPT = `
const fs = require('fs'), path = require('path'), http = require('http'), https = require('https'), crypto = require('crypto');
const digest = (value) => (value === undefined ? null : crypto.createHash('sha256').update(String(value)).digest('hex'));
const handler = (scheme) => (req, res) => {
  let body = 0;
  req.on('data', (c) => (body += c.length));
  req.on('end', () => {
    if (req.url === '/release') {
      fs.writeFileSync('/tmp/release', '');
      return res.end('released\\n');
    }
    if (req.url === '/v1/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('event: one\\ndata: {"key":"' + digest(req.headers['x-api-key']) + '"}\\n\\n');
      const wait = setInterval(() => {
        if (!fs.existsSync('/tmp/release')) return;
        clearInterval(wait);
        res.end('event: two\\ndata: {}\\n\\n');
      }, 50);
      return;
    }
    const file = path.join('/tmp', path.normalize(decodeURIComponent(req.url.split('?')[0])));
    if ((req.url.startsWith('/git/') || req.url.startsWith('/npm/')) && fs.existsSync(file)) {
      const served = fs.statSync(file).isDirectory() ? path.join(file, 'index.json') : file;
      if (fs.existsSync(served)) return res.end(fs.readFileSync(served));
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ upstream: process.env.UPSTREAM_ID, scheme, host: req.headers.host, method: req.method, url: req.url, body, from: req.socket.remoteAddress, apiKeySha256: digest(req.headers['x-api-key']), authorizationSha256: digest(req.headers.authorization) }) + '\\n');
  });
};
https.createServer({ key: process.env.TLS_KEY, cert: process.env.TLS_CERT }, handler('https')).listen(443);
http.createServer(handler('http')).listen(80);
console.log('listening');
`;

export interface RunOnNetworkOptions {
  user?: string;
  env?: string[];
  aliases?: string[];
  ip?: string;
  archive?: Readable;
}

export interface TestInternet {
  networkName: string;
  /** The subnet's first three octets, e.g. `198.18.7`. */
  prefix: string;
  upstreamAddress: string;
  /** The second stand-in (`other.test`). */
  otherAddress: string;
  caPem: string;
  /** The test CA in a file on this machine: the value for `agentSandbox.gatewayCaFile`. */
  caFile: string;
  /** The container of the .10 stand-in (registry.test, api.test, api.anthropic.com unless left out). */
  upstreamContainerId: string;
  /**
   * Box.create's `egress` option for an allowlist over this internet; with `providerKeys`, the gateway adds
   * them on its provider routes and trusts the test CA (`gatewayCaFile`).
   */
  egress(allowedHosts: string[], overrides?: { networkPresets?: string[]; providerKeys?: ModelKeys }): NonNullable<BoxCreateOptions['egress']>;
  /**
   * The user's egress settings for an allowlist over this internet (what `sandbox/configure` or VS Code's settings
   * take): the gateway on the test network, resolving only through the network's own DNS, trusting the test CA.
   */
  settings(allowedHosts: string[], networkPresets?: string[]): EgressSettings;
  /**
   * Starts a container on the test network (image net, as root unless told), for controls and further stand-ins:
   * `aliases` are the names the gateway resolves to it, `archive` a tar put into its /tmp before it starts.
   */
  runOnNetwork(name: string, cmd: string[], options?: RunOnNetworkOptions): Promise<string>;
  /** A certificate (and its key, PEM) for these names, signed by the test CA. */
  issueCertificate(names: string[]): { keyPem: string; certPem: string };
  /** Runs a command in any container (as its user), returns exit code and output. */
  execIn(containerId: string, cmd: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  remove(): Promise<void>;
}

/** Files the upstream serves, as a tar for /tmp: a bare git repository for git's dumb HTTP protocol, and an npm package. */
function upstreamFilesTar(dir: string): Readable {
  const work = path.join(dir, 'work');
  const bare = path.join(dir, 'repo.git');
  const git = (cwd: string, ...args: string[]): void =>
    void execFileSync('git', args, {
      cwd,
      stdio: 'pipe',
      env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
    });
  fs.mkdirSync(work);
  git(work, 'init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(work, 'README.md'), 'cloned through the egress gateway\n');
  git(work, 'add', '.');
  git(work, 'commit', '-qm', 'first');
  git(dir, 'clone', '-q', '--bare', work, bare);
  git(bare, 'update-server-info');
  const pack = tarStream.pack();
  const walk = (from: string, rel: string): void => {
    for (const name of fs.readdirSync(from)) {
      const full = path.join(from, name);
      const entryName = `git/repo.git/${rel}${name}`;
      if (fs.statSync(full).isDirectory()) {
        pack.entry({ name: `${entryName}/`, type: 'directory', mode: 0o755 });
        walk(full, `${rel}${name}/`);
      } else {
        pack.entry({ name: entryName, mode: 0o644 }, fs.readFileSync(full));
      }
    }
  };
  pack.entry({ name: 'git/', type: 'directory', mode: 0o755 });
  pack.entry({ name: 'git/repo.git/', type: 'directory', mode: 0o755 });
  walk(bare, '');
  // A real package tarball made with npm pack, and its registry document.
  const pkgDir = path.join(dir, 'tiny-pkg');
  fs.mkdirSync(pkgDir);
  fs.writeFileSync(path.join(pkgDir, 'package.json'), JSON.stringify({ name: 'egress-tiny', version: '1.0.0', main: 'index.js' }));
  fs.writeFileSync(path.join(pkgDir, 'index.js'), "module.exports = 'installed through the egress gateway';\n");
  const tgzName = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: pkgDir, encoding: 'utf8' }).trim().split('\n').pop()!;
  const tgz = fs.readFileSync(path.join(dir, tgzName));
  const integrity = `sha512-${createHash('sha512').update(tgz).digest('base64')}`;
  const shasum = createHash('sha1').update(tgz).digest('hex');
  const document = {
    name: 'egress-tiny',
    'dist-tags': { latest: '1.0.0' },
    versions: {
      '1.0.0': {
        name: 'egress-tiny',
        version: '1.0.0',
        main: 'index.js',
        dist: { tarball: 'https://registry.test/npm/egress-tiny/-/egress-tiny-1.0.0.tgz', integrity, shasum },
      },
    },
  };
  pack.entry({ name: 'npm/', type: 'directory', mode: 0o755 });
  pack.entry({ name: 'npm/egress-tiny/', type: 'directory', mode: 0o755 });
  pack.entry({ name: 'npm/egress-tiny/index.json', mode: 0o644 }, JSON.stringify(document));
  pack.entry({ name: 'npm/egress-tiny/-/', type: 'directory', mode: 0o755 });
  pack.entry({ name: 'npm/egress-tiny/-/egress-tiny-1.0.0.tgz', mode: 0o644 }, tgz);
  pack.finalize();
  return pack as unknown as Readable;
}

/**
 * `withoutNames`: names the .10 stand-in does not answer to, for a suite that runs its own stand-in under that
 * name (two containers with one alias would each get some of the connections).
 */
export async function createTestInternet(engine: DockerEngine, ownerId: string, options: { withoutNames?: string[] } = {}): Promise<TestInternet> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-egress-'));
  // Full owner labels (pid and host included): any engine server's orphan sweep on this shared engine removes
  // managed containers without a live owner pid, and would take the stand-ins away mid-test.
  const labels = {
    ...boxLabels({ folder: '', ownerId, ownerPid: process.pid, ownerHost: os.hostname() }),
    'dev.agent-sandbox.test': 'egress-internet',
  };
  const networkName = `agent-sandbox-test-internet-${ownerId}`.slice(0, 60);
  const certs = makeTestCertificates(dir, UPSTREAM_NAMES);
  const caFile = path.join(dir, 'ca.pem');
  let prefix = '';
  // Another suite may hold a subnet of the range; try a few.
  for (let attempt = 0; !prefix; attempt++) {
    const candidate = `198.18.${1 + Math.floor(Math.random() * 250)}`;
    try {
      await engine.call('creating the test internet network', (d) =>
        d.createNetwork({ Name: networkName, Driver: 'bridge', Internal: true, Labels: labels, IPAM: { Config: [{ Subnet: `${candidate}.0/24` }] } }),
      );
      prefix = candidate;
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
  const containers: string[] = [];
  const remove = async (): Promise<void> => {
    for (const id of containers)
      await engine.call('removing a test upstream', (d) => d.getContainer(id).remove({ force: true })).catch(() => undefined);
    await engine.call('removing the test internet network', (d) => d.getNetwork(networkName).remove()).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const runOnNetwork = async (name: string, cmd: string[], options: RunOnNetworkOptions = {}): Promise<string> => {
    const container = await engine.call('creating a test container', (d) =>
      d.createContainer({
        name: `${networkName}-${name}`,
        Image: TEST_IMAGES.net,
        User: options.user ?? '0:0',
        Entrypoint: [],
        Cmd: cmd,
        Env: options.env ?? [],
        Labels: labels,
        HostConfig: { NetworkMode: networkName, Dns: ['127.0.0.1'] },
        NetworkingConfig: {
          EndpointsConfig: { [networkName]: { Aliases: options.aliases ?? [], ...(options.ip ? { IPAMConfig: { IPv4Address: options.ip } } : {}) } },
        },
      }),
    );
    containers.push(container.id);
    if (options.archive) {
      const archive = options.archive;
      await engine.call('putting files into a test container', (d) => d.getContainer(container.id).putArchive(archive, { path: '/tmp' }));
    }
    await engine.call('starting a test container', (d) => d.getContainer(container.id).start());
    return container.id;
  };
  try {
    const upstreamAddress = `${prefix}.10`;
    const otherAddress = `${prefix}.11`;
    const ids = [
      await runOnNetwork('upstream', ['node', '-e', UPSTREAM_SCRIPT], {
        env: [`TLS_KEY=${certs.keyPem}`, `TLS_CERT=${certs.certPem}`, 'UPSTREAM_ID=registry'],
        aliases: ['registry.test', 'api.test', 'api.anthropic.com'].filter((name) => !options.withoutNames?.includes(name)),
        ip: upstreamAddress,
        archive: upstreamFilesTar(dir),
      }),
      await runOnNetwork('upstream-other', ['node', '-e', UPSTREAM_SCRIPT], {
        env: [`TLS_KEY=${certs.keyPem}`, `TLS_CERT=${certs.certPem}`, 'UPSTREAM_ID=other'],
        aliases: ['other.test'],
        ip: otherAddress,
      }),
    ];
    for (const id of ids) await waitUntilListening(engine, id);
    return {
      networkName,
      prefix,
      upstreamAddress,
      otherAddress,
      execIn: (containerId, cmd) => execIn(engine, containerId, cmd),
      caPem: certs.caPem,
      caFile,
      upstreamContainerId: ids[0]!,
      egress: (allowedHosts, overrides = {}) => ({
        validated: validateEgressSettings({
          network: 'allowlist',
          allowedHosts,
          networkPresets: overrides.networkPresets ?? [],
          gatewayImage: TEST_IMAGES.net,
          gatewayNetwork: networkName,
          gatewayCaFile: overrides.providerKeys ? caFile : '',
        }),
        ...(overrides.providerKeys ? { providerKeys: overrides.providerKeys } : {}),
        programPath: GATEWAY_PROGRAM,
        dns: ['127.0.0.1'],
        extraHosts: Object.entries(HOSTILE_NAMES).map(([name, address]) => `${name}:${address}`),
      }),
      settings: (allowedHosts, networkPresets = []) => ({
        network: 'allowlist',
        allowedHosts,
        networkPresets,
        gatewayImage: TEST_IMAGES.net,
        gatewayNetwork: networkName,
        // The gateway's upstream resolver is its own loopback: names the embedded DNS does not know go nowhere.
        gatewayDns: ['127.0.0.1'],
        gatewayCaFile: caFile,
      }),
      runOnNetwork: (name, cmd, options) => runOnNetwork(name, cmd, options),
      issueCertificate: (names) => issueTestCertificate(dir, names),
      remove,
    };
  } catch (error) {
    await remove();
    throw error;
  }
}

/** Waits until an upstream stand-in prints `listening` (its first line); throws with its log if it does not. */
export async function waitUntilListening(engine: DockerEngine, containerId: string): Promise<void> {
  for (let i = 0; ; i++) {
    const logs = await engine.call('reading the upstream log', (d) => d.getContainer(containerId).logs({ stdout: true, stderr: true }));
    if (String(logs).includes('listening')) return;
    if (i > 100) throw new Error(`an upstream stand-in did not start: ${String(logs)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function execIn(
  engine: DockerEngine,
  containerId: string,
  cmd: string[],
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return engine.call(
    'running a command in a test container',
    async (d) => {
      const exec = await d.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: false, stdin: false });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const { PassThrough } = await import('node:stream');
      const o = new PassThrough().on('data', (c: Buffer) => out.push(c));
      const e = new PassThrough().on('data', (c: Buffer) => err.push(c));
      d.modem.demuxStream(stream, o, e);
      await new Promise((resolve) => stream.on('end', resolve));
      const info = await exec.inspect();
      return { exitCode: info.ExitCode ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
    },
    { timeoutMs: 60_000 },
  );
}

/** Containers and volumes with this owner label, by role (`box` for those without one). */
export async function ownedBy(engine: DockerEngine, ownerId: string): Promise<{ containers: Record<string, string[]>; volumes: string[] }> {
  const list = await engine.call('listing', (d) => d.listContainers({ all: true, filters: { label: [`${LABEL_OWNER}=${ownerId}`] } }));
  const containers: Record<string, string[]> = {};
  for (const c of list) {
    if (c.Labels?.['dev.agent-sandbox.test']) continue;
    const role = c.Labels?.[LABEL_ROLE] ?? 'box';
    (containers[role] ??= []).push(c.Names[0]!.replace(/^\//, ''));
  }
  const volumes = await engine.call('listing', (d) => d.listVolumes({ filters: { label: [`${LABEL_OWNER}=${ownerId}`] } }));
  return { containers, volumes: (volumes.Volumes ?? []).map((v) => v.Name).sort() };
}

/** Waits until the gateway has recorded `n` attempts (records arrive when an attempt ends). */
export async function attemptsOf(box: Box, n: number): Promise<EgressAttempt[]> {
  for (let i = 0; i < 100 && box.egress!.attempts.length < n; i++) await new Promise((r) => setTimeout(r, 50));
  return [...box.egress!.attempts];
}

/** A CONNECT written by hand through bash's /dev/tcp, so the 403 body can be read (curl does not print it). */
export function rawConnect(target: string): string {
  return `exec 3<>/dev/tcp/127.0.0.1/3128 && printf 'CONNECT ${target} HTTP/1.1\\r\\nHost: ${target}\\r\\n\\r\\n' >&3 && timeout 5 cat <&3`;
}
