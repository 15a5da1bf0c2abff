// Smoke tests of the esbuild bundles as they ship. Each bundle is copied to a temp folder with no
// node_modules above it, as in an installed .vsix built with --no-dependencies: a dependency left out of the
// bundle fails here instead of in users' hands.
import * as assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..', '..');
const dist = path.join(root, 'dist');

/** A copy of dist/<name> in a fresh temp folder that has no node_modules on its resolution path. */
function isolatedCopy(name: string): { file: string; dispose(): void } {
  const source = path.join(dist, name);
  assert.ok(fs.existsSync(source), `${source} is missing: run \`npm run build\``);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-bundle-'));
  const file = path.join(folder, 'dist', name);
  fs.mkdirSync(path.dirname(file));
  fs.copyFileSync(source, file);
  return { file, dispose: () => fs.rmSync(folder, { recursive: true, force: true }) };
}

/** Minimal LSP client over stdio: Content-Length framing, JSON-RPC 2.0 requests by id. */
class StdioRpc {
  private buffer = Buffer.alloc(0);
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();

  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    child.once('exit', (code, signal) => {
      for (const { reject } of this.pending.values()) reject(new Error(`server exited (${code ?? signal}) before answering`));
      this.pending.clear();
    });
  }

  request(method: string, params: unknown): Promise<unknown> {
    const id = this.nextId++;
    this.send({ jsonrpc: '2.0', id, method, params });
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  notify(method: string, params?: unknown): void {
    this.send({ jsonrpc: '2.0', method, params });
  }

  private send(message: object): void {
    const body = Buffer.from(JSON.stringify(message), 'utf8');
    this.child.stdin.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]));
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const headerEnd = this.buffer.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const length = /Content-Length: (\d+)/i.exec(this.buffer.subarray(0, headerEnd).toString('ascii'));
      assert.ok(length, `a message without Content-Length: ${this.buffer.subarray(0, headerEnd).toString()}`);
      const start = headerEnd + 4;
      const end = start + Number(length[1]);
      if (this.buffer.length < end) return;
      const message = JSON.parse(this.buffer.subarray(start, end).toString('utf8')) as { id?: number; result?: unknown; error?: { message: string } };
      this.buffer = this.buffer.subarray(end);
      const waiter = typeof message.id === 'number' ? this.pending.get(message.id) : undefined;
      if (waiter && ('result' in message || 'error' in message)) {
        this.pending.delete(message.id!);
        if (message.error) waiter.reject(new Error(message.error.message));
        else waiter.resolve(message.result);
      }
    }
  }
}

/**
 * A stand-in for the `vscode` module that only has to survive module evaluation: every property is a callable,
 * constructible, extendable value. The bundle must load without touching VS Code; activation is not tried here.
 */
function vscodeStub(): unknown {
  const target = function stub(): void {};
  const stub: unknown = new Proxy(target, {
    get: (_t, key) => (key === 'then' ? undefined : key === Symbol.toPrimitive ? () => '' : key === 'prototype' ? {} : stub),
    apply: () => stub,
    construct: () => ({}),
  });
  return stub;
}

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

suite('Packaging: bundles', function () {
  this.timeout(30_000);
  const cleanups: Array<() => void> = [];
  teardown(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });

  test('dist/server.js answers an LSP initialize request over stdio on its own', async () => {
    const copy = isolatedCopy('server.js');
    cleanups.push(copy.dispose);
    const child = spawn(process.execPath, [copy.file, '--stdio'], { cwd: path.dirname(copy.file), stdio: 'pipe' });
    cleanups.push(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const rpc = new StdioRpc(child);
    const initialize = rpc.request('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
    const result = (await within(10_000, 'initialize', initialize).catch((error: Error) => {
      throw new Error(`${error.message}\nstderr: ${stderr}`);
    })) as { capabilities?: unknown };
    assert.equal(typeof result?.capabilities, 'object', `initialize returned ${JSON.stringify(result)}`);
    rpc.notify('initialized', {});
    await within(10_000, 'shutdown', rpc.request('shutdown', null));
    rpc.notify('exit');
    assert.equal(await within(10_000, 'exit', exited), 0, `the server did not exit cleanly after shutdown/exit; stderr: ${stderr}`);
  });

  /** Loads an isolated copy of a dist/ bundle with a stub `vscode`; returns its exports and what it required. */
  function loadIsolated(name: string, check: (exports: Record<string, unknown>, requested: string[]) => void): void {
    const copy = isolatedCopy(name);

    const Module = require('node:module') as { _load(request: string, parent: { filename?: string } | undefined, isMain: boolean): unknown };
    const originalLoad = Module._load;
    const requested: string[] = [];
    const stub = vscodeStub();
    Module._load = function (request, parent, isMain) {
      if (parent?.filename === copy.file) requested.push(request);
      if (request === 'vscode') return stub;
      return originalLoad.call(this, request, parent, isMain);
    };
    try {
      check(require(copy.file) as Record<string, unknown>, requested);
    } finally {
      Module._load = originalLoad;
      delete require.cache[copy.file];
      copy.dispose();
    }
  }

  const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

  test("dockerode parts the extension never calls are not bundled: BuildKit sessions (gRPC, protobuf) and docker-modem's own ssh2 client", () => {
    for (const name of ['server.js', 'extension.js', 'languageClient.js']) {
      const text = fs.readFileSync(path.join(dist, name), 'utf8');
      for (const marker of ['@grpc/grpc-js', 'protobufjs', 'SSH-2.0-']) assert.ok(!text.includes(marker), `${name} bundles ${marker}`);
    }
    // The stand-ins say what they are if anything ever calls them.
    assert.match(fs.readFileSync(path.join(dist, 'server.js'), 'utf8'), /dockerode\/lib\/session is not bundled with Agent Sandbox/);
  });

  test('dist/extension.js loads outside VS Code, needs nothing but Node built-ins and vscode, and not the language client', () => {
    loadIsolated('extension.js', (loaded, requested) => {
      assert.equal(typeof loaded.activate, 'function', 'dist/extension.js exports no activate()');
      const foreign = requested.filter((request) => request !== 'vscode' && !builtins.has(request));
      assert.deepEqual(foreign, [], `the bundle requires modules it does not contain: ${foreign.join(', ')}`);
      const size = fs.statSync(path.join(dist, 'extension.js')).size;
      const client = fs.statSync(path.join(dist, 'languageClient.js')).size;
      // vscode-languageclient lives in its own bundle, loaded when the engine server first starts.
      assert.ok(
        !fs.readFileSync(path.join(dist, 'extension.js'), 'utf8').includes('class LanguageClient'),
        'dist/extension.js contains the language client',
      );
      assert.ok(size < client, `dist/extension.js (${size} B) should be smaller than dist/languageClient.js (${client} B)`);
    });
  });

  test('dist/languageClient.js loads on its own and exports what EngineClient uses', () => {
    loadIsolated('languageClient.js', (loaded, requested) => {
      for (const name of ['LanguageClient', 'State', 'TransportKind', 'ErrorAction', 'CloseAction']) {
        assert.ok(loaded[name] !== undefined, `dist/languageClient.js does not export ${name}`);
      }
      assert.equal((loaded.State as Record<string, number>).Running, 2);
      const foreign = requested.filter((request) => request !== 'vscode' && !builtins.has(request));
      assert.deepEqual(foreign, [], `the bundle requires modules it does not contain: ${foreign.join(', ')}`);
    });
  });
  test('dist/gateway.js runs on its own (Node built-ins only): gateway and relay on loopback answer a denied CONNECT with the 403 text and an attempt line', async () => {
    const copy = isolatedCopy('gateway.js');
    cleanups.push(copy.dispose);
    const socketPath = path.join(path.dirname(copy.file), 'gateway.sock');
    const spawnRole = (
      role: string,
      env: Record<string, string>,
    ): { child: ChildProcessWithoutNullStreams; lines: string[]; ready: Promise<Record<string, unknown>> } => {
      const child = spawn(process.execPath, [copy.file, role], {
        env: { PATH: process.env.PATH ?? '', AGENT_SANDBOX_GATEWAY_SOCKET: socketPath, ...env },
        stdio: 'pipe',
      });
      cleanups.push(() => child.kill('SIGKILL'));
      const lines: string[] = [];
      let buffered = '';
      const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('utf8');
          for (let i; (i = buffered.indexOf('\n')) >= 0; buffered = buffered.slice(i + 1)) {
            const line = buffered.slice(0, i);
            lines.push(line);
            if (line.includes('"ready"')) resolve(JSON.parse(line) as Record<string, unknown>);
          }
        });
        child.once('exit', (code) => reject(new Error(`${role} exited ${code}: ${lines.join('\n')}`)));
      });
      return { child, lines, ready };
    };
    const gateway = spawnRole('gateway', {
      AGENT_SANDBOX_GATEWAY: JSON.stringify({ rules: [], maxConnections: 4, connectTimeoutMs: 1000, idleTimeoutMs: 1000 }),
    });
    // The gateway listens only once its first stdin line (keys, CA) arrived.
    gateway.child.stdin.write('{"type":"configure","providerKeys":{}}\n');
    await within(10_000, 'gateway ready', gateway.ready);
    const relay = spawnRole('relay', { AGENT_SANDBOX_RELAY_PORT: '0' });
    const { port } = (await within(10_000, 'relay ready', relay.ready)) as { port: number };
    const net = await import('node:net');
    const answer = await within(
      10_000,
      'a 403 through the relay',
      new Promise<string>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        let text = '';
        s.on('data', (c: Buffer) => (text += c.toString()));
        s.on('end', () => resolve(text));
        s.on('error', reject);
        s.write('CONNECT denied.example:443 HTTP/1.1\r\n\r\n');
      }),
    );
    assert.match(answer, /^HTTP\/1\.1 403 Forbidden/);
    assert.match(answer, /denied\.example:443 is not allowed/);
    for (let i = 0; i < 100 && !gateway.lines.some((l) => l.includes('"attempt"')); i++) await new Promise((r) => setTimeout(r, 20));
    const record = gateway.lines
      .map((l) => JSON.parse(l) as { type: string; attempt?: { host: string; reason: string } })
      .find((l) => l.type === 'attempt');
    assert.deepEqual({ host: record?.attempt?.host, reason: record?.attempt?.reason }, { host: 'denied.example', reason: 'not-allowlisted' });
    const unknown = spawnRole('nonsense', {});
    await assert.rejects(unknown.ready, /exited 2: .*unknown mode/);
  });
  test('dist/cli.js runs on plain Node with only dist/server.js beside it: `agent-sandbox mcp` starts its own server and lists the eight tools', async () => {
    const cli = isolatedCopy('cli.js');
    cleanups.push(cli.dispose);
    fs.copyFileSync(path.join(dist, 'server.js'), path.join(path.dirname(cli.file), 'server.js'));
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-cli-'));
    cleanups.push(() => fs.rmSync(work, { recursive: true, force: true }));
    fs.mkdirSync(path.join(work, 'folder'));
    const help = spawnSync(process.execPath, [cli.file, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: agent-sandbox <command>/);
    const child = spawn(process.execPath, [cli.file, 'mcp'], {
      cwd: path.join(work, 'folder'),
      env: { ...process.env, AGENT_SANDBOX_MCP_DIR: path.join(work, 'sockets'), AGENT_SANDBOX_STORAGE: path.join(work, 'storage') },
    });
    cleanups.push(() => child.kill());
    const lines: string[] = [];
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts);
    });
    const reply = (id: number) =>
      within(
        20_000,
        `the MCP reply ${id}`,
        (async () => {
          for (;;) {
            const line = lines.find((l) => (JSON.parse(l) as { id?: number }).id === id);
            if (line) return JSON.parse(line) as { result: { serverInfo?: { name: string }; tools?: { name: string }[] } };
            await new Promise((r) => setTimeout(r, 50));
          }
        })(),
      );
    const send = (message: object) => child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
    send({
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bundle-test', version: '1' } },
    });
    assert.equal((await reply(1)).result.serverInfo?.name, 'agent-sandbox');
    send({ method: 'notifications/initialized' });
    send({ id: 2, method: 'tools/list' });
    assert.deepEqual(
      (await reply(2)).result.tools?.map((t) => t.name),
      [
        'agentSandbox_runCommand',
        'agentSandbox_readFile',
        'agentSandbox_listDirectory',
        'agentSandbox_writeFile',
        'agentSandbox_editFile',
        'agentSandbox_applyPatch',
        'agentSandbox_deleteFile',
        'agentSandbox_pendingChanges',
      ],
    );
    // The client going away ends the bridge and the server it started.
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.stdin.end();
    assert.equal(await within(20_000, 'the bridge exiting', exited), 0);
  });

  test('dist/devcontainers-cli runs on its own (no node_modules above it): its version and the build command the engine server uses', () => {
    // Reading and building a configuration needs an engine (the CLI looks for containers): the engine tier does that
    // through dist/server.js (test/engine/devcontainerImage.test.ts).
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-devcontainers-cli-'));
    try {
      fs.cpSync(path.join(dist, 'devcontainers-cli'), path.join(folder, 'dist', 'devcontainers-cli'), { recursive: true });
      const cli = path.join(folder, 'dist', 'devcontainers-cli', 'devcontainer.js');
      const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000, cwd: folder });
      const version = run(['--version']);
      assert.equal(version.status, 0, version.stderr);
      const manifest = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', '@devcontainers', 'cli', 'package.json'), 'utf8')) as {
        version: string;
      };
      assert.equal(version.stdout.trim(), manifest.version);
      const help = run(['build', '--help']);
      assert.equal(help.status, 0, help.stderr);
      for (const option of ['--image-name', '--config', '--log-format', '--no-lockfile', '--docker-path'])
        assert.ok(help.stdout.includes(option), option);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
