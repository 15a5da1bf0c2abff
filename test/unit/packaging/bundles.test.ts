// Smoke tests of the esbuild bundles as they ship. Each bundle is copied to a temp folder with no
// node_modules above it, as in an installed .vsix built with --no-dependencies: a dependency left out of the
// bundle fails here instead of in users' hands.
import * as assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
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
    // eslint-disable-next-line @typescript-eslint/no-require-imports
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

  test('dist/extension.js loads outside VS Code, needs nothing but Node built-ins and vscode, and not the language client', () => {
    loadIsolated('extension.js', (loaded, requested) => {
      assert.equal(typeof loaded.activate, 'function', 'dist/extension.js exports no activate()');
      const foreign = requested.filter((request) => request !== 'vscode' && !builtins.has(request));
      assert.deepEqual(foreign, [], `the bundle requires modules it does not contain: ${foreign.join(', ')}`);
      const size = fs.statSync(path.join(dist, 'extension.js')).size;
      const client = fs.statSync(path.join(dist, 'languageClient.js')).size;
      // vscode-languageclient lives in its own bundle, loaded when the engine server first starts.
      assert.ok(!fs.readFileSync(path.join(dist, 'extension.js'), 'utf8').includes('class LanguageClient'), 'dist/extension.js contains the language client');
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
});
