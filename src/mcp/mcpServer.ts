import type * as net from 'node:net';
import * as path from 'node:path';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { McpRunNotification } from '../shared/protocol';
import { SandboxError } from '../core/errors';
import { Disposable, toDisposable } from '../core/lifecycle';
import { sandboxToolDefinitions } from '../core/tools/toolDefinitions';
import { ToolCallError, newToolRunId, runTool, type ToolEngine } from '../core/tools/toolRunner';
import type { EngineService } from '../server/engineService';
import { LineTransport } from './lineTransport';
import { listenPrivateSocket, mcpSocketPath } from './privateSocket';
import { errorText } from '../core/util/errorText';

/** What the model reads once, at `initialize`: how to work through the box. */
const INSTRUCTIONS = [
  'These tools act in the Agent Sandbox box: a Docker container holding a copy of the workspace at /workspace,',
  'with no network. Use them instead of your own shell and file tools. Paths are relative to the workspace root.',
  'Nothing you do reaches the real workspace by itself: the developer reviews every change and accepts or rejects',
  'it. A rejected change is reverted in the box, so read a file again before editing it further. When you finish,',
  'call agentSandbox_pendingChanges and say that the changes await review; never say they are applied.',
].join(' ');

export interface McpEndpointsOptions {
  service: EngineService;
  log: (line: string) => void;
  /** Each tool call an MCP client makes, started and ended, for the client's run history. */
  onRun: (run: McpRunNotification.Params) => void;
  env?: Record<string, string | undefined>;
}

/**
 * The engine server's MCP endpoints: one private unix socket per folder, each connection an MCP session whose
 * tool calls run in that folder's box through the same `EngineService` as every other run, so their changes
 * are pending in the same review. A connection that closes aborts its calls in flight.
 */
export class McpEndpoints extends Disposable {
  private readonly listening = new Map<string, Promise<{ server: net.Server; socketPath: string }>>();
  private readonly connections = new Set<net.Socket>();
  private readonly engine: (onOutput?: OutputListener) => ToolEngine;

  constructor(private readonly options: McpEndpointsOptions) {
    super();
    this.engine = engineOverService(options.service);
    this._register(
      toDisposable(() => {
        for (const socket of this.connections) socket.destroy();
        for (const pending of this.listening.values())
          void pending.then(
            ({ server }) => server.close(),
            () => undefined,
          );
      }),
    );
  }

  /** Serves the folder's tools on its socket (once per folder); resolves with the socket's path. */
  async listen(folder: string): Promise<string> {
    if (!path.isAbsolute(folder)) throw new SandboxError('path-outside-workspace', `The folder must be an absolute path, got "${folder}".`);
    const key = path.resolve(folder);
    let pending = this.listening.get(key);
    if (!pending) {
      const socketPath = mcpSocketPath(key, this.options.env);
      pending = listenPrivateSocket(socketPath, (socket) => this.accept(key, socket)).then((server) => {
        this.options.log(`[mcp] serving ${key} on ${socketPath}`);
        return { server, socketPath };
      });
      this.listening.set(key, pending);
      pending.catch(() => this.listening.delete(key));
    }
    return (await pending).socketPath;
  }

  private accept(folder: string, socket: net.Socket): void {
    this.connections.add(socket);
    socket.once('close', () => this.connections.delete(socket));
    const server = createMcpServer({ ...this.options, engine: this.engine, folder });
    void server.connect(new LineTransport(socket)).catch((error) => {
      this.options.log(`[mcp] connection failed: ${errorText(error)}`);
      socket.destroy();
    });
  }
}

type OutputListener = (stream: 'stdout' | 'stderr', text: string) => void;

/** The engine server's `EngineService` as the shared tool runner needs it; a run's output goes to `onOutput`. */
function engineOverService(service: EngineService): (onOutput?: OutputListener) => ToolEngine {
  return (onOutput) => ({
    ensureBox: (folder, signal) => service.ensureBox(folder, () => undefined, signal),
    collect: (folder, signal) => service.collect(folder, signal),
    collectAfterRun: (folder, result) => (result.boxLost ? service.pendingChanges(folder) : service.collect(folder)),
    // `network: "none"` is checked by the runner; the engine enforces it once `sandbox/exec` takes it (the audit work).
    exec: ({ folder, command, cwd, timeoutSeconds, runId, network }, signal) =>
      service.exec(
        { folder, command, cwd, timeoutSeconds, runId, ...(network ? { network } : {}) },
        (_runId, stream, text) => onOutput?.(stream, text),
        () => undefined,
        signal,
      ),
    fileOp: (params, signal) => service.fileOp(params, () => undefined, signal),
  });
}

/** One MCP session over the folder's box: lists the sandbox tools and runs their calls. */
export function createMcpServer(options: {
  engine: (onOutput?: OutputListener) => ToolEngine;
  folder: string;
  log: (line: string) => void;
  onRun: McpEndpointsOptions['onRun'];
}): Server {
  const server = new Server(
    { name: 'agent-sandbox', title: 'Agent Sandbox', version: '0.1.0' },
    { capabilities: { tools: {} }, instructions: INSTRUCTIONS },
  );
  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: sandboxToolDefinitions.map((d) => ({ name: d.name, title: d.displayName, description: d.modelDescription, inputSchema: d.inputSchema })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const { folder, onRun } = options;
    const name = request.params.name;
    const agent = server.getClientVersion()?.name ?? 'MCP client';
    // A client that asked for progress gets a command's output as it comes (the result holds its end, as in VS Code).
    const progressToken = request.params._meta?.progressToken;
    let chunks = 0;
    const onOutput: OutputListener | undefined =
      progressToken === undefined
        ? undefined
        : (_stream, text) =>
            void extra
              .sendNotification({ method: 'notifications/progress', params: { progressToken, progress: ++chunks, message: text } })
              .catch(() => undefined);
    try {
      const outcome = await runTool({
        name,
        input: request.params.arguments ?? {},
        folder,
        runId: newToolRunId('mcp'),
        signal: extra.signal,
        engine: options.engine(onOutput),
        onStarted: (start) =>
          onRun({ event: 'started', runId: start.runId, folder, agent, tool: name, command: start.command, cwd: start.cwd, at: start.startedAt }),
        onEnded: (end) =>
          onRun({ event: 'ended', runId: end.runId, folder, at: end.endedAt, result: end.result, error: end.error, changeSet: end.changeSet }),
        log: options.log,
      });
      return { content: [{ type: 'text', text: outcome.text }] };
    } catch (error) {
      if (!ToolCallError.is(error)) throw error;
      // A call that cannot run is the client's mistake (a protocol error); a run the engine refused or failed is
      // the tool's result, so the model reads why, as a VS Code agent reads the same text.
      if (error.kind === 'input') throw new McpError(ErrorCode.InvalidParams, error.message);
      if (error.kind === 'cancelled') throw new McpError(ErrorCode.ConnectionClosed, error.message);
      return { content: [{ type: 'text', text: error.message }], isError: true };
    }
  });
  return server;
}
