import type { FileDecision } from '../core/history/historyRecord';
import * as vscode from 'vscode';
import type { ChangeSet, ExecResult } from '../shared/protocol';
import { Disposable } from '../core/lifecycle';

/** Where a run came from. */
export type RunSource = 'command' | 'tool' | 'terminal' | 'mcp';

export interface RunStartedEvent {
  /** Same id as the server's run (`ExecRequest.Params.runId`). */
  runId: string;
  folder: string;
  source: RunSource;
  /** The agent or tool behind it, e.g. `agentSandbox_runCommand`, `Claude Code`; absent for a person. */
  agent?: string;
  /** The command line or the file operation, e.g. `npm test`, `write src/a.ts`. */
  command: string;
  cwd?: string;
  startedAt: number;
}

export interface RunEndedEvent {
  runId: string;
  folder: string;
  endedAt: number;
  /** The server's result; absent when the run failed before it ran (see `error`). */
  result?: ExecResult;
  /** Why it failed before or around running: the error reason and message. */
  error?: { reason?: string; message: string };
  /** What the box held after the run (the collect that followed it), if one was made. */
  changeSet?: ChangeSet;
}

/** A review decision on files, as it was made. */
export interface DecisionEvent {
  folder: string;
  /** Workspace-relative paths decided. */
  paths: string[];
  decision: FileDecision['decision'];
  /** Hunk-level decisions name the hunk, e.g. `@@ -3,4 +3,5 @@`. */
  hunk?: string;
  at: number;
}

/**
 * The extension's one stream of run and review events. Commands, agent tools and terminals fire them; the
 * run history and the status bar listen. Nothing here knows who listens.
 */
export class RunEvents extends Disposable {
  private readonly started = this._register(new vscode.EventEmitter<RunStartedEvent>());
  private readonly ended = this._register(new vscode.EventEmitter<RunEndedEvent>());
  private readonly decided = this._register(new vscode.EventEmitter<DecisionEvent>());
  readonly onDidStartRun = this.started.event;
  readonly onDidEndRun = this.ended.event;
  readonly onDidDecide = this.decided.event;

  fireStarted(event: RunStartedEvent): void {
    this.started.fire(event);
  }

  fireEnded(event: RunEndedEvent): void {
    this.ended.fire(event);
  }

  fireDecided(event: DecisionEvent): void {
    this.decided.fire(event);
  }
}
