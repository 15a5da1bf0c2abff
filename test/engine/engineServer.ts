// Starts the bundled engine server as a standalone process and speaks its protocol over stdio, as any
// non-VS Code client would.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  createProtocolConnection,
  InitializeRequest,
  StreamMessageReader,
  StreamMessageWriter,
  type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import { ConfigureRequest, type BoxSettings } from '../../src/shared/protocol';

export const serverJs = path.resolve(__dirname, '..', '..', '..', 'dist', 'server.js');

export interface EngineServerProcess {
  process: ChildProcess;
  connection: ProtocolConnection;
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
}): Promise<EngineServerProcess> {
  if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run "npm run build" first`);
  const child = spawn(process.execPath, [serverJs, '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'], env: options.env ?? process.env });
  const connection = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  options.beforeListen?.(connection);
  connection.listen();
  const initializationOptions = options.storagePath ? { storagePath: options.storagePath } : undefined;
  await connection.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions });
  await connection.sendRequest(ConfigureRequest.type, { engine: {}, box: options.box });
  return { process: child, connection };
}
