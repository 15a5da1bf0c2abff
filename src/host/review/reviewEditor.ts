import * as vscode from 'vscode';
import type { ChangeEntry } from '../../shared/protocol';
import { Disposable } from '../../core/lifecycle';
import { proposalUri } from './proposalDocuments';
import { hostPath } from '../../core/workspace/hostPath';

/** Context key: the active tab is a Review editor (the multi-file diff of a folder's proposals). */
export const REVIEW_EDITOR_ACTIVE_KEY = 'agentSandbox.reviewEditorActive';

/** What one Review editor shows: a folder's files, by path. */
export interface ReviewEditorContent {
  folder: string;
  paths: string[];
}

/**
 * One row of VS Code's multi-file diff editor (`vscode.changes`): the row's file, the workspace's side and the
 * box's. The editor badges a row by its sides: no left side is `A`, no right side is `D` (name struck through),
 * differing paths are `R` — so both sides share the workspace file's path (see `proposalUri`) and an add or a
 * delete has no side at all where there is nothing, rather than an empty document (an empty removed line).
 */
export function reviewEditorRow(folder: string, change: ChangeEntry, version: number): [vscode.Uri, vscode.Uri | undefined, vscode.Uri | undefined] {
  const file = (relPath: string) => vscode.Uri.file(hostPath(folder, relPath));
  const left = change.kind === 'added' ? undefined : file(change.fromPath ?? change.path);
  const right = change.kind === 'deleted' ? undefined : proposalUri(folder, change.path, { version });
  return [file(change.path), left, right];
}

/**
 * The Review editors this window opened, by tab label (the multi-diff tab input lists only the rows that have
 * both sides, so it cannot say which folder and files an editor of only adds shows), and the context key that
 * puts Accept / Reject in their title bar.
 */
export class ReviewEditors extends Disposable {
  private readonly byLabel = new Map<string, ReviewEditorContent>();
  /** Refreshes run one after another: two at once would both close and reopen the same editor. */
  private refreshes: Promise<void> = Promise.resolve();

  constructor() {
    super();
    this._register(
      vscode.window.tabGroups.onDidChangeTabs((event) => {
        const open = vscode.window.tabGroups.all.flatMap((g) => g.tabs);
        for (const tab of event.closed) {
          const title = this.titleOf(tab);
          if (title !== undefined && !open.some((t) => this.titleOf(t) === title)) this.byLabel.delete(title);
        }
        void this.updateContext();
      }),
    );
    this._register(vscode.window.tabGroups.onDidChangeTabGroups(() => void this.updateContext()));
  }

  /** Opens (or replaces) the Review editor `title` on the text files among `changes`; false when there are none. */
  async open(folder: string, changes: readonly ChangeEntry[], title: string): Promise<boolean> {
    const files = changes.filter((c) => c.type === 'file');
    if (files.length === 0) return false;
    const version = Date.now();
    this.byLabel.set(title, { folder, paths: files.map((c) => c.path) });
    await vscode.commands.executeCommand(
      'vscode.changes',
      title,
      files.map((c) => reviewEditorRow(folder, c, version)),
    );
    await this.updateContext();
    return true;
  }

  /** What the active tab shows, when it is a Review editor. */
  active(): ReviewEditorContent | undefined {
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    return tab ? this.contentOf(tab) : undefined;
  }

  private contentOf(tab: vscode.Tab): ReviewEditorContent | undefined {
    const title = this.titleOf(tab);
    return title === undefined ? undefined : this.byLabel.get(title);
  }

  /** The title a Review editor was opened with (its tab adds the file count: "title (3 files)"). */
  private titleOf(tab: vscode.Tab): string | undefined {
    if (!isMultiDiffInput(tab.input)) return undefined;
    let best: string | undefined;
    for (const title of this.byLabel.keys()) {
      if ((tab.label === title || tab.label.startsWith(`${title} (`)) && title.length > (best?.length ?? -1)) best = title;
    }
    return best;
  }

  /**
   * After decisions: a Review editor showing a decided file would show it against a placeholder, so it closes;
   * the active one opens again with the files still pending (same title).
   */
  refresh(folder: string, pendingChanges: readonly ChangeEntry[]): Promise<void> {
    const next = this.refreshes.then(() => this.refreshNow(folder, pendingChanges));
    this.refreshes = next.catch(() => undefined);
    return next;
  }

  private async refreshNow(folder: string, pendingChanges: readonly ChangeEntry[]): Promise<void> {
    const pending = new Map(pendingChanges.map((c) => [c.path, c]));
    const activeTab = vscode.window.tabGroups.activeTabGroup.activeTab;
    for (const group of vscode.window.tabGroups.all) {
      for (const tab of group.tabs) {
        const title = this.titleOf(tab);
        const content = title === undefined ? undefined : this.byLabel.get(title);
        if (title === undefined || !content || content.folder !== folder || content.paths.every((p) => pending.has(p))) continue;
        const remaining = content.paths.flatMap((p) => pending.get(p) ?? []);
        const reopen = tab === activeTab && remaining.length > 0;
        await vscode.window.tabGroups.close(tab, true);
        this.byLabel.delete(title);
        if (reopen) await this.open(folder, remaining, title);
      }
    }
    await this.updateContext();
  }

  private async updateContext(): Promise<void> {
    await vscode.commands.executeCommand('setContext', REVIEW_EDITOR_ACTIVE_KEY, this.active() !== undefined);
  }
}

/** A multi-file diff tab (`TabInputTextMultiDiff` at run time; not yet in the API's typings of the engine we need). */
function isMultiDiffInput(input: unknown): boolean {
  return typeof input === 'object' && input !== null && Array.isArray((input as { textDiffs?: unknown }).textDiffs);
}
