/**
 * The engine server: a separate Node process that owns Docker, tar and hashing. VS Code starts it through
 * vscode-languageclient (IPC); `node dist/server.js --stdio` speaks the same protocol to any JSON-RPC client.
 */
import { type CancellationToken, ErrorCodes, ResponseError, createConnection, type Connection } from 'vscode-languageserver/node';
import {
  AdvanceBaselineRequest,
  ApplyRequest,
  CancelRunRequest,
  CheckEngineRequest,
  CollectRequest,
  ConfigureRequest,
  DiscardRequest,
  EnsureBoxRequest,
  ExecRequest,
  FileOpRequest,
  MarkAppliedRequest,
  McpListenRequest,
  McpRunNotification,
  OrphansRemovedNotification,
  OutputNotification,
  PendingChangesRequest,
  EgressAttemptsRequest,
  PlanApplyRequest,
  ProgressNotification,
  PullImageRequest,
  FollowImageTagRequest,
  ReadBaseRequest,
  ReadProposalRequest,
  ResetRequest,
  ListCachesRequest,
  ClearCachesRequest,
  SetModelKeysRequest,
  TerminalCloseRequest,
  TerminalExitNotification,
  TerminalInputNotification,
  TerminalOpenRequest,
  TerminalOutputNotification,
  TerminalResizeNotification,
  type ErrorData,
  type InitializationOptions,
  type InitializeResultExtras,
} from '../shared/protocol';
import { ModelKeyReceiver } from '../core/egress/sealedKeys';
import type { Schema, SchemaIssue } from '../shared/schema';
import { SandboxError } from '../core/errors';
import type { ProgressReporter } from '../core/session/boxSession';
import { McpEndpoints } from '../mcp/mcpServer';
import { EngineService } from './engineService';
import { TerminalService } from './terminals';
import { errorText } from '../core/util/errorText';

/** JSON-RPC error code for failures the server understood (the reason is in `data`). */
const SANDBOX_ERROR_CODE = -32001;

export function startServer(connection: Connection): EngineService {
  const log = (line: string) => connection.console.log(line);
  const service = new EngineService({
    log,
    onOrphansRemoved: (removed) => void connection.sendNotification(OrphansRemovedNotification.type, removed),
  });
  // Model keys arrive sealed to this process's key (see sealedKeys.ts): a protocol trace never holds them.
  const modelKeyReceiver = new ModelKeyReceiver();

  /**
   * Registers a request handler behind the boundary: params that do not fit the message's schema are answered
   * with `-32602` naming the field before the service sees them; the client's cancellation becomes an
   * AbortSignal, and errors become typed responses.
   */
  function onRequest<P, R>(message: IncomingMessage<P>, fn: (params: P, signal: AbortSignal) => Promise<R> | R): void {
    // By method name, so the handler sees the params exactly as sent (vscode-jsonrpc passes the token last).
    connection.onRequest(message.method, async (...args: unknown[]): Promise<R> => {
      const token = args.pop() as CancellationToken;
      const issue = paramsIssue(message, args);
      if (issue) throw invalidParams(message.method, issue);
      const controller = new AbortController();
      const subscription = token.onCancellationRequested(() => controller.abort());
      try {
        return await fn(args[0] as P, controller.signal);
      } catch (error) {
        throw toResponseError(error, log);
      } finally {
        subscription.dispose();
      }
    });
  }

  /** Registers a notification handler; a notification whose params do not fit is logged and dropped (it has no reply). */
  function onNotification<P>(message: IncomingMessage<P>, fn: (params: P) => void): void {
    connection.onNotification(message.method, (...args: unknown[]) => {
      const issue = paramsIssue(message, args);
      if (issue) {
        log(`[engine] dropped ${message.method}: ${invalidParams(message.method, issue).message}`);
        return;
      }
      fn(args[0] as P);
    });
  }

  function progressFor(token: string | undefined): ProgressReporter {
    if (!token) return () => undefined;
    let last = 0;
    return (message, done, total) => {
      // At most ten updates a second: progress must not flood the pipe on a 100k-file tree.
      const now = Date.now();
      if (now - last < 100 && done !== undefined && done !== total) return;
      last = now;
      void connection.sendNotification(ProgressNotification.type, { token, message, done, total });
    };
  }

  connection.onInitialize((params) => {
    const options = params.initializationOptions as InitializationOptions | undefined;
    if (options?.storagePath) service.setStorageDir(options.storagePath);
    return {
      capabilities: {},
      serverInfo: { name: 'agent-sandbox-engine', version: '0.1.0' },
      modelKeys: { publicKey: modelKeyReceiver.publicKey },
    } satisfies InitializeResultExtras & Record<string, unknown>;
  });

  onRequest(ConfigureRequest, (p) => service.configure(p.engine, p.box, p.egress, p.imageBuilds));
  onRequest(SetModelKeysRequest, (p) => service.setModelKeys(modelKeyReceiver.open(p.sealed)));
  onRequest(CheckEngineRequest, () => service.checkEngine());
  onRequest(FollowImageTagRequest, () => service.followImageTag());
  onRequest(PullImageRequest, (p, signal) => service.pullImage(p.image, progressFor(p.progressToken), signal));
  onRequest(EnsureBoxRequest, (p, signal) => service.boxInfo(p.folder, progressFor(p.progressToken), signal));
  onRequest(ExecRequest, (p, signal) =>
    service.exec(
      p,
      (runId, stream, text) => void connection.sendNotification(OutputNotification.type, { runId, stream, text }),
      () => undefined,
      signal,
    ),
  );
  onRequest(CancelRunRequest, (p) => service.cancelRun(p.runId));
  onRequest(CollectRequest, (p, signal) => service.collect(p.folder, signal));
  onRequest(ReadProposalRequest, async (p) => ({ base64: (await service.readProposal(p.folder, p.path)).toString('base64') }));
  onRequest(ReadBaseRequest, async (p) => ({ base64: (await service.readBase(p.folder, p.path))?.toString('base64') }));
  onRequest(PlanApplyRequest, (p, signal) => service.planApply(p.folder, p, signal));
  onRequest(ApplyRequest, (p, signal) => service.apply(p.folder, p, signal));
  onRequest(MarkAppliedRequest, (p) => service.markApplied(p.folder, p.paths));
  onRequest(PendingChangesRequest, (p) => service.pendingChanges(p.folder));
  onRequest(EgressAttemptsRequest, (p) => service.egressAttempts(p.folder, p.runId));
  onRequest(AdvanceBaselineRequest, (p, signal) => service.advanceBaseline(p.folder, p.paths, signal));
  onRequest(DiscardRequest, (p, signal) => service.discard(p.folder, p.paths, signal));
  onRequest(ResetRequest, (p) => service.reset(p.folder, { discardPending: p.discardPending }));
  onRequest(FileOpRequest, (p, signal) => service.fileOp(p, () => undefined, signal));
  onRequest(ListCachesRequest, (_p, signal) => service.listCaches(signal));
  onRequest(ClearCachesRequest, (p, signal) => service.clearCaches(p.volumeNames, signal));

  // Terminals.
  const terminals = new TerminalService({
    service,
    log,
    sendOutput: (p) => void connection.sendNotification(TerminalOutputNotification.type, p),
    sendExit: (p) => void connection.sendNotification(TerminalExitNotification.type, p),
  });
  onRequest(TerminalOpenRequest, (p, signal) => terminals.open(p, progressFor(p.progressToken), signal));
  onRequest(TerminalCloseRequest, (p) => terminals.close(p.terminalId));
  onNotification(TerminalInputNotification, (p) => terminals.input(p.terminalId, p.data));
  onNotification(
    TerminalResizeNotification,
    (p) => void terminals.resize(p.terminalId, p.cols, p.rows).catch((error) => log(`[terminal] resize failed: ${error}`)),
  );

  // MCP: external agents' tool calls are runs of this server like any other; the client records them.
  const mcp = new McpEndpoints({ service, log, onRun: (run) => void connection.sendNotification(McpRunNotification.type, run) });
  onRequest(McpListenRequest, async (p) => ({ socketPath: await mcp.listen(p.folder) }));

  // Boxes are ephemeral: when the client shuts the server down, they go with it.
  connection.onShutdown(async () => {
    mcp.dispose();
    terminals.dispose();
    await service.reset().catch((error) => log(`[engine] removing boxes at shutdown failed: ${error}`));
    service.dispose();
  });
  connection.onExit(() => {
    mcp.dispose();
    terminals.dispose();
    service.dispose();
  });
  return service;
}

/** A message the server receives: its method and the schema its params must fit (`protocol.ts`). */
export interface IncomingMessage<P> {
  method: string;
  params: Schema<P>;
}

/** Why `args` (what vscode-jsonrpc passed the handler, without the token) do not fit the message's params. */
function paramsIssue<P>(message: IncomingMessage<P>, args: unknown[]): SchemaIssue | undefined {
  // Positional params (a JSON array) are spread into several arguments; every message here takes one object by name.
  if (args.length > 1) return { field: '', expected: 'an object (params by name)', got: `${args.length} positional params` };
  return message.params.check(args[0], '');
}

function invalidParams(method: string, issue: SchemaIssue): ResponseError<ErrorData> {
  const where = issue.field ? `"${issue.field}"` : 'the params';
  return new ResponseError<ErrorData>(
    ErrorCodes.InvalidParams,
    `Invalid params for ${method}: ${where} must be ${issue.expected}, got ${issue.got}.`,
    {
      reason: 'invalid-params',
      field: issue.field,
    },
  );
}

function toResponseError(error: unknown, log: (line: string) => void): ResponseError<ErrorData> {
  if (error instanceof ResponseError) return error;
  if (SandboxError.is(error)) {
    const data: ErrorData = { reason: error.reason };
    if (error.options.setting) data.setting = error.options.setting;
    if (error.options.address) data.address = error.options.address;
    if (error.options.imageBuild) data.imageBuild = error.options.imageBuild;
    return new ResponseError(SANDBOX_ERROR_CODE, error.message, data);
  }
  log(`[engine] internal error: ${error instanceof Error ? error.stack : String(error)}`);
  return new ResponseError(ErrorCodes.InternalError, errorText(error), {
    reason: 'internal',
  });
}

// `createConnection()` picks the transport from argv: `--stdio`, `--node-ipc` or `--socket=N`.
if (require.main === module) {
  const connection = createConnection();
  startServer(connection);
  connection.listen();
}
