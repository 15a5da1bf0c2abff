/**
 * The engine server: a separate Node process that owns Docker, tar and hashing. VS Code starts it through
 * vscode-languageclient (IPC); `node dist/server.js --stdio` speaks the same protocol to any JSON-RPC client.
 */
import {
  CancellationToken,
  ErrorCodes,
  ResponseError,
  createConnection,
  type Connection,
} from 'vscode-languageserver/node';
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
  OrphansRemovedNotification,
  OutputNotification,
  PendingChangesRequest,
  EgressAttemptsRequest,
  PlanApplyRequest,
  ProgressNotification,
  PullImageRequest,
  ReadBaseRequest,
  ReadProposalRequest,
  ResetRequest,
  TerminalCloseRequest,
  TerminalExitNotification,
  TerminalInputNotification,
  TerminalOpenRequest,
  TerminalOutputNotification,
  TerminalResizeNotification,
  type ErrorData,
  type InitializationOptions,
} from '../shared/protocol';
import { SandboxError } from '../core/errors';
import type { ProgressReporter } from '../core/session/boxSession';
import { EngineService } from './engineService';
import { TerminalService } from './terminals';

/** JSON-RPC error code for failures the server understood (the reason is in `data`). */
const SANDBOX_ERROR_CODE = -32001;

export function startServer(connection: Connection): EngineService {
  const log = (line: string) => connection.console.log(line);
  const service = new EngineService({
    log,
    onOrphansRemoved: (removed) => void connection.sendNotification(OrphansRemovedNotification.type, removed),
  });

  /** Wraps a handler: maps the client's cancellation to an AbortSignal and errors to typed responses. */
  function handle<P, R>(fn: (params: P, signal: AbortSignal) => Promise<R> | R) {
    return async (params: P, token: CancellationToken): Promise<R> => {
      const controller = new AbortController();
      const subscription = token.onCancellationRequested(() => controller.abort());
      try {
        return await fn(params, controller.signal);
      } catch (error) {
        throw toResponseError(error, log);
      } finally {
        subscription.dispose();
      }
    };
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
    };
  });

  connection.onRequest(ConfigureRequest.type, handle((p) => service.configure(p.engine ?? {}, p.box ?? {}, p.egress)));
  connection.onRequest(CheckEngineRequest.type, (token) => handle(() => service.checkEngine())(undefined, token));
  connection.onRequest(
    PullImageRequest.type,
    handle((p, signal) => service.pullImage(p.image, progressFor(p.progressToken), signal)),
  );
  connection.onRequest(
    EnsureBoxRequest.type,
    handle((p, signal) => service.boxInfo(p.folder, progressFor(p.progressToken), signal)),
  );
  connection.onRequest(
    ExecRequest.type,
    handle((p, signal) =>
      service.exec(
        p,
        (runId, stream, text) => void connection.sendNotification(OutputNotification.type, { runId, stream, text }),
        () => undefined,
        signal,
      ),
    ),
  );
  connection.onRequest(CancelRunRequest.type, handle((p) => service.cancelRun(p.runId)));
  connection.onRequest(CollectRequest.type, handle((p, signal) => service.collect(p.folder, signal)));
  connection.onRequest(
    ReadProposalRequest.type,
    handle(async (p) => ({ base64: (await service.readProposal(p.folder, p.path)).toString('base64') })),
  );
  connection.onRequest(
    ReadBaseRequest.type,
    handle(async (p) => ({ base64: (await service.readBase(p.folder, p.path))?.toString('base64') })),
  );
  connection.onRequest(PlanApplyRequest.type, handle((p, signal) => service.planApply(p.folder, p, signal)));
  connection.onRequest(ApplyRequest.type, handle((p, signal) => service.apply(p.folder, p, signal)));
  connection.onRequest(MarkAppliedRequest.type, handle((p) => service.markApplied(p.folder, p.paths)));
  connection.onRequest(PendingChangesRequest.type, handle((p) => service.pendingChanges(p.folder)));
  connection.onRequest(EgressAttemptsRequest.type, handle((p) => service.egressAttempts(p.folder, p.runId)));
  connection.onRequest(AdvanceBaselineRequest.type, handle((p, signal) => service.advanceBaseline(p.folder, p.paths, signal)));
  connection.onRequest(DiscardRequest.type, handle((p, signal) => service.discard(p.folder, p.paths, signal)));
  connection.onRequest(ResetRequest.type, handle((p) => service.reset(p.folder, { discardPending: p.discardPending })));
  connection.onRequest(FileOpRequest.type, handle((p, signal) => service.fileOp(p, () => undefined, signal)));

  // Terminals.
  const terminals = new TerminalService({
    service,
    log,
    sendOutput: (p) => void connection.sendNotification(TerminalOutputNotification.type, p),
    sendExit: (p) => void connection.sendNotification(TerminalExitNotification.type, p),
  });
  connection.onRequest(TerminalOpenRequest.type, handle((p, signal) => terminals.open(p, progressFor(p.progressToken), signal)));
  connection.onRequest(TerminalCloseRequest.type, handle((p) => terminals.close(p.terminalId)));
  connection.onNotification(TerminalInputNotification.type, (p) => terminals.input(p.terminalId, p.data));
  connection.onNotification(TerminalResizeNotification.type, (p) =>
    void terminals.resize(p.terminalId, p.cols, p.rows).catch((error) => log(`[terminal] resize failed: ${error}`)),
  );

  // Boxes are ephemeral: when the client shuts the server down, they go with it.
  connection.onShutdown(async () => {
    terminals.dispose();
    await service.reset().catch((error) => log(`[engine] removing boxes at shutdown failed: ${error}`));
    service.dispose();
  });
  connection.onExit(() => {
    terminals.dispose();
    service.dispose();
  });
  return service;
}

function toResponseError(error: unknown, log: (line: string) => void): ResponseError<ErrorData> {
  if (error instanceof ResponseError) return error;
  if (SandboxError.is(error)) {
    const data: ErrorData = { reason: error.reason };
    if (error.options.setting) data.setting = error.options.setting;
    return new ResponseError(SANDBOX_ERROR_CODE, error.message, data);
  }
  log(`[engine] internal error: ${error instanceof Error ? error.stack : String(error)}`);
  return new ResponseError(ErrorCodes.InternalError, error instanceof Error ? error.message : String(error), {
    reason: 'internal',
  });
}

// `createConnection()` picks the transport from argv: `--stdio`, `--node-ipc` or `--socket=N`.
if (require.main === module) {
  const connection = createConnection();
  startServer(connection);
  connection.listen();
}
