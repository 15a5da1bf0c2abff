import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeSet, ExecResult, TerminalOpenRequest } from '../../shared/protocol';
import { Disposable } from '../../core/lifecycle';
import type { EngineClient } from '../engineClient';
import { errorReason } from '../errorMessages';
import { errorText } from '../../core/util/errorText';
import type { RunEvents } from '../runEvents';

export interface SandboxTerminalOptions {
  /** Absolute path of the workspace folder whose box the terminal lives in. */
  folder: string;
  /** A command to run instead of an interactive shell (an agent CLI); the terminal ends with it. */
  command?: string;
  /** Who runs in it, for the history (e.g. `Claude Code`); absent for a person's shell. */
  agent?: string;
  /** Extra lines shown before the process starts (e.g. which API keys reach the box). */
  notes?: string[];
}

export interface SandboxTerminalDeps {
  engine: EngineClient;
  runEvents: RunEvents;
  log: vscode.LogOutputChannel;
  /** Called when the terminal could not start (shows the error with the action that fixes it). */
  onStartFailed(error: unknown): void;
}

/** How a terminal session ended, for whoever waits on it (tests, the feature). */
export interface SandboxTerminalEnd {
  exitCode: number | null;
  /** The collect after the end; absent when it failed (see `error`). */
  changeSet?: ChangeSet;
  error?: string;
}

const DIM = '\x1b[2m';
const RED = '\x1b[31m';
const YELLOW = '\x1b[33m';
const RESET = '\x1b[0m';

let terminalCounter = 0;

/**
 * A VS Code terminal whose process is an interactive exec in the folder's box, bridged through the engine
 * server: input, resize and close go to the server, output and the exit come back. Each session is a run
 * (source `terminal`): started when the process starts, ended with its exit code and what it changed in the
 * box, which goes to the review.
 */
export class SandboxPseudoterminal extends Disposable implements vscode.Pseudoterminal {
  private readonly writeEmitter = this._register(new vscode.EventEmitter<string>());
  readonly onDidWrite = this.writeEmitter.event;
  private readonly closeEmitter = this._register(new vscode.EventEmitter<number | void>());
  readonly onDidClose = this.closeEmitter.event;

  /** Also the run id in the history. */
  readonly terminalId = `terminal-${process.pid}-${Date.now().toString(36)}-${++terminalCounter}`;
  private state: 'idle' | 'starting' | 'running' | 'failed' | 'ended' = 'idle';
  private dimensions: vscode.TerminalDimensions | undefined;
  private readonly pendingInput: string[] = [];
  private opened: TerminalOpenRequest.Result | undefined;
  private startedAt = 0;
  private readonly endPromise: Promise<SandboxTerminalEnd>;
  private resolveEnd: (end: SandboxTerminalEnd) => void = () => undefined;

  constructor(
    private readonly deps: SandboxTerminalDeps,
    readonly options: SandboxTerminalOptions,
  ) {
    super();
    this.endPromise = new Promise((resolve) => (this.resolveEnd = resolve));
    this._register(
      deps.engine.onTerminalOutput((p) => {
        if (p.terminalId === this.terminalId) this.writeEmitter.fire(p.data);
      }),
    );
    this._register(
      deps.engine.onTerminalExit((p) => {
        if (p.terminalId === this.terminalId) void this.finish(p.exitCode, false);
      }),
    );
    this._register(
      deps.engine.onDidRestart(() => {
        if (this.state === 'running' || this.state === 'starting') {
          this.writeEmitter.fire(`\r\n${RED}The Agent Sandbox engine restarted; this terminal's box is gone.${RESET}\r\n`);
          void this.finish(null, false);
        }
      }),
    );
  }

  /** The folder whose box this terminal uses. */
  get folder(): string {
    return this.options.folder;
  }

  /** The size VS Code last gave the terminal (what the TTY in the box has once it runs). */
  get size(): vscode.TerminalDimensions | undefined {
    return this.dimensions;
  }

  /** True while the process in the box runs. */
  get isRunning(): boolean {
    return this.state === 'running';
  }

  /** Resolves when the session has ended and its changes were collected. */
  get ended(): Promise<SandboxTerminalEnd> {
    return this.endPromise;
  }

  open(initialDimensions: vscode.TerminalDimensions | undefined): void {
    this.dimensions = initialDimensions;
    void this.start();
  }

  private async start(): Promise<void> {
    const { engine, log } = this.deps;
    const { folder, command } = this.options;
    this.state = 'starting';
    this.line(`${DIM}Agent Sandbox: ${command ? `running \`${command}\`` : 'a shell'} in the box of ${path.basename(folder)}…${RESET}`);
    for (const note of this.options.notes ?? []) this.line(`${DIM}${note}${RESET}`);
    const progressToken = engine.newProgressToken();
    const progress = engine.onProgress((p) => {
      if (p.token === progressToken)
        this.writeEmitter.fire(`\r\x1b[2K${DIM}${p.message}${p.total ? ` ${Math.round(((p.done ?? 0) / p.total) * 100)}%` : ''}${RESET}`);
    });
    try {
      this.opened = await engine.openTerminal({
        folder,
        terminalId: this.terminalId,
        cols: this.dimensions?.columns ?? 80,
        rows: this.dimensions?.rows ?? 24,
        command,
        progressToken,
      });
    } catch (error) {
      this.state = 'failed';
      this.writeEmitter.fire('\r\x1b[2K');
      this.line(`${RED}Could not start the sandboxed terminal: ${errorText(error)}${RESET}`);
      this.line(`${DIM}Press any key to close this terminal.${RESET}`);
      log.warn(`[terminal] ${this.terminalId} did not start: ${errorReason(error) ?? 'error'}: ${errorText(error)}`);
      this.deps.onStartFailed(error);
      // A launch that failed is a run too (a missing CLI, no engine): the history shows it with its reason.
      const at = Date.now();
      this.deps.runEvents.fireStarted({
        runId: this.terminalId,
        folder,
        source: 'terminal',
        agent: this.options.agent,
        command: command ?? 'shell',
        startedAt: at,
      });
      this.deps.runEvents.fireEnded({
        runId: this.terminalId,
        folder,
        endedAt: at,
        error: { reason: errorReason(error), message: errorText(error) },
      });
      this.resolveEnd({ exitCode: null, error: errorText(error) });
      return;
    } finally {
      progress.dispose();
    }
    if (this.state !== 'starting') {
      // Closed while starting: the process that just started must not outlive the terminal.
      await engine.closeTerminal(this.terminalId).catch(() => undefined);
      return;
    }
    this.state = 'running';
    this.startedAt = Date.now();
    const { image, policy, shell, conflicts } = this.opened;
    this.writeEmitter.fire('\r\x1b[2K');
    if (policy.network === 'allowlist') {
      const hosts = policy.allowedHosts ?? [];
      this.line(`${DIM}${image.reference} · ${shell} · user ${policy.user} · /workspace · network: allowlist${RESET}`);
      this.line(
        `${DIM}The box reaches only these hosts, through its own gateway (every attempt is recorded): ${hosts.join(', ') || 'none'}.${RESET}`,
      );
      if (policy.modelKeys?.length)
        this.line(`${DIM}The gateway adds your stored API key for: ${policy.modelKeys.join(', ')} (the box holds a placeholder).${RESET}`);
    } else {
      this.line(`${DIM}${image.reference} · ${shell} · user ${policy.user} · /workspace · no network${RESET}`);
      this.line(
        `${DIM}The box has no network: nothing here reaches the internet (agentSandbox.network "allowlist" opens a way out to the hosts you allow).${RESET}`,
      );
    }
    if (policy.egressNote) this.line(`${YELLOW}${policy.egressNote}${RESET}`);
    this.line(`${DIM}What changes here stays in the box until you approve it in the review (Source Control ▸ Agent Sandbox).${RESET}`);
    if (conflicts.length > 0) this.line(`${DIM}Changed both here and in your workspace (the box kept its version): ${conflicts.join(', ')}${RESET}`);
    this.deps.runEvents.fireStarted({
      runId: this.terminalId,
      folder,
      source: 'terminal',
      agent: this.options.agent,
      command: command ?? shell,
      startedAt: this.startedAt,
    });
    for (const data of this.pendingInput.splice(0)) engine.terminalInput(this.terminalId, data);
    if (this.dimensions) engine.terminalResize(this.terminalId, this.dimensions.columns, this.dimensions.rows);
  }

  handleInput(data: string): void {
    if (this.state === 'failed') {
      this.state = 'ended';
      this.closeEmitter.fire();
      return;
    }
    if (this.state === 'running') this.deps.engine.terminalInput(this.terminalId, data);
    else if (this.state === 'starting' || this.state === 'idle') this.pendingInput.push(data);
  }

  setDimensions(dimensions: vscode.TerminalDimensions): void {
    const changed = dimensions.columns !== this.dimensions?.columns || dimensions.rows !== this.dimensions?.rows;
    this.dimensions = dimensions;
    if (changed && this.state === 'running') this.deps.engine.terminalResize(this.terminalId, dimensions.columns, dimensions.rows);
  }

  /** The user closed the terminal: kill the process tree in the box, then record the run. */
  close(): void {
    if (this.state === 'starting') {
      this.state = 'ended';
      return;
    }
    if (this.state !== 'running') return;
    void (async () => {
      await this.deps.engine
        .closeTerminal(this.terminalId)
        .catch((error) => this.deps.log.warn(`[terminal] closing ${this.terminalId}: ${errorText(error)}`));
      await this.finish(null, true);
    })();
  }

  /** Collects what the box holds now and shows it in the review (the title action, while the terminal runs). */
  async collectNow(): Promise<ChangeSet> {
    const changeSet = await this.deps.engine.collect(this.folder);
    await vscode.commands.executeCommand('agentSandbox.review.refresh', this.folder);
    return changeSet;
  }

  private finishing: Promise<void> | undefined;

  private finish(exitCode: number | null, closedByUser: boolean): Promise<void> {
    this.finishing ??= (async () => {
      const wasRunning = this.state === 'running';
      this.state = 'ended';
      if (!closedByUser) this.line(`\r\n[process exited with code ${exitCode ?? 'unknown'}]`);
      if (!wasRunning || !this.opened) {
        this.resolveEnd({ exitCode });
        if (!closedByUser) this.closeEmitter.fire(exitCode ?? undefined);
        return;
      }
      let changeSet: ChangeSet | undefined;
      let error: string | undefined;
      try {
        changeSet = await this.deps.engine.collect(this.folder);
      } catch (e) {
        error = errorText(e);
        this.deps.log.warn(`[terminal] collecting after ${this.terminalId}: ${error}`);
      }
      const result: ExecResult = {
        runId: this.terminalId,
        outcome: closedByUser ? 'cancelled' : 'exited',
        exitCode: closedByUser ? null : exitCode,
        // A terminal's output is the user's screen; it is not recorded (it may hold anything typed or shown).
        stdout: '',
        stderr: '',
        truncated: false,
        durationMs: Date.now() - this.startedAt,
        image: this.opened.image,
        policy: this.opened.policy,
        caughtUp: this.opened.caughtUp,
        conflicts: this.opened.conflicts,
      };
      // The review listens for this event and shows the change set; it is fired before the terminal closes
      // so anyone who sees the close also finds the changes queued for review.
      this.deps.runEvents.fireEnded({
        runId: this.terminalId,
        folder: this.folder,
        endedAt: Date.now(),
        result,
        changeSet,
        ...(error ? { error: { reason: 'engine-error', message: error } } : {}),
      });
      this.resolveEnd({ exitCode, changeSet, error });
      if (!closedByUser) this.closeEmitter.fire(exitCode ?? undefined);
    })();
    return this.finishing;
  }

  private line(text: string): void {
    this.writeEmitter.fire(`${text}\r\n`);
  }
}
