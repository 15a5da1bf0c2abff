import * as vscode from 'vscode';
import { Disposable } from '../../core/lifecycle';

/** What the developer chose at the end of a run; `keep` leaves the changes pending (Cancel, or decided elsewhere). */
export type RunEndChoice = 'apply' | 'discard' | 'keep';

/** The command the notification's links call with the prompt's id and the choice. */
export const RUN_END_CHOICE_COMMAND = 'agentSandbox.review.runEndChoice';

export interface RunEndPromptSource {
  /** Fires with a folder after its review changed. */
  readonly onDidChange: vscode.Event<string>;
  /** Whether any of `paths` of `folder` is still pending (or in conflict). */
  isPending(folder: string, paths: readonly string[]): boolean;
  /** Opens the run's files for review (Review editor and Source Control view). */
  openReview(folder: string, paths: readonly string[], title: string): Promise<unknown>;
}

/**
 * The run-end question as a progress notification: VS Code hides an ordinary notification after a few
 * seconds (its buttons with it), a running progress notification stays until it ends. Its choices are links
 * in the message; Review opens the files and keeps the question open; Cancel, or deciding every file of the
 * run elsewhere, ends it with the changes left as they are. It never takes the focus.
 */
export class RunEndPrompts extends Disposable {
  private readonly waiting = new Map<string, (choice: RunEndChoice | 'review') => void>();
  private nextId = 0;

  constructor(private readonly source: RunEndPromptSource) {
    super();
    this._register(
      vscode.commands.registerCommand(RUN_END_CHOICE_COMMAND, (id: string, choice: RunEndChoice | 'review') => this.waiting.get(id)?.(choice)),
    );
  }

  ask(folder: string, paths: readonly string[], message: string, title: string): Promise<RunEndChoice> {
    const id = `${Date.now().toString(36)}-${this.nextId++}`;
    return Promise.resolve(
      vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'Agent Sandbox', cancellable: true },
        (progress, token) =>
          new Promise<RunEndChoice>((resolve) => {
            const link = (label: string, choice: RunEndChoice | 'review', title: string) =>
              `[${label}](command:${RUN_END_CHOICE_COMMAND}?${encodeURIComponent(JSON.stringify([id, choice]))} "${title}")`;
            const choices = [
              link('Review', 'review', 'Open the changed files; this question stays'),
              link('Apply All', 'apply', 'Write every change into your workspace (undoable)'),
              link('Discard', 'discard', "Put the box back to your workspace's version"),
            ];
            progress.report({ message: `${message} ${choices.join(' · ')} (Cancel: decide later in Source Control)` });
            const subscriptions: vscode.Disposable[] = [];
            const end = (choice: RunEndChoice) => {
              this.waiting.delete(id);
              for (const s of subscriptions) s.dispose();
              resolve(choice);
            };
            this.waiting.set(id, (choice) => {
              if (choice === 'review') void this.source.openReview(folder, paths, title);
              else end(choice);
            });
            subscriptions.push(
              token.onCancellationRequested(() => end('keep')),
              this.source.onDidChange((changed) => {
                if (changed === folder && !this.source.isPending(folder, paths)) end('keep');
              }),
            );
          }),
      ),
    );
  }

  override dispose(): void {
    for (const answer of [...this.waiting.values()]) answer('keep');
    super.dispose();
  }
}
