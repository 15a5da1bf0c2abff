import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  State,
  TransportKind,
  type LanguageClientOptions,
  type ServerOptions,
} from 'vscode-languageclient/node';
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
  type InitializationOptions,
} from '../shared/protocol';
import { Disposable } from '../core/lifecycle';
import type { SandboxSettings } from './settings';

/** What the status bar shows of a box. */
export type BoxState = 'none' | 'starting' | 'ready' | 'running';

/** Restarts allowed within `RESTART_WINDOW_MS` before the client gives up and says so. */
const MAX_RESTARTS = 4;
const RESTART_WINDOW_MS = 3 * 60_000;

export interface EngineClientOptions {
  /** Absolute path of `dist/server.js`. */
  serverModule: string;
  /** The extension's workspace storage, where the server persists pending reviews. */
  storagePath?: string;
  log: vscode.LogOutputChannel;
  settings: SandboxSettings;
}

/**
 * The extension host's side of the engine server: starts it on first use (never at activation), keeps it
 * configured, restarts it when it crashes and tells the user, and exposes the protocol as typed methods.
 */
export class EngineClient extends Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient> | undefined;
  private readonly restarts: number[] = [];
  private progressCounter = 0;

  private readonly outputEmitter = this._register(new vscode.EventEmitter<OutputNotification.Params>());
  /** Output chunks of runs, as they happen. */
  readonly onOutput = this.outputEmitter.event;
  private readonly progressEmitter = this._register(new vscode.EventEmitter<ProgressNotification.Params>());
  readonly onProgress = this.progressEmitter.event;
  private readonly boxStateEmitter = this._register(new vscode.EventEmitter<{ folder?: string; state: BoxState }>());
  /** The box of a folder (or every box, when `folder` is absent) changed state. */
  readonly onDidChangeBoxState = this.boxStateEmitter.event;
  private readonly restartEmitter = this._register(new vscode.EventEmitter<void>());
  /** Fires after the server was restarted following a crash (its boxes and pending changes are gone). */
  readonly onDidRestart = this.restartEmitter.event;

  private readonly terminalOutputEmitter = this._register(new vscode.EventEmitter<TerminalOutputNotification.Params>());
  /** Output of sandboxed terminals. */
  readonly onTerminalOutput = this.terminalOutputEmitter.event;
  private readonly terminalExitEmitter = this._register(new vscode.EventEmitter<TerminalExitNotification.Params>());
  /** A sandboxed terminal's process ended. */
  readonly onTerminalExit = this.terminalExitEmitter.event;

  constructor(private readonly options: EngineClientOptions) {
    super();
    this._register(options.settings.onDidChange(() => void this.configure()));
  }

  /** The running client, started on first use. */
  private async ready(): Promise<LanguageClient> {
    if (this.client?.state === State.Running) return this.client;
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(): Promise<LanguageClient> {
    const { log, serverModule } = this.options;
    const serverOptions: ServerOptions = {
      run: { module: serverModule, transport: TransportKind.ipc },
      debug: { module: serverModule, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6011'] } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [],
      initializationOptions: { storagePath: this.options.storagePath } satisfies InitializationOptions,
      outputChannel: log,
      revealOutputChannelOn: 4 /* RevealOutputChannelOn.Never */,
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => this.onServerClosed(),
      },
    };
    const client = this.client ?? new LanguageClient('agentSandbox.engine', 'Agent Sandbox Engine', serverOptions, clientOptions);
    if (!this.client) {
      this.client = client;
      this._register(client.onNotification(OutputNotification.type, (p) => this.outputEmitter.fire(p)));
      this._register(client.onNotification(ProgressNotification.type, (p) => this.progressEmitter.fire(p)));
      this._register(client.onNotification(TerminalOutputNotification.type, (p) => this.terminalOutputEmitter.fire(p)));
      this._register(client.onNotification(TerminalExitNotification.type, (p) => this.terminalExitEmitter.fire(p)));
      this._register(
        client.onNotification(OrphansRemovedNotification.type, (p) =>
          log.info(`[engine] removed ${p.containers.length} orphaned box(es) and ${p.volumes.length} volume(s)`),
        ),
      );
      this._register(
        client.onDidChangeState((event) => {
          if (event.oldState === State.Starting && event.newState === State.Running && this.restarts.length > 0) {
            void this.afterRestart();
          }
        }),
      );
      this._register({ dispose: () => void client.stop().catch(() => undefined) });
    }
    const started = Date.now();
    await client.start();
    log.info(`[client] engine server started in ${Date.now() - started} ms`);
    await this.configure(client);
    return client;
  }

  private onServerClosed() {
    const now = Date.now();
    while (this.restarts.length > 0 && now - this.restarts[0] > RESTART_WINDOW_MS) this.restarts.shift();
    this.restarts.push(now);
    if (this.restarts.length > MAX_RESTARTS) {
      this.options.log.error('[client] the engine server crashed repeatedly; not restarting it');
      void vscode.window.showErrorMessage(
        'The Agent Sandbox engine stopped repeatedly and was not restarted. See the "Agent Sandbox" output for details, then run "Agent Sandbox: Reset Sandbox" to try again.',
      );
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    this.options.log.warn('[client] the engine server stopped unexpectedly; restarting it');
    return { action: CloseAction.Restart, handled: true };
  }

  private async afterRestart(): Promise<void> {
    await this.configure();
    void vscode.window.showWarningMessage(
      'The Agent Sandbox engine stopped unexpectedly and was restarted. Boxes it left behind were removed; the next run starts a fresh box.',
    );
    // The first engine call of the new server removes the dead server's boxes (found by label).
    await this.checkEngine().catch((error) => this.options.log.warn(`[client] engine check after restart failed: ${error}`));
    this.boxStateEmitter.fire({ state: 'none' });
    this.restartEmitter.fire();
  }

  private async configure(client?: LanguageClient): Promise<void> {
    const target = client ?? (this.client?.state === State.Running ? this.client : undefined);
    if (!target) return;
    try {
      await target.sendRequest(ConfigureRequest.type, { engine: this.options.settings.engine(), box: this.options.settings.box() });
    } catch (error) {
      this.options.log.error(`[client] settings rejected: ${error instanceof Error ? error.message : error}`);
      void vscode.window.showErrorMessage(`Agent Sandbox: ${error instanceof Error ? error.message : error}`, 'Open Settings').then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', 'agentSandbox');
      });
    }
  }

  /** A fresh token for `sandbox/progress` notifications. */
  newProgressToken(): string {
    return `progress-${++this.progressCounter}`;
  }

  async checkEngine() {
    return (await this.ready()).sendRequest(CheckEngineRequest.type);
  }

  async pullImage(params: PullImageRequest.Params, token?: vscode.CancellationToken) {
    return (await this.ready()).sendRequest(PullImageRequest.type, params, token);
  }

  async ensureBox(params: EnsureBoxRequest.Params, token?: vscode.CancellationToken) {
    return this.tracked(params.folder, 'starting', async () => (await this.ready()).sendRequest(EnsureBoxRequest.type, params, token));
  }

  async exec(params: ExecRequest.Params, token?: vscode.CancellationToken) {
    return this.tracked(params.folder, 'running', async () => (await this.ready()).sendRequest(ExecRequest.type, params, token));
  }

  /** Reports `during` while `work` runs, then `ready` (or `none` when the box is gone). */
  private async tracked<T>(folder: string, during: BoxState, work: () => Promise<T>): Promise<T> {
    this.boxStateEmitter.fire({ folder, state: during });
    try {
      const result = await work();
      this.boxStateEmitter.fire({ folder, state: 'ready' });
      return result;
    } catch (error) {
      const reason = (error as { data?: { reason?: string } }).data?.reason;
      this.boxStateEmitter.fire({ folder, state: reason === 'no-box' || during === 'starting' ? 'none' : 'ready' });
      throw error;
    }
  }

  async cancelRun(runId: string) {
    return (await this.ready()).sendRequest(CancelRunRequest.type, { runId });
  }

  async collect(folder: string, token?: vscode.CancellationToken) {
    return (await this.ready()).sendRequest(CollectRequest.type, { folder }, token);
  }

  async readProposal(folder: string, path: string): Promise<Uint8Array> {
    const result = await (await this.ready()).sendRequest(ReadProposalRequest.type, { folder, path });
    return Buffer.from(result.base64, 'base64');
  }

  /** The baseline content of a changed file, when the server kept it. */
  async readBase(folder: string, path: string): Promise<Uint8Array | undefined> {
    const result = await (await this.ready()).sendRequest(ReadBaseRequest.type, { folder, path });
    return result.base64 === undefined ? undefined : Buffer.from(result.base64, 'base64');
  }

  async planApply(params: PlanApplyRequest.Params) {
    return (await this.ready()).sendRequest(PlanApplyRequest.type, params);
  }

  async apply(params: ApplyRequest.Params) {
    return (await this.ready()).sendRequest(ApplyRequest.type, params);
  }

  async pendingChanges(folder: string) {
    return (await this.ready()).sendRequest(PendingChangesRequest.type, { folder });
  }

  async advanceBaseline(folder: string, paths: string[]) {
    return (await this.ready()).sendRequest(AdvanceBaselineRequest.type, { folder, paths });
  }

  async markApplied(folder: string, paths: string[]) {
    return (await this.ready()).sendRequest(MarkAppliedRequest.type, { folder, paths });
  }

  async discard(folder: string, paths?: string[]) {
    return (await this.ready()).sendRequest(DiscardRequest.type, { folder, paths });
  }

  async fileOp(params: FileOpRequest.Params) {
    return (await this.ready()).sendRequest(FileOpRequest.type, params);
  }

  /** Opens a terminal in the folder's box (see `TerminalOpenRequest`). */
  async openTerminal(params: TerminalOpenRequest.Params, token?: vscode.CancellationToken) {
    return this.tracked(params.folder, 'starting', async () => (await this.ready()).sendRequest(TerminalOpenRequest.type, params, token));
  }

  /** Kills a terminal's process tree in the box; resolves after its exit was reported. */
  async closeTerminal(terminalId: string) {
    if (!this.client || this.client.state !== State.Running) return false;
    return this.client.sendRequest(TerminalCloseRequest.type, { terminalId });
  }

  /** Keystrokes for a terminal; dropped when the server is not running (the terminal is gone with it). */
  terminalInput(terminalId: string, data: string): void {
    if (this.client?.state === State.Running) void this.client.sendNotification(TerminalInputNotification.type, { terminalId, data });
  }

  terminalResize(terminalId: string, cols: number, rows: number): void {
    if (this.client?.state === State.Running) void this.client.sendNotification(TerminalResizeNotification.type, { terminalId, cols, rows });
  }

  /** Removes boxes (and, with `discardPending`, their pending reviews). */
  async reset(folder?: string, options: { discardPending?: boolean } = {}) {
    if (!options.discardPending && (!this.client || this.client.state !== State.Running)) return;
    await (await this.ready()).sendRequest(ResetRequest.type, { folder, discardPending: options.discardPending });
    this.boxStateEmitter.fire({ folder, state: 'none' });
  }

  /** Stops the server; it removes its boxes on shutdown. */
  async stop(): Promise<void> {
    const client = this.client;
    if (client && client.state === State.Running) {
      await client.stop(10_000).catch((error) => this.options.log.warn(`[client] stopping the engine server: ${error}`));
    }
  }
}
