// Starts the bundled engine server as a standalone process and speaks its protocol over stdio, as any
// non-VS Code client would. Used by the engine and security tiers and by the benchmark.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  createProtocolConnection,
  InitializeRequest,
  type InitializeResult,
  StreamMessageReader,
  StreamMessageWriter,
  type ProtocolConnection,
  type RequestMessage,
  type ResponseMessage,
} from 'vscode-languageserver-protocol/node';
import { ConfigureRequest, ResetRequest, type BoxSettings, type InitializeResultExtras } from '../../src/shared/protocol';
import { SERVER_EXEC_ARGV, serverEnvAdditions } from '../../src/shared/serverLaunch';

export const serverJs = path.resolve(__dirname, '..', '..', '..', 'dist', 'server.js');

export interface EngineServerProcess {
  process: ChildProcess;
  connection: ProtocolConnection;
  /** The `initialize` result (with the server's extras, e.g. the public key model keys are sealed to). */
  initialized: InitializeResult & Partial<InitializeResultExtras>;
}

/**
 * Spawns `node dist/server.js --stdio`, initializes it (with `storagePath` when given) and configures the box.
 * `beforeListen` registers notification handlers before any message can arrive.
 */
export async function startEngineServer(options: {
  box: Partial<BoxSettings>;
  storagePath?: string;
  beforeListen?: (connection: ProtocolConnection) => void;
  /** The server's environment (e.g. a `DOCKER_HOST` of another engine); defaults to this process's. */
  env?: NodeJS.ProcessEnv;
  /** Where the server's log goes: this process's stderr (tests) or nowhere (the benchmark). */
  stderr?: 'inherit' | 'ignore';
}): Promise<EngineServerProcess> {
  if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run "npm run build" first`);
  // Started as every client starts it (src/shared/serverLaunch.ts): the benchmark measures its memory.
  const env = options.env ?? process.env;
  const child = spawn(process.execPath, [...SERVER_EXEC_ARGV, serverJs, '--stdio'], {
    stdio: ['pipe', 'pipe', options.stderr ?? 'inherit'],
    env: { ...env, ...serverEnvAdditions(env) },
  });
  const connection = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  options.beforeListen?.(connection);
  connection.listen();
  const initializationOptions = options.storagePath ? { storagePath: options.storagePath } : undefined;
  const initialized = await connection.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: null,
    capabilities: {},
    initializationOptions,
  });
  // Package caches outlive the server and its boxes: off unless the suite asks (test/engine/caches.test.ts).
  await connection.sendRequest(ConfigureRequest.type, { engine: {}, box: { caches: false, ...options.box } });
  return { process: child, connection, initialized };
}

/** Resets the server's boxes (so nothing of the suite is left on the engine), then closes and kills it. */
export async function stopEngineServer(server: Partial<EngineServerProcess>): Promise<void> {
  try {
    await server.connection?.sendRequest(ResetRequest.type, {});
  } finally {
    server.connection?.dispose();
    server.process?.kill();
  }
}

/** A standalone server driven with raw JSON-RPC messages, for params no typed client would send (`null`, arrays). */
export interface RawEngineServer {
  process: ChildProcess;
  /** Sends `{ jsonrpc, id, method, params }` exactly as given (`params` left out when `undefined`) and resolves with the response. */
  request(method: string, params: unknown): Promise<ResponseMessage>;
  dispose(): void;
}

/** Spawns `node dist/server.js --stdio`, initializes and configures it with raw messages. */
export async function startRawEngineServer(options: { box: Partial<BoxSettings> }): Promise<RawEngineServer> {
  if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run "npm run build" first`);
  const child = spawn(process.execPath, [serverJs, '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const reader = new StreamMessageReader(child.stdout!);
  const writer = new StreamMessageWriter(child.stdin!);
  const pending = new Map<number, (response: ResponseMessage) => void>();
  reader.listen((message) => {
    const response = message as ResponseMessage;
    if (typeof response.id === 'number' && ('result' in response || 'error' in response)) pending.get(response.id)?.(response);
  });
  let nextId = 0;
  const request = (method: string, params: unknown): Promise<ResponseMessage> => {
    const id = ++nextId;
    const message: RequestMessage = { jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params: params as object }) };
    return new Promise((resolve, reject) => {
      pending.set(id, resolve);
      writer.write(message).catch(reject);
    });
  };
  const ok = async (method: string, params: unknown) => {
    const response = await request(method, params);
    if (response.error) throw new Error(`${method} failed: ${response.error.message}`);
  };
  await ok(InitializeRequest.method, { processId: process.pid, rootUri: null, capabilities: {} });
  await ok(ConfigureRequest.method, { engine: {}, box: { caches: false, ...options.box } });
  return {
    process: child,
    request,
    dispose: () => {
      reader.dispose();
      writer.dispose();
      child.kill();
    },
  };
}
