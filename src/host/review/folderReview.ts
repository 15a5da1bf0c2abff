import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeEntry, ChangeSet, RefusedEntry } from '../../shared/protocol';
import { Disposable } from '../../core/lifecycle';
import { hostPath } from '../../core/workspace/hostPath';

/** Query that marks a review row's uri, so only review rows get the review's letter badges. */
export const REVIEW_ROW_QUERY = 'agent-sandbox-review';

/** What a row of the review stands for; carried on each resource state for commands. */
export interface ReviewRow extends vscode.SourceControlResourceState {
  readonly folder: string;
  readonly path: string;
  readonly change?: ChangeEntry;
  readonly refused?: RefusedEntry;
  readonly group: 'pending' | 'conflicts' | 'refused';
}

/**
 * One workspace folder's review in the Source Control view: groups Pending, Conflicts and Refused. It only
 * shows what it is given; the controller decides what goes where.
 */
export class FolderReview extends Disposable {
  readonly sourceControl: vscode.SourceControl;
  private readonly pending: vscode.SourceControlResourceGroup;
  private readonly conflicts: vscode.SourceControlResourceGroup;
  private readonly refused: vscode.SourceControlResourceGroup;
  private changeSet: ChangeSet;

  constructor(
    readonly folder: string,
    private readonly describeRuns: (folder: string, relPath: string) => string | undefined,
  ) {
    super();
    this.changeSet = { folder, changes: [], refused: [], ignoredCount: 0 };
    this.sourceControl = this._register(
      vscode.scm.createSourceControl('agentSandbox', `Agent Sandbox: ${path.basename(folder)}`, vscode.Uri.file(folder)),
    );
    this.sourceControl.inputBox.visible = false;
    this.sourceControl.acceptInputCommand = undefined;
    this.pending = this._register(this.sourceControl.createResourceGroup('pending', 'Pending'));
    this.conflicts = this._register(this.sourceControl.createResourceGroup('conflicts', 'Conflicts'));
    this.refused = this._register(this.sourceControl.createResourceGroup('refused', 'Refused (never applied)'));
    this.conflicts.hideWhenEmpty = true;
    this.refused.hideWhenEmpty = true;
  }

  get current(): ChangeSet {
    return this.changeSet;
  }

  /** Rows of the pending and conflict groups, by path. */
  rows(): ReviewRow[] {
    return [...this.pending.resourceStates, ...this.conflicts.resourceStates] as ReviewRow[];
  }

  /** Every row that stands for a change in the box (pending, conflicts, and `.git/` changes), not refused entries. */
  changeRows(): ReviewRow[] {
    return [...this.rows(), ...(this.refused.resourceStates as ReviewRow[]).filter((r) => r.change)];
  }

  update(changeSet: ChangeSet, conflictPaths: Set<string>): void {
    this.changeSet = changeSet;
    const pending: ReviewRow[] = [];
    const conflicts: ReviewRow[] = [];
    const refused: ReviewRow[] = changeSet.refused.map((entry) => this.refusedRow(entry));
    for (const change of changeSet.changes) {
      if (change.flags.includes('git-internal')) {
        refused.push(this.gitRow(change));
      } else if (conflictPaths.has(change.path)) {
        conflicts.push(this.changeRow(change, 'conflicts'));
      } else {
        pending.push(this.changeRow(change, 'pending'));
      }
    }
    this.pending.resourceStates = pending;
    this.conflicts.resourceStates = conflicts;
    this.refused.resourceStates = refused;
    this.sourceControl.count = pending.length + conflicts.length;
  }

  private uriOf(relPath: string): vscode.Uri {
    return vscode.Uri.file(hostPath(this.folder, relPath)).with({ query: REVIEW_ROW_QUERY });
  }

  private changeRow(change: ChangeEntry, group: 'pending' | 'conflicts'): ReviewRow {
    const runs = this.describeRuns(this.folder, change.path);
    const what = describeChange(change);
    const flagged = change.flags.filter((f) => f !== 'git-internal');
    const tooltip = [
      `${what}${group === 'conflicts' ? " — CONFLICT: you changed this file since the box got it.\nActions (icons on the row, labelled in its context menu): ← Take the Box's Version · person: Keep Mine · merge: Merge by Hand" : ''}`,
      flagged.length ? `Needs a deliberate approval: ${flagged.map(describeFlag).join(', ')}` : undefined,
      runs ? `Changed by: ${runs}` : undefined,
    ]
      .filter(Boolean)
      .join('\n');
    return {
      folder: this.folder,
      path: change.path,
      change,
      group,
      resourceUri: this.uriOf(change.path),
      contextValue: group === 'conflicts' ? 'conflict' : flagged.length ? 'pending-flagged' : 'pending',
      command: { title: 'Open Changes', command: 'agentSandbox.review.openDiff', arguments: [this.folder, change.path] },
      decorations: {
        strikeThrough: change.kind === 'deleted',
        tooltip,
        iconPath:
          flagged.length || group === 'conflicts' ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground')) : undefined,
      },
    };
  }

  private refusedRow(entry: RefusedEntry): ReviewRow {
    return {
      folder: this.folder,
      path: entry.path,
      refused: entry,
      group: 'refused',
      resourceUri: this.uriOf(entry.path),
      contextValue: 'refused',
      decorations: {
        tooltip: `Refused: ${entry.reason} — ${entry.detail}. It is never written to the workspace.`,
        faded: true,
        iconPath: new vscode.ThemeIcon('circle-slash'),
      },
    };
  }

  private gitRow(change: ChangeEntry): ReviewRow {
    return {
      folder: this.folder,
      path: change.path,
      change,
      group: 'refused',
      resourceUri: this.uriOf(change.path),
      contextValue: 'refused-git',
      command: { title: 'Open Changes', command: 'agentSandbox.review.openDiff', arguments: [this.folder, change.path] },
      decorations: {
        tooltip: `${describeChange(change)} under .git/ — changes to git's internals are listed but never applied.`,
        faded: true,
        iconPath: new vscode.ThemeIcon('lock'),
      },
    };
  }
}

export function describeChange(change: ChangeEntry): string {
  const binary = change.binary ? ' (binary)' : '';
  switch (change.kind) {
    case 'added':
      return `Added${change.type === 'symlink' ? ` symlink → ${change.linkTarget}` : binary}`;
    case 'modified':
      return `Modified${change.type === 'symlink' ? ` symlink → ${change.linkTarget}` : binary}`;
    case 'deleted':
      return `Deleted${binary}`;
    case 'renamed':
      return `Renamed from ${change.fromPath}`;
    case 'mode':
      return `Mode ${fmtMode(change.baseMode)} → ${fmtMode(change.mode)}`;
  }
}

export function describeFlag(flag: string): string {
  switch (flag) {
    case 'host-executed':
      return 'can run code on your machine';
    case 'agent-instructions':
      return 'agents on your machine read it as instructions';
    case 'newly-executable':
      return 'becomes executable';
    case 'others-writable':
      return 'becomes writable by other users';
    case 'secret':
      return 'looks like it holds a secret';
    default:
      return flag;
  }
}

function fmtMode(mode: number | undefined): string {
  return mode === undefined ? '?' : (mode & 0o7777).toString(8).padStart(3, '0');
}

/** Letter badges and colours for review rows (only rows: their uris carry `REVIEW_ROW_QUERY`). */
export class ReviewDecorations implements vscode.FileDecorationProvider {
  private readonly changeEmitter = new vscode.EventEmitter<vscode.Uri[] | undefined>();
  readonly onDidChangeFileDecorations = this.changeEmitter.event;
  private byUri = new Map<string, vscode.FileDecoration>();

  update(rows: readonly vscode.SourceControlResourceState[]): void {
    const next = new Map<string, vscode.FileDecoration>();
    for (const row of rows as ReviewRow[]) next.set(row.resourceUri.toString(), decorationFor(row));
    this.byUri = next;
    this.changeEmitter.fire(undefined);
  }

  provideFileDecoration(uri: vscode.Uri): vscode.FileDecoration | undefined {
    return uri.query === REVIEW_ROW_QUERY ? this.byUri.get(uri.toString()) : undefined;
  }

  dispose(): void {
    this.changeEmitter.dispose();
  }
}

function decorationFor(row: ReviewRow): vscode.FileDecoration {
  if (row.refused || row.group === 'refused') {
    return new vscode.FileDecoration('!', 'Refused', new vscode.ThemeColor('disabledForeground'));
  }
  const change = row.change!;
  if (row.group === 'conflicts') {
    return new vscode.FileDecoration('C', 'Conflict', new vscode.ThemeColor('gitDecoration.conflictingResourceForeground'));
  }
  const letters: Record<ChangeEntry['kind'], [string, string]> = {
    added: ['A', 'gitDecoration.addedResourceForeground'],
    modified: ['M', 'gitDecoration.modifiedResourceForeground'],
    deleted: ['D', 'gitDecoration.deletedResourceForeground'],
    renamed: ['R', 'gitDecoration.renamedResourceForeground'],
    mode: ['X', 'gitDecoration.modifiedResourceForeground'],
  };
  const [letter, color] = letters[change.kind];
  const flagged = change.flags.some((f) => f !== 'git-internal');
  return new vscode.FileDecoration(
    change.binary ? `${letter}B` : letter,
    describeChange(change),
    new vscode.ThemeColor(flagged ? 'list.warningForeground' : color),
  );
}
