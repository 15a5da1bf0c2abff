import * as vscode from 'vscode';
import type { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { LanguageClient, LanguageClientOptions, ServerOptions } from 'vscode-languageclient/node';
import {
  AdvanceBaselineRequest,
  ApplyRequest,
  CancelRunRequest,
  CheckEngineRequest,
  CollectRequest,
  ConfigureRequest,
  SetModelKeysRequest,
  type InitializeResultExtras,
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
  TerminalCloseRequest,
  TerminalExitNotification,
  TerminalInputNotification,
  TerminalOpenRequest,
  TerminalOutputNotification,
  TerminalResizeNotification,
  type ErrorData,
  type ExecResult,
  type InitializationOptions,
} from '../shared/protocol';
import { Disposable } from '../core/lifecycle';
import { SERVER_EXEC_ARGV, serverEnvAdditions } from '../shared/serverLaunch';
import { sealModelKeys } from '../core/egress/sealedKeys';
import type { ModelKeyStore } from './secrets/modelKeyStore';
import type { InsecureEngineConsent } from './engineConsent';
import type { ImageBuildConsent } from './imageBuildConsent';
import { errorReason } from './errorMessages';
import type { SandboxSettings } from './settings';
import { errorText } from '../core/util/errorText';

/*
 * Messages go out and are handled by method name. The protocol's message-type objects are built from this
 * bundle's copy of vscode-jsonrpc, while the language client (its own bundle, loaded lazily) compares their
 * parameter structures by identity with its own copy and would reject them. By name, the client infers the
 * structure ("auto": one object, sent by name), which is what every message here uses.
 */
function send<P, R>(client: LanguageClient, type: RequestType<P, R, void>, params: P, token?: vscode.CancellationToken): Promise<R> {
  // An `undefined` token would count as a second positional parameter.
  return token ? client.sendRequest<R>(type.method, params, token) : client.sendRequest<R>(type.method, params);
}

function send0<R>(client: LanguageClient, type: RequestType0<R, void>): Promise<R> {
  return client.sendRequest<R>(type.method);
}

function notify<P>(client: LanguageClient, type: NotificationType<P>, params: P): Promise<void> {
  return client.sendNotification(type.method, params);
}

function onNotification<P>(client: LanguageClient, type: NotificationType<P>, handler: (params: P) => void): vscode.Disposable {
  return client.onNotification(type.method, handler);
}

/** What the status bar shows of a box. */
export type BoxState = 'none' | 'starting' | 'ready' | 'running';

/** Restarts allowed within `RESTART_WINDOW_MS` before the client gives up and says so. */
const MAX_RESTARTS = 4;
const RESTART_WINDOW_MS = 3 * 60_000;

/** What `dist/languageClient.js` exports (src/host/languageClient.ts). */
type LanguageClientModule = typeof import('./languageClient');

export interface EngineClientOptions {
  /** Absolute path of `dist/server.js`. */
  serverModule: string;
  /** Absolute path of `dist/languageClient.js`, loaded when the server first starts (not at activation). */
  languageClientModule: string;
  /** The extension's workspace storage, where the server persists pending reviews. */
  storagePath?: string;
  log: vscode.LogOutputChannel;
  settings: SandboxSettings;
  /** Asks before the server may talk plain TCP to a remote engine; without it such engines stay refused. */
  insecureEngines?: InsecureEngineConsent;
  /** The model API keys the egress gateways add; sent sealed after every configure and when they change. */
  modelKeys?: ModelKeyStore;
  /** Asks before a folder's devcontainer.json or `.agent-sandbox/Dockerfile` is built; without it nothing is built. */
  imageBuilds?: ImageBuildConsent;
}

/**
 * The extension host's side of the engine server: starts it on first use (never at activation), keeps it
 * configured, restarts it when it crashes and tells the user, and exposes the protocol as typed methods.
 */
export class EngineClient extends Disposable {
  private client: LanguageClient | undefined;
  private languageClient: LanguageClientModule | undefined;
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

  private readonly mcpRunEmitter = this._register(new vscode.EventEmitter<McpRunNotification.Params>());
  /** A tool call of an MCP client (served by this window's engine server) started or ended. */
  readonly onMcpRun = this.mcpRunEmitter.event;

  private readonly terminalOutputEmitter = this._register(new vscode.EventEmitter<TerminalOutputNotification.Params>());
  /** Output of sandboxed terminals. */
  readonly onTerminalOutput = this.terminalOutputEmitter.event;
  private readonly terminalExitEmitter = this._register(new vscode.EventEmitter<TerminalExitNotification.Params>());
  /** A sandboxed terminal's process ended. */
  readonly onTerminalExit = this.terminalExitEmitter.event;

  constructor(private readonly options: EngineClientOptions) {
    super();
    this._register(options.settings.onDidChange(() => void this.configure()));
    // Trust granted: the folder's own image may be asked about and built from now on.
    this._register(vscode.workspace.onDidGrantWorkspaceTrust(() => void this.configure()));
    if (options.modelKeys) this._register(options.modelKeys.onDidChange(() => void this.sendModelKeys().catch(() => undefined)));
  }

  /**
   * Sends the stored model keys to the running server, sealed to its public key (a protocol trace shows only
   * ciphertext). Undefined when the server is not running: it gets them when it starts.
   */
  async sendModelKeys(client?: LanguageClient): Promise<SetModelKeysRequest.Result | undefined> {
    const target = client ?? this.running;
    const store = this.options.modelKeys;
    if (!target || !store) return undefined;
    const publicKey = (target.initializeResult as Partial<InitializeResultExtras> | undefined)?.modelKeys?.publicKey;
    if (!publicKey) throw new Error('The engine server did not give a key to seal model keys to; restart VS Code.');
    try {
      const result = await send(target, SetModelKeysRequest.type, { sealed: sealModelKeys(publicKey, await store.all()) });
      for (const note of result.notes) this.options.log.warn(`[egress] ${note}`);
      // A box in use keeps its previous way out until its runs and terminals end: say so where it is seen.
      if (result.notes.length > 0) void vscode.window.showWarningMessage(vscode.l10n.t('Agent Sandbox: {0}', result.notes[0]));
      return result;
    } catch (error) {
      this.options.log.error(`[client] model keys refused: ${error instanceof Error ? error.message : error}`);
      throw error;
    }
  }

  /** The client when its server is running; `undefined` before the first start and while (re)starting. */
  private get running(): LanguageClient | undefined {
    return this.client && this.languageClient && this.client.state === this.languageClient.State.Running ? this.client : undefined;
  }

  /** The running client, started on first use. */
  private async ready(): Promise<LanguageClient> {
    if (this.running) return this.running;
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(): Promise<LanguageClient> {
    const { log, serverModule } = this.options;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { CloseAction, ErrorAction, LanguageClient, State, TransportKind } = (this.languageClient ??= require(
      this.options.languageClientModule,
    ) as LanguageClientModule);
    const serverOptions: ServerOptions = {
      run: {
        module: serverModule,
        transport: TransportKind.ipc,
        options: { execArgv: [...SERVER_EXEC_ARGV], env: serverEnvAdditions(process.env) },
      },
      debug: { module: serverModule, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6011'] } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [],
      initializationOptions: { storagePath: this.options.storagePath } satisfies InitializationOptions,
      outputChannel: log,
      revealOutputChannelOn: 4 /* RevealOutputChannelOn.Never */,
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => this.onServerClosed(CloseAction),
      },
    };
    const client = this.client ?? new LanguageClient('agentSandbox.engine', 'Agent Sandbox Engine', serverOptions, clientOptions);
    if (!this.client) {
      this.client = client;
      this._register(onNotification(client, OutputNotification.type, (p) => this.outputEmitter.fire(p)));
      this._register(onNotification(client, ProgressNotification.type, (p) => this.progressEmitter.fire(p)));
      this._register(onNotification(client, TerminalOutputNotification.type, (p) => this.terminalOutputEmitter.fire(p)));
      this._register(onNotification(client, TerminalExitNotification.type, (p) => this.terminalExitEmitter.fire(p)));
      this._register(onNotification(client, McpRunNotification.type, (p) => this.mcpRunEmitter.fire(p)));
      this._register(
        onNotification(client, OrphansRemovedNotification.type, (p) =>
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

  private onServerClosed(CloseAction: LanguageClientModule['CloseAction']) {
    const now = Date.now();
    while (this.restarts.length > 0 && now - this.restarts[0] > RESTART_WINDOW_MS) this.restarts.shift();
    this.restarts.push(now);
    if (this.restarts.length > MAX_RESTARTS) {
      this.options.log.error('[client] the engine server crashed repeatedly; not restarting it');
      void vscode.window.showErrorMessage(
        vscode.l10n.t(
          'The Agent Sandbox engine stopped repeatedly and was not restarted. See the "Agent Sandbox" output for details, then run "Agent Sandbox: Reset Sandbox" to try again.',
        ),
      );
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    this.options.log.warn('[client] the engine server stopped unexpectedly; restarting it');
    return { action: CloseAction.Restart, handled: true };
  }

  private async afterRestart(): Promise<void> {
    await this.configure();
    void vscode.window.showWarningMessage(
      vscode.l10n.t(
        'The Agent Sandbox engine stopped unexpectedly and was restarted. Boxes it left behind were removed; the next run starts a fresh box.',
      ),
    );
    // The first engine call of the new server removes the dead server's boxes (found by label).
    await this.checkEngine().catch((error) => this.options.log.warn(`[client] engine check after restart failed: ${error}`));
    this.boxStateEmitter.fire({ state: 'none' });
    this.restartEmitter.fire();
  }

  private async configure(client?: LanguageClient): Promise<void> {
    const target = client ?? this.running;
    if (!target) return;
    try {
      const { settings, insecureEngines } = this.options;
      const box = await settings.boxForEngine();
      const imageBuilds = this.options.imageBuilds?.decisions();
      await send(target, ConfigureRequest.type, {
        engine: settings.engine(insecureEngines?.allowed() ?? []),
        box,
        egress: settings.egress(),
        ...(imageBuilds ? { imageBuilds } : {}),
      });
      await this.sendModelKeys(target);
    } catch (error) {
      this.options.log.error(`[client] settings rejected: ${error instanceof Error ? error.message : error}`);
      void vscode.window.showErrorMessage(vscode.l10n.t('Agent Sandbox: {0}', errorText(error)), vscode.l10n.t('Open Settings')).then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', 'agentSandbox');
      });
    }
  }

  /**
   * Sends one request on the running client (started on first use). When the server refuses an unencrypted
   * remote engine (`insecure-engine`), the user is asked about that address; allowed, the server is
   * reconfigured with the allowance and the request sent once more. When the folder's image needs building
   * (`image-build-unconfirmed`), the user is asked; whatever the answer the server is reconfigured with it and
   * the request sent again (declined or dismissed: the box gets the default image).
   */
  private async request<R>(run: (client: LanguageClient) => Promise<R>): Promise<R> {
    const client = await this.ready();
    for (let attempt = 0; ; attempt++) {
      try {
        return await run(client);
      } catch (error) {
        if (attempt >= 2 || !(await this.answered(error))) throw error;
        await this.configure(client);
      }
    }
  }

  /** Asks the user what the server's error needs; true when the request should be sent again. */
  private async answered(error: unknown): Promise<boolean> {
    const data = (error as { data?: ErrorData }).data;
    if (errorReason(error) === 'insecure-engine') {
      const consent = this.options.insecureEngines;
      return typeof data?.address === 'string' && !!consent && (await consent.ask(data.address));
    }
    if (errorReason(error) === 'image-build-unconfirmed' && data?.imageBuild && this.options.imageBuilds) {
      await this.options.imageBuilds.ask(data.imageBuild);
      return true;
    }
    return false;
  }

  private sendRequest<P, R>(type: RequestType<P, R, void>, params: P, token?: vscode.CancellationToken): Promise<R> {
    return this.request((client) => send(client, type, params, token));
  }

  /** A fresh token for `sandbox/progress` notifications. */
  newProgressToken(): string {
    return `progress-${++this.progressCounter}`;
  }

  async checkEngine() {
    return this.request((client) => send0(client, CheckEngineRequest.type));
  }

  async followImageTag() {
    return this.request((client) => send0(client, FollowImageTagRequest.type));
  }

  async pullImage(params: PullImageRequest.Params, token?: vscode.CancellationToken) {
    return this.sendRequest(PullImageRequest.type, params, token);
  }

  async ensureBox(params: EnsureBoxRequest.Params, token?: vscode.CancellationToken) {
    return this.tracked(params.folder, 'starting', async () => this.sendRequest(EnsureBoxRequest.type, params, token));
  }

  async exec(params: ExecRequest.Params, token?: vscode.CancellationToken) {
    return this.tracked(params.folder, 'running', async () => this.sendRequest(ExecRequest.type, params, token));
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
    return this.sendRequest(CancelRunRequest.type, { runId });
  }

  async collect(folder: string, token?: vscode.CancellationToken) {
    return this.sendRequest(CollectRequest.type, { folder }, token);
  }

  /**
   * What a run left pending: collected from its box, or — when the run lost its box (`boxLost`), so there is
   * none to collect from — the pending changes the server kept without one.
   */
  async collectAfterRun(folder: string, result: ExecResult, token?: vscode.CancellationToken) {
    return result.boxLost ? this.pendingChanges(folder) : this.collect(folder, token);
  }

  async readProposal(folder: string, path: string): Promise<Uint8Array> {
    const result = await this.sendRequest(ReadProposalRequest.type, { folder, path });
    return Buffer.from(result.base64, 'base64');
  }

  /** The baseline content of a changed file, when the server kept it. */
  async readBase(folder: string, path: string): Promise<Uint8Array | undefined> {
    const result = await this.sendRequest(ReadBaseRequest.type, { folder, path });
    return result.base64 === undefined ? undefined : Buffer.from(result.base64, 'base64');
  }

  async planApply(params: PlanApplyRequest.Params) {
    return this.sendRequest(PlanApplyRequest.type, params);
  }

  async apply(params: ApplyRequest.Params) {
    return this.sendRequest(ApplyRequest.type, params);
  }

  async pendingChanges(folder: string) {
    return this.sendRequest(PendingChangesRequest.type, { folder });
  }

  /** What the folder's box tried to reach through its gateway (never starts a box). */
  async egressAttempts(folder: string, runId?: string) {
    return this.sendRequest(EgressAttemptsRequest.type, { folder, ...(runId ? { runId } : {}) });
  }

  async advanceBaseline(folder: string, paths: string[]) {
    return this.sendRequest(AdvanceBaselineRequest.type, { folder, paths });
  }

  async markApplied(folder: string, paths: string[]) {
    return this.sendRequest(MarkAppliedRequest.type, { folder, paths });
  }

  async discard(folder: string, paths?: string[]) {
    return this.sendRequest(DiscardRequest.type, { folder, paths });
  }

  /** Serves the folder's sandbox tools over MCP on its private socket (starting the server if needed). */
  async mcpListen(folder: string) {
    return this.sendRequest(McpListenRequest.type, { folder });
  }

  async fileOp(params: FileOpRequest.Params) {
    return this.sendRequest(FileOpRequest.type, params);
  }

  /** Opens a terminal in the folder's box (see `TerminalOpenRequest`). */
  async openTerminal(params: TerminalOpenRequest.Params, token?: vscode.CancellationToken) {
    return this.tracked(params.folder, 'starting', async () => this.sendRequest(TerminalOpenRequest.type, params, token));
  }

  /** Kills a terminal's process tree in the box; resolves after its exit was reported. */
  async closeTerminal(terminalId: string) {
    const client = this.running;
    if (!client) return false;
    return send(client, TerminalCloseRequest.type, { terminalId });
  }

  /** Keystrokes for a terminal; dropped when the server is not running (the terminal is gone with it). */
  terminalInput(terminalId: string, data: string): void {
    const client = this.running;
    if (client) void notify(client, TerminalInputNotification.type, { terminalId, data });
  }

  terminalResize(terminalId: string, cols: number, rows: number): void {
    const client = this.running;
    if (client) void notify(client, TerminalResizeNotification.type, { terminalId, cols, rows });
  }

  /** Removes boxes (and, with `discardPending`, their pending reviews). */
  async reset(folder?: string, options: { discardPending?: boolean } = {}) {
    if (!options.discardPending && !this.running) return;
    await this.sendRequest(ResetRequest.type, { folder, discardPending: options.discardPending });
    this.boxStateEmitter.fire({ folder, state: 'none' });
  }

  /** Every package cache on the engine, of all workspaces. */
  async listCaches() {
    return this.request((client) => send0(client, ListCachesRequest.type));
  }

  /** Removes the named package caches, or all of them. */
  async clearCaches(volumeNames?: string[]) {
    return this.sendRequest(ClearCachesRequest.type, { volumeNames });
  }

  /** Stops the server; it removes its boxes on shutdown. */
  async stop(): Promise<void> {
    const client = this.running;
    if (client) {
      await client.stop(10_000).catch((error) => this.options.log.warn(`[client] stopping the engine server: ${error}`));
    }
  }
}
