import * as vscode from 'vscode';
import { Disposable } from '../../core/lifecycle';
import type { BoxState, EngineClient } from '../engineClient';
import type { ReviewController } from './reviewController';

const ICONS: Record<BoxState, string> = {
  none: '$(vm-outline)',
  starting: '$(loading~spin)',
  ready: '$(vm-active)',
  running: '$(sync~spin)',
};

const STATE_WORDS: Record<BoxState, string> = {
  none: 'no box',
  starting: 'box starting',
  ready: 'box ready',
  running: 'box running',
};

/**
 * The status bar item: the box's state (none / starting / ready / running) and the number of pending changes;
 * clicking it opens the review.
 */
export class SandboxStatus extends Disposable {
  private readonly item = this._register(vscode.window.createStatusBarItem('agentSandbox.status', vscode.StatusBarAlignment.Left, 40));
  private readonly states = new Map<string, BoxState>();
  private pending = 0;

  constructor(engine: EngineClient, review: ReviewController) {
    super();
    this.item.name = 'Agent Sandbox';
    this.item.command = 'agentSandbox.review.focus';
    this._register(
      engine.onDidChangeBoxState(({ folder, state }) => {
        if (folder) this.states.set(folder, state);
        else this.states.clear();
        this.render();
      }),
    );
    this._register(
      review.onDidChange(() => {
        this.pending = review.totalPending();
        this.render();
      }),
    );
    this.render();
  }

  /** The most active state over all folders. */
  get state(): BoxState {
    const order: BoxState[] = ['running', 'starting', 'ready', 'none'];
    return order.find((s) => [...this.states.values()].includes(s)) ?? 'none';
  }

  private render(): void {
    const state = this.state;
    this.item.text = `${ICONS[state]} Sandbox${state === 'none' ? ': no box' : ''}${this.pending ? ` $(diff) ${this.pending}` : ''}`;
    this.item.tooltip = `Agent Sandbox: ${STATE_WORDS[state]}; ${this.pending} pending change(s). Click to review.`;
    this.item.accessibilityInformation = { label: `Agent Sandbox, ${STATE_WORDS[state]}, ${this.pending} pending changes` };
    // Always shown, "no box" included: it is how a new user finds the review before the first run.
    this.item.show();
  }
}
