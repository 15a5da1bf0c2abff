import type * as net from 'node:net';
import * as path from 'node:path';
import { McpListenRequest, McpRunNotification, PendingChangesRequest } from '../shared/protocol';
import { connectPrivateSocket, mcpSocketPath } from '../mcp/privateSocket';
import { CliHistoryRecorder, openHistory } from './cliHistory';
import { EngineProcess } from './engineProcess';
import type { FolderStorage } from './folderStorage';

export interface BridgeOptions {
  folder: string;
  storage: FolderStorage;
  box: { image?: string };
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  log: (line: string) => void;
}

/**
 * `agent-sandbox mcp`: bridges an MCP client on stdio to the folder's MCP socket. The socket of a running VS
 * Code window (its engine server listens for each open folder) is used when there is one, from the folder or
 * its nearest parent that has one; otherwise the bridge starts an engine server of its own for the folder,
 * records the runs it reports in the folder's history, and stops it when the client goes.
 */
export async function runMcpBridge(options: BridgeOptions): Promise<number> {
  const existing = await connectNearest(options.folder);
  if (existing) {
    options.log(`[mcp] bridging to ${existing.socketPath}`);
    return pipe(existing.socket, options);
  }
  options.log(`[mcp] no Agent Sandbox server serves ${options.folder}: starting one (pending changes persist in ${options.storage.dir})`);
  const engine = await EngineProcess.start({ storagePath: options.storage.dir, box: options.box, log: options.log });
  const history = new CliHistoryRecorder(await openHistory(options.storage.dir));
  engine.connection.onNotification(
    McpRunNotification.type,
    (run) => void recordRun(engine, history, run).catch((error) => options.log(`[mcp] history: ${String(error)}`)),
  );
  try {
    const { socketPath } = await engine.connection.sendRequest(McpListenRequest.type, { folder: options.folder });
    const socket = await connectPrivateSocket(socketPath);
    return await pipe(socket, options);
  } finally {
    await engine.stop();
  }
}

async function recordRun(engine: EngineProcess, history: CliHistoryRecorder, run: McpRunNotification.Params): Promise<void> {
  if (run.event === 'started') {
    const before = await engine.connection.sendRequest(PendingChangesRequest.type, { folder: run.folder }).catch(() => undefined);
    await history.start(
      {
        runId: run.runId,
        folder: run.folder,
        source: 'mcp',
        agent: run.agent,
        command: run.command ?? run.tool ?? '?',
        cwd: run.cwd,
        startedAt: run.at,
      },
      before,
    );
  } else {
    await history.end({ runId: run.runId, endedAt: run.at, result: run.result, error: run.error, changeSet: run.changeSet });
  }
}

/** The live socket of the folder or of its nearest parent; undefined when none answers. Privacy errors are thrown. */
async function connectNearest(folder: string): Promise<{ socket: net.Socket; socketPath: string } | undefined> {
  for (let dir = path.resolve(folder); ; dir = path.dirname(dir)) {
    const socketPath = mcpSocketPath(dir);
    try {
      return { socket: await connectPrivateSocket(socketPath), socketPath };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // No socket directory yet, no socket, or a dead server's socket: look further up.
      if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw error;
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** Copies stdin to the socket and the socket to stdout until either side ends; resolves with the exit code. */
function pipe(socket: net.Socket, { input, output }: BridgeOptions): Promise<number> {
  return new Promise((resolve) => {
    input.pipe(socket);
    socket.pipe(output as NodeJS.WritableStream, { end: false });
    input.once('end', () => socket.end());
    socket.once('close', () => {
      input.unpipe(socket);
      resolve(0);
    });
    socket.once('error', () => resolve(1));
  });
}
