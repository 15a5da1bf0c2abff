import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { ConfigureRequest, type BoxSettings, type InitializationOptions } from '../shared/protocol';
import { SERVER_EXEC_ARGV, serverEnvAdditions } from '../shared/serverLaunch';

/** The bundled engine server next to this bundle (`dist/server.js`). */
export const SERVER_JS = path.join(__dirname, 'server.js');

export interface EngineProcessOptions {
  /** Where pending reviews persist (`InitializationOptions.storagePath`). */
  storagePath: string;
  /** Box settings beyond the defaults (e.g. `image`). */
  box: Partial<BoxSettings>;
  /** Lines the server logs; dropped when absent. */
  log?: (line: string) => void;
}

/**
 * An engine server of the command line's own: `node dist/server.js --stdio`, the same server VS Code starts,
 * driven by the same protocol. Its boxes go when it shuts down; its pending reviews stay in `storagePath`.
 */
export class EngineProcess {
  private constructor(
    readonly connection: MessageConnection,
    private readonly child: ChildProcess,
  ) {}

  static async start(options: EngineProcessOptions): Promise<EngineProcess> {
    const child = spawn(process.execPath, [...SERVER_EXEC_ARGV, SERVER_JS, '--stdio'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...serverEnvAdditions(process.env) },
    });
    child.stderr!.on('data', (chunk: Buffer) => options.log?.(chunk.toString('utf8').trimEnd()));
    const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    // window/logMessage carries the server's log lines.
    connection.onNotification('window/logMessage', (p: { message: string }) => options.log?.(p.message));
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`The engine server (${SERVER_JS}) exited with code ${code} before it answered.`))),
    );
    connection.listen();
    const initializationOptions: InitializationOptions = { storagePath: options.storagePath };
    await Promise.race([
      connection.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions }),
      exited,
    ]);
    await connection.sendNotification('initialized', {});
    await connection.sendRequest(ConfigureRequest.type, { engine: {}, box: options.box });
    exited.catch(() => undefined);
    return new EngineProcess(connection, child);
  }

  /** Shuts the server down (it removes its boxes; pending reviews stay persisted) and waits for it to exit. */
  async stop(): Promise<void> {
    const exit = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null) resolve();
      else this.child.once('exit', () => resolve());
    });
    try {
      await Promise.race([this.connection.sendRequest('shutdown'), exit]);
      await this.connection.sendNotification('exit');
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => this.child.kill(), 10_000);
    await exit;
    clearTimeout(timer);
    this.connection.dispose();
  }
}
