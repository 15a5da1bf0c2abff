// The gateway's proxy logic in-process, on this machine's loopback only: the gateway listens on a unix socket
// in a temp folder, and the "upstream" hosts are servers on 127.0.0.1 that a fake resolver names. The address
// check is the real one, except where a test lets 127.0.0.1 through to play the internet.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { classifyAddress } from '../../../src/core/egress/addressPolicy';
import { buildAllowlist } from '../../../src/core/egress/allowlist';
import type { EgressAttempt } from '../../../src/core/egress/egressAttempt';
import { GatewayServer, runIdFromProxyAuthorization, sameAuthority, type GatewayOptions } from '../../../src/gateway/gatewayServer';
import { createRelayServer, GATEWAY_DOWN_TEXT } from '../../../src/gateway/relayServer';

interface Upstreams {
  /** A TCP echo server (stands in for a TLS host: the tunnel is opaque bytes). */
  echoPort: number;
  /** An HTTP server that answers with what it received. */
  httpPort: number;
  close(): Promise<void>;
}

async function startUpstreams(): Promise<Upstreams> {
  const echo = net.createServer((socket) => socket.pipe(socket));
  const web = http.createServer((req, res) => {
    let body = 0;
    req.on('data', (chunk: Buffer) => (body += chunk.length));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, proxyAuth: req.headers['proxy-authorization'] ?? null, body }),
      );
    });
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  return {
    echoPort: (echo.address() as net.AddressInfo).port,
    httpPort: (web.address() as net.AddressInfo).port,
    close: async () => {
      web.closeAllConnections();
      await Promise.all([new Promise((r) => echo.close(r)), new Promise((r) => web.close(r))]);
    },
  };
}

/** Raw request over the unix socket; resolves with the status line, headers, body and the socket. */
function rawRequest(socketPath: string, text: string): Promise<{ status: number; head: string; body: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let data = '';
    socket.on('error', reject);
    socket.write(text);
    const onData = (chunk: Buffer): void => {
      data += chunk.toString('utf8');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = data.slice(0, end);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? NaN);
      const body = data.slice(end + 4);
      if (status === 200 && /^CONNECT/.test(text)) {
        socket.off('data', onData);
        resolve({ status, head, body, socket });
      } else if (Number.isNaN(length) || Buffer.byteLength(body) >= length) {
        socket.off('data', onData);
        resolve({ status, head, body, socket });
      }
    };
    socket.on('data', onData);
  });
}

suite('unit: egress gateway server (loopback only)', () => {
  let dir: string;
  let upstreams: Upstreams;
  let gateway: GatewayServer | undefined;
  let attempts: EgressAttempt[];
  const closers: Array<() => Promise<void> | void> = [];

  suiteSetup(async () => {
    upstreams = await startUpstreams();
  });
  suiteTeardown(async () => {
    await upstreams.close();
  });
  setup(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-gateway-'));
    attempts = [];
  });
  teardown(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    if (gateway) {
      gateway.server.closeAllConnections();
      await new Promise((r) => gateway!.server.close(r));
      gateway = undefined;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Names resolve through `names`; `trustLoopback` lets 127.0.0.1 through the address check (the stand-in internet). */
  async function start(
    options: { allowed: string[]; names?: Record<string, string[]>; trustLoopback?: boolean } & Partial<GatewayOptions>,
  ): Promise<string> {
    const names = options.names ?? {};
    gateway = new GatewayServer({
      rules: buildAllowlist(options.allowed, []),
      maxConnections: options.maxConnections ?? 16,
      connectTimeoutMs: 5_000,
      idleTimeoutMs: 30_000,
      onAttempt: (attempt) => attempts.push(attempt),
      lookup:
        options.lookup ??
        (async (host) => {
          const found = names[host];
          if (!found) throw Object.assign(new Error(`no such name ${host}`), { code: 'ENOTFOUND' });
          return found.map((address) => ({ address, family: net.isIP(address) }));
        }),
      classify: options.classify ?? ((address) => (options.trustLoopback && address === '127.0.0.1' ? { allowed: true } : classifyAddress(address))),
    });
    const socketPath = path.join(dir, 'gateway.sock');
    await new Promise<void>((resolve) => gateway!.server.listen(socketPath, resolve));
    return socketPath;
  }

  async function attemptCount(n: number): Promise<void> {
    for (let i = 0; i < 200 && attempts.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(attempts.length, n, JSON.stringify(attempts));
  }

  test('CONNECT to an allowed host opens a tunnel to the address the gateway resolved, and the record counts the bytes', async () => {
    const socketPath = await start({ allowed: [`up.test:${upstreams.echoPort}`], names: { 'up.test': ['127.0.0.1'] }, trustLoopback: true });
    const { status, socket } = await rawRequest(
      socketPath,
      `CONNECT up.test:${upstreams.echoPort} HTTP/1.1\r\nHost: up.test:${upstreams.echoPort}\r\nProxy-Authorization: Basic ${Buffer.from('run-r42:x').toString('base64')}\r\n\r\n`,
    );
    assert.equal(status, 200);
    const echoed = await new Promise<string>((resolve) => {
      socket.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8')));
      socket.write('hello through the tunnel');
    });
    assert.equal(echoed, 'hello through the tunnel');
    socket.end();
    await attemptCount(1);
    const [a] = attempts;
    assert.deepEqual(
      {
        kind: a!.kind,
        method: a!.method,
        host: a!.host,
        port: a!.port,
        decision: a!.decision,
        reason: a!.reason,
        address: a!.address,
        up: a!.bytesUp,
        down: a!.bytesDown,
        runId: a!.runId,
      },
      {
        kind: 'connect',
        method: 'CONNECT',
        host: 'up.test',
        port: upstreams.echoPort,
        decision: 'allowed',
        reason: 'allowlisted',
        address: '127.0.0.1',
        up: 24,
        down: 24,
        runId: 'r42',
      },
    );
    assert.match(a!.detail, new RegExp(`allowed by "up.test:${upstreams.echoPort}"`));
    assert.ok(Date.parse(a!.end) >= Date.parse(a!.start));
  });

  test('CONNECT to a host not on the list gets a 403 naming the host and agentSandbox.allowedHosts, and is never resolved', async () => {
    let resolved = 0;
    const socketPath = await start({ allowed: ['up.test'], lookup: async () => (resolved++, [{ address: '127.0.0.1', family: 4 }]) });
    const { status, body } = await rawRequest(socketPath, 'CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n');
    assert.equal(status, 403);
    assert.match(body, /evil\.test:443 is not allowed/);
    assert.match(body, /add "evil\.test" to agentSandbox\.allowedHosts/);
    assert.equal(resolved, 0);
    await attemptCount(1);
    assert.equal(attempts[0]!.decision, 'denied');
    assert.equal(attempts[0]!.reason, 'not-allowlisted');
    // The control: the same gateway lets the listed host through to resolution.
    await rawRequest(socketPath, 'CONNECT up.test:443 HTTP/1.1\r\nHost: up.test:443\r\n\r\n');
    assert.equal(resolved, 1);
  });

  test('an allowed name that resolves to loopback, a private, a metadata or a mapped address is refused; a mixed answer too', async () => {
    const names = {
      'loop.test': ['127.0.0.1'],
      'private.test': ['10.1.2.3'],
      'meta.test': ['169.254.169.254'],
      'meta6.test': ['fd00:ec2::254'],
      'mapped.test': ['::ffff:127.0.0.1'],
      'mixed.test': ['203.0.113.9', '192.168.1.1'],
    };
    const socketPath = await start({ allowed: Object.keys(names), names });
    for (const [name, addresses] of Object.entries(names)) {
      const { status, body } = await rawRequest(socketPath, `CONNECT ${name}:443 HTTP/1.1\r\nHost: ${name}:443\r\n\r\n`);
      assert.equal(status, 403, name);
      assert.match(body, new RegExp(`${name.replace('.', '\\.')} resolved to `), name);
      assert.match(body, /never connects to loopback, private, link-local or metadata addresses/);
      assert.ok(
        addresses.some((address) => body.includes(address)),
        body,
      );
    }
    await attemptCount(Object.keys(names).length);
    assert.ok(attempts.every((a) => a.decision === 'denied' && a.reason === 'refused-address'));
    assert.deepEqual(
      attempts.map((a) => a.address),
      ['127.0.0.1', '10.1.2.3', '169.254.169.254', 'fd00:ec2::254', '::ffff:127.0.0.1', '192.168.1.1'],
    );
  });

  test('every request resolves again and checks again: a name that turns to loopback (rebinding) is refused on the next request', async () => {
    let answer = '127.0.0.1';
    const socketPath = await start({
      allowed: [`flip.test:${upstreams.echoPort}`],
      lookup: async () => [{ address: answer, family: 4 }],
      classify: (address) => (address === '127.0.0.1' && answer === 'trusted' ? { allowed: true } : classifyAddress(address)),
    });
    // First answer "public" (the test lets it through by name), then loopback.
    answer = 'trusted';
    const first = await rawRequest(socketPath, `CONNECT flip.test:${upstreams.echoPort} HTTP/1.1\r\n\r\n`).catch((e: Error) => ({
      status: 0,
      body: e.message,
      socket: undefined,
    }));
    first.socket?.destroy();
    answer = '127.0.0.1';
    const second = await rawRequest(socketPath, `CONNECT flip.test:${upstreams.echoPort} HTTP/1.1\r\n\r\n`);
    assert.equal(second.status, 403);
    assert.match(second.body, /resolved to 127\.0\.0\.1, a loopback address/);
  });

  test('IP literals: a refused address is refused even when listed, and an unlisted one is not allowed', async () => {
    const socketPath = await start({ allowed: ['127.0.0.1', '[::1]'] });
    for (const target of ['127.0.0.1:443', '[::1]:443']) {
      const { status, body } = await rawRequest(socketPath, `CONNECT ${target} HTTP/1.1\r\n\r\n`);
      assert.equal(status, 403, target);
      assert.match(body, /a loopback address/);
    }
    const unlisted = await rawRequest(socketPath, 'CONNECT 203.0.113.9:443 HTTP/1.1\r\n\r\n');
    assert.equal(unlisted.status, 403);
    assert.match(unlisted.body, /203\.0\.113\.9:443 is not allowed/);
  });

  test('plain HTTP to an allowed host is forwarded with its Host header, without the proxy credentials, and counted', async () => {
    const port = upstreams.httpPort;
    const socketPath = await start({ allowed: [`web.test:${port}`], names: { 'web.test': ['127.0.0.1'] }, trustLoopback: true });
    const body = 'x'.repeat(1000);
    const response = await rawRequest(
      socketPath,
      `POST http://web.test:${port}/upload?token=secret HTTP/1.1\r\nHost: web.test:${port}\r\nProxy-Authorization: Basic ${Buffer.from('run-abc:').toString('base64')}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    assert.equal(response.status, 200);
    const seen = JSON.parse(response.body) as Record<string, unknown>;
    assert.deepEqual(seen, { method: 'POST', url: '/upload?token=secret', host: `web.test:${port}`, proxyAuth: null, body: 1000 });
    await attemptCount(1);
    const a = attempts[0]!;
    assert.equal(a.kind, 'http');
    assert.equal(a.method, 'POST');
    assert.equal(a.path, '/upload', 'the query (which may hold a token) is not recorded');
    assert.equal(a.status, 200);
    assert.equal(a.bytesUp, 1000);
    assert.equal(a.bytesDown, Buffer.byteLength(response.body));
    assert.equal(a.runId, 'abc');
  });

  test('plain HTTP whose Host header names another host is refused (no reaching a denied virtual host through an allowed one)', async () => {
    const port = upstreams.httpPort;
    const socketPath = await start({ allowed: [`web.test:${port}`], names: { 'web.test': ['127.0.0.1'] }, trustLoopback: true });
    const { status, body } = await rawRequest(socketPath, `GET http://web.test:${port}/ HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n`);
    assert.equal(status, 403);
    assert.match(body, /Host header says "evil\.test"/);
    await attemptCount(1);
    assert.equal(attempts[0]!.reason, 'host-mismatch');
    // Control: the matching Host header goes through.
    const ok = await rawRequest(socketPath, `GET http://web.test:${port}/ HTTP/1.1\r\nHost: WEB.test:${port}\r\nConnection: close\r\n\r\n`);
    assert.equal(ok.status, 200);
  });

  test('requests the gateway does not forward: origin-form, https:// without CONNECT, a WebSocket upgrade, a CONNECT without a port', async () => {
    const socketPath = await start({ allowed: ['web.test', 'web.test:80'] });
    const origin = await rawRequest(socketPath, 'GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n');
    assert.equal(origin.status, 400);
    assert.match(origin.body, /send absolute http:\/\/ URLs, or CONNECT/);
    const https = await rawRequest(socketPath, 'GET https://web.test/ HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n');
    assert.equal(https.status, 400);
    const upgrade = await rawRequest(
      socketPath,
      'GET http://web.test/ HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    assert.equal(upgrade.status, 403);
    assert.match(upgrade.body, /use wss:\/\//);
    const noPort = await rawRequest(socketPath, 'CONNECT web.test HTTP/1.1\r\n\r\n');
    assert.equal(noPort.status, 400);
    await attemptCount(4);
    assert.deepEqual(
      attempts.map((a) => a.reason),
      ['bad-request', 'bad-request', 'upgrade-refused', 'bad-request'],
    );
  });

  test('connections beyond the limit are answered 503 and recorded; they are admitted again once others end', async () => {
    const socketPath = await start({
      allowed: [`up.test:${upstreams.echoPort}`],
      names: { 'up.test': ['127.0.0.1'] },
      trustLoopback: true,
      maxConnections: 3,
    });
    const open = [];
    for (let i = 0; i < 3; i++) {
      const r = await rawRequest(socketPath, `CONNECT up.test:${upstreams.echoPort} HTTP/1.1\r\n\r\n`);
      assert.equal(r.status, 200);
      open.push(r.socket);
    }
    assert.equal(gateway!.activeConnections, 3);
    const refused = await rawRequest(socketPath, `CONNECT up.test:${upstreams.echoPort} HTTP/1.1\r\n\r\n`);
    assert.equal(refused.status, 503);
    assert.match(refused.body, /already carries 3 connections/);
    for (const s of open) s.destroy();
    for (let i = 0; i < 100 && gateway!.activeConnections > 0; i++) await new Promise((r) => setTimeout(r, 10));
    const again = await rawRequest(socketPath, `CONNECT up.test:${upstreams.echoPort} HTTP/1.1\r\n\r\n`);
    assert.equal(again.status, 200);
    again.socket.destroy();
    await attemptCount(5);
    assert.equal(attempts.filter((a) => a.reason === 'too-many-connections').length, 1);
  });

  test('a name that does not resolve and a port nobody listens on fail with 502 and a reason', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const socketPath = await start({ allowed: ['nx.test', `up.test:${deadPort}`], names: { 'up.test': ['127.0.0.1'] }, trustLoopback: true });
    const nx = await rawRequest(socketPath, 'CONNECT nx.test:443 HTTP/1.1\r\n\r\n');
    assert.equal(nx.status, 502);
    assert.match(nx.body, /could not resolve nx\.test: ENOTFOUND/);
    const dead = await rawRequest(socketPath, `CONNECT up.test:${deadPort} HTTP/1.1\r\n\r\n`);
    assert.equal(dead.status, 502);
    assert.match(dead.body, /ECONNREFUSED/);
    await attemptCount(2);
    assert.deepEqual(
      attempts.map((a) => [a.decision, a.reason]),
      [
        ['failed', 'resolve-failed'],
        ['failed', 'connect-failed'],
      ],
    );
  });

  test('the relay carries bytes to the gateway socket, and answers a readable 502 when the gateway is gone', async () => {
    const socketPath = await start({ allowed: [] });
    const relay = createRelayServer({ socketPath, maxConnections: 64 });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => relay.close(() => r())));
    const port = (relay.address() as net.AddressInfo).port;
    const viaRelay = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        let text = '';
        s.on('data', (c: Buffer) => (text += c.toString()));
        s.on('end', () => resolve(text));
        s.on('error', reject);
        s.write('CONNECT evil.test:443 HTTP/1.1\r\n\r\n');
      });
    assert.match(await viaRelay(), /^HTTP\/1\.1 403[\s\S]*evil\.test:443 is not allowed/);
    gateway!.server.closeAllConnections();
    await new Promise((r) => gateway!.server.close(r));
    gateway = undefined;
    const down = await viaRelay();
    assert.match(down, /^HTTP\/1\.1 502 Bad Gateway/);
    assert.ok(down.endsWith(GATEWAY_DOWN_TEXT));
  });

  test('paused for an offline run: every CONNECT and plain request is refused with a 403 naming the run, whatever proxy user it claims; open tunnels close; resumed, it forwards again', async () => {
    const socketPath = await start({
      allowed: [`up.test:${upstreams.echoPort}`, `up.test:${upstreams.httpPort}`],
      names: { 'up.test': ['127.0.0.1'] },
      trustLoopback: true,
    });
    const connect = (user?: string) =>
      rawRequest(
        socketPath,
        `CONNECT up.test:${upstreams.echoPort} HTTP/1.1\r\nHost: up.test:${upstreams.echoPort}\r\n${user ? `Proxy-Authorization: Basic ${Buffer.from(`${user}:x`).toString('base64')}\r\n` : ''}\r\n`,
      );
    // Control: before the pause the same tunnel opens, and it stays open.
    const open = await connect('run-other');
    assert.equal(open.status, 200);
    const closed = new Promise<void>((resolve) => open.socket.once('close', () => resolve()));
    gateway!.setOffline(['offline-1']);
    await closed;
    for (const user of [undefined, 'run-other', 'run-offline-1']) {
      const refused = await connect(user);
      assert.equal(refused.status, 403, `proxy user ${user ?? '(none)'}`);
      assert.match(refused.body, /network is paused while an offline run \(network: "none"\) runs: offline-1/);
    }
    const plain = await rawRequest(socketPath, `GET http://up.test:${upstreams.httpPort}/x HTTP/1.1\r\nHost: up.test:${upstreams.httpPort}\r\n\r\n`);
    assert.equal(plain.status, 403);
    await attemptCount(5);
    assert.deepEqual(
      attempts.slice(1).map((a) => [a.decision, a.reason]),
      Array(4).fill(['denied', 'offline-run']),
    );
    gateway!.setOffline([]);
    const again = await connect();
    assert.equal(again.status, 200);
    again.socket.destroy();
  });

  test('helpers: run ids from proxy credentials, Host header comparison', () => {
    assert.equal(runIdFromProxyAuthorization(`Basic ${Buffer.from('run-a.b_c-1:pw').toString('base64')}`), 'a.b_c-1');
    assert.equal(runIdFromProxyAuthorization(`Basic ${Buffer.from('someone:pw').toString('base64')}`), undefined);
    assert.equal(runIdFromProxyAuthorization(`Basic ${Buffer.from('run-../x:').toString('base64')}`), undefined);
    assert.equal(runIdFromProxyAuthorization('Bearer abc'), undefined);
    assert.equal(runIdFromProxyAuthorization(undefined), undefined);
    assert.ok(sameAuthority('Example.com', 'example.com', 80, 80));
    assert.ok(sameAuthority('example.com:80', 'example.com', 80, 80));
    assert.ok(!sameAuthority('example.com:8080', 'example.com', 80, 80));
    assert.ok(!sameAuthority('', 'example.com', 80, 80));
    assert.ok(!sameAuthority('example.com@evil.test', 'example.com', 80, 80));
    assert.ok(sameAuthority('[::1]:8080', '::1', 8080, 80));
  });
});
