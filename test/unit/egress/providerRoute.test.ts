// The gateway's model provider routes in-process, on loopback only: a TLS stand-in for the provider API (a CA
// made here with openssl, trusted through the gateway's extra-CA option), a plain HTTP stand-in for another
// allowed host, and a fake resolver naming both 127.0.0.1 (let through the address check only where a test says).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { classifyAddress } from '../../../src/core/egress/addressPolicy';
import { buildAllowlist } from '../../../src/core/egress/allowlist';
import type { EgressAttempt } from '../../../src/core/egress/egressAttempt';
import { MODEL_KEY_PLACEHOLDER, MODEL_PROVIDERS, type ModelProvider, type ModelProviderId } from '../../../src/core/egress/modelProviders';
import { GatewayServer } from '../../../src/gateway/gatewayServer';
import { makeTestCertificates, type TestCertificates } from '../../testCertificates';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

suite('unit: egress gateway provider routes (loopback only)', function () {
  this.timeout(30_000);
  let dir: string;
  let certs: TestCertificates;
  let api: https.Server;
  let other: http.Server;
  let apiPort: number;
  let otherPort: number;
  const seen: Seen[] = [];
  let releaseSecondEvent: () => void = () => undefined;
  let gateway: GatewayServer | undefined;
  let attempts: EgressAttempt[];
  let socketPath: string;

  suiteSetup(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-provider-'));
    certs = makeTestCertificates(dir, ['api.anthropic.com', 'api.openai.com']);
    api = https.createServer({ key: certs.keyPem, cert: certs.certPem }, (req, res) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      req.resume();
      if (req.url === '/v1/stream') {
        // The second event is written only after the client has read the first: a gateway that buffers
        // the response would never deliver the first one, and the test would time out.
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write('event: one\ndata: {"n":1}\n\n');
        new Promise<void>((resolve) => (releaseSecondEvent = resolve)).then(() => res.end('event: two\ndata: {"n":2}\n\n'));
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true }));
    });
    other = http.createServer((req, res) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      req.resume();
      res.end('other');
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    apiPort = (api.address() as net.AddressInfo).port;
    otherPort = (other.address() as net.AddressInfo).port;
  });
  suiteTeardown(async () => {
    api.closeAllConnections();
    other.closeAllConnections();
    await Promise.all([new Promise((r) => api.close(r)), new Promise((r) => other.close(r))]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  setup(() => {
    seen.length = 0;
    attempts = [];
  });
  teardown(async () => {
    if (gateway) {
      gateway.server.closeAllConnections();
      await new Promise((r) => gateway!.server.close(r));
      gateway = undefined;
    }
    fs.rmSync(socketPath, { force: true });
  });

  /** The provider table with the stand-in's port (the real origins, on another port). */
  function providersOnPort(port: number): Record<ModelProviderId, ModelProvider> {
    const table = {} as Record<ModelProviderId, ModelProvider>;
    for (const [id, p] of Object.entries(MODEL_PROVIDERS) as [ModelProviderId, ModelProvider][])
      table[id] = { ...p, upstream: `${p.upstream}:${port}` };
    return table;
  }

  async function start(options: { keys?: Record<string, string>; ca?: boolean; resolvesTo?: string } = {}): Promise<void> {
    const address = options.resolvesTo ?? '127.0.0.1';
    gateway = new GatewayServer({
      rules: buildAllowlist([`other.test:${otherPort}`], []),
      maxConnections: 16,
      connectTimeoutMs: 5_000,
      idleTimeoutMs: 30_000,
      onAttempt: (attempt) => attempts.push(attempt),
      lookup: async (host) => {
        if (!['api.anthropic.com', 'api.openai.com', 'other.test'].includes(host))
          throw Object.assign(new Error('no such name'), { code: 'ENOTFOUND' });
        return [{ address: host === 'other.test' ? '127.0.0.1' : address, family: 4 }];
      },
      classify: (a) => (a === '127.0.0.1' ? { allowed: true } : classifyAddress(a)),
      providerKeys: options.keys ?? { anthropic: 'sk-ant-REAL' },
      extraCaPem: options.ca === false ? undefined : certs.caPem,
      providers: providersOnPort(apiPort),
    });
    socketPath = path.join(dir, 'gateway.sock');
    fs.rmSync(socketPath, { force: true });
    await new Promise<void>((resolve) => gateway!.server.listen(socketPath, resolve));
  }

  /** A request to the gateway as the relay passes it on: `path` origin-form (a route) or absolute (the proxy). */
  function request(target: string, headers: Record<string, string>, onChunk?: (text: string) => void): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath, method: 'POST', path: target, headers }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString('utf8');
          onChunk?.(chunk.toString('utf8'));
        });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end('{"model":"claude"}');
    });
  }

  async function attemptCount(n: number): Promise<void> {
    for (let i = 0; i < 200 && attempts.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(attempts.length, n, JSON.stringify(attempts));
  }

  test("a request with the placeholder arrives at the provider with the real key in its header, over TLS to the provider's name; the record has host, path, method, status, bytes", async () => {
    await start();
    const answer = await request('/_agent-sandbox/anthropic/v1/messages?beta=true', {
      'x-api-key': MODEL_KEY_PLACEHOLDER,
      'anthropic-version': '2023-06-01',
      host: '127.0.0.1:3128',
    });
    assert.deepEqual(answer, { status: 200, body: '{"ok":true}' });
    assert.equal(seen.length, 1);
    assert.deepEqual(
      { url: seen[0]!.url, key: seen[0]!.headers['x-api-key'], host: seen[0]!.headers.host, version: seen[0]!.headers['anthropic-version'] },
      { url: '/v1/messages?beta=true', key: 'sk-ant-REAL', host: 'api.anthropic.com', version: '2023-06-01' },
    );
    await attemptCount(1);
    const a = attempts[0]!;
    assert.deepEqual(
      {
        kind: a.kind,
        method: a.method,
        host: a.host,
        port: a.port,
        path: a.path,
        status: a.status,
        decision: a.decision,
        reason: a.reason,
        address: a.address,
        up: a.bytesUp,
      },
      {
        kind: 'http',
        method: 'POST',
        host: 'api.anthropic.com',
        port: apiPort,
        path: '/v1/messages',
        status: 200,
        decision: 'allowed',
        reason: 'provider-key',
        address: '127.0.0.1',
        up: 18,
      },
    );
    assert.ok(a.bytesDown >= 11);
    assert.doesNotMatch(JSON.stringify(attempts), /sk-ant-REAL/, 'the record never holds the key');
  });

  test('a route path that carries a run id records the run; the provider sees the same path as without it', async () => {
    await start();
    const answer = await request('/_agent-sandbox/run-tool-7/anthropic/v1/messages', { 'x-api-key': MODEL_KEY_PLACEHOLDER });
    assert.equal(answer.status, 200);
    assert.equal(seen[0]!.url, '/v1/messages');
    await attemptCount(1);
    assert.deepEqual({ runId: attempts[0]!.runId, path: attempts[0]!.path }, { runId: 'tool-7', path: '/v1/messages' });
  });

  test('OpenAI: a Bearer placeholder becomes the real Bearer key', async () => {
    await start({ keys: { openai: 'sk-proj-REAL' } });
    const answer = await request('/_agent-sandbox/openai/v1/chat/completions', { authorization: `Bearer ${MODEL_KEY_PLACEHOLDER}` });
    assert.equal(answer.status, 200);
    assert.deepEqual({ auth: seen[0]!.headers.authorization, host: seen[0]!.headers.host }, { auth: 'Bearer sk-proj-REAL', host: 'api.openai.com' });
  });

  test('server-sent events stream through: the first event arrives before the provider has sent the second', async () => {
    await start();
    const chunks: string[] = [];
    const answer = await request('/_agent-sandbox/anthropic/v1/stream', { 'x-api-key': MODEL_KEY_PLACEHOLDER }, (text) => {
      chunks.push(text);
      if (text.includes('event: one')) releaseSecondEvent();
    });
    assert.equal(answer.status, 200);
    assert.match(chunks[0]!, /^event: one/);
    assert.match(answer.body, /event: one[\s\S]*event: two/);
  });

  test("the key goes only to the provider: a proxy request to another allowed host (even under the route's path) keeps the placeholder", async () => {
    await start();
    const viaProxy = await request(`http://other.test:${otherPort}/_agent-sandbox/anthropic/v1/messages`, {
      host: `other.test:${otherPort}`,
      'x-api-key': MODEL_KEY_PLACEHOLDER,
    });
    assert.equal(viaProxy.body, 'other');
    assert.deepEqual(
      { url: seen[0]!.url, key: seen[0]!.headers['x-api-key'] },
      { url: '/_agent-sandbox/anthropic/v1/messages', key: MODEL_KEY_PLACEHOLDER },
    );
    // The route itself ignores the Host the box wrote: it goes to the provider, never to other.test.
    const hostTrick = await request('/_agent-sandbox/anthropic/v1/messages', { host: `other.test:${otherPort}`, 'x-api-key': MODEL_KEY_PLACEHOLDER });
    assert.equal(hostTrick.body, '{"ok":true}');
    assert.equal(seen[1]!.headers.host, 'api.anthropic.com');
    assert.equal(seen.filter((s) => JSON.stringify(s.headers).includes('sk-ant-REAL')).length, 1);
  });

  test('no stored key: 403 naming the Set API Key command; an unknown provider: 404 naming the routes; nothing reaches the provider', async () => {
    await start({ keys: {} });
    const none = await request('/_agent-sandbox/anthropic/v1/messages', { 'x-api-key': MODEL_KEY_PLACEHOLDER });
    assert.equal(none.status, 403);
    assert.match(none.body, /no Anthropic API key is stored.*Agent Sandbox: Set API Key/);
    const unknown = await request('/_agent-sandbox/mistral/v1/chat', {});
    assert.equal(unknown.status, 404);
    assert.match(unknown.body, /no model provider route "mistral".*anthropic, openai, gemini/);
    assert.equal(seen.length, 0);
    await attemptCount(2);
    assert.deepEqual(
      attempts.map((a) => [a.decision, a.reason]),
      [
        ['denied', 'no-provider-key'],
        ['denied', 'bad-request'],
      ],
    );
  });

  test("the provider's name resolving to a private address is refused after resolution (the key never leaves); control: 127.0.0.1 let through above", async () => {
    await start({ resolvesTo: '10.1.2.3' });
    const answer = await request('/_agent-sandbox/anthropic/v1/messages', { 'x-api-key': MODEL_KEY_PLACEHOLDER });
    assert.equal(answer.status, 403);
    assert.match(answer.body, /api\.anthropic\.com resolved to 10\.1\.2\.3, a private address/);
    await attemptCount(1);
    assert.equal(attempts[0]!.reason, 'refused-address');
    assert.equal(seen.length, 0);
  });

  test('TLS is verified: without the extra CA the provider stand-in is refused (502), with it the same request passes', async () => {
    await start({ ca: false });
    const refused = await request('/_agent-sandbox/anthropic/v1/messages', { 'x-api-key': MODEL_KEY_PLACEHOLDER });
    assert.equal(refused.status, 502);
    assert.match(refused.body, /TLS: .*(self.signed|unable to (get|verify)|certificate)/i);
    assert.equal(seen.length, 0);
    gateway!.reconfigure({ extraCaPem: certs.caPem });
    assert.equal((await request('/_agent-sandbox/anthropic/v1/messages', { 'x-api-key': MODEL_KEY_PLACEHOLDER })).status, 200);
  });

  test('reconfigure: a new key and new rules apply to the next request', async () => {
    await start({ keys: {} });
    assert.equal((await request('/_agent-sandbox/anthropic/v1/messages', {})).status, 403);
    assert.equal((await request(`http://other.test:${otherPort}/`, { host: `other.test:${otherPort}` })).body, 'other');
    gateway!.reconfigure({ providerKeys: { anthropic: 'sk-ant-NEW' }, rules: [] });
    assert.equal((await request('/_agent-sandbox/anthropic/v1/messages', {})).status, 200);
    assert.equal(seen.at(-1)!.headers['x-api-key'], 'sk-ant-NEW');
    assert.equal((await request(`http://other.test:${otherPort}/`, { host: `other.test:${otherPort}` })).status, 403);
  });
});
