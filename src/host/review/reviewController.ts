import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeSet } from '../../shared/protocol';
import { acceptHunk, computeHunks, rejectHunk, type HunkSplit } from '../../core/changes/hunks';
import { Disposable } from '../../core/lifecycle';
import { egressLine, summarizeAttempts } from '../../core/history/egressSummary';
import type { EngineClient } from '../engineClient';
import { showEngineError } from '../errorMessages';
import { errorText } from '../../core/util/errorText';
import type { RunEvents } from '../runEvents';
import { applyChanges, dirtyEditorsIn, flaggedPaths, type ApplyOutcome } from './applyChanges';
import { FolderReview, ReviewDecorations, describeFlag, type ReviewRow } from './folderReview';
import { HunkActions, type HunkTarget } from './hunkActions';
import { ReviewEditors } from './reviewEditor';
import { RunEndPrompts, type RunEndChoice } from './runEndPrompt';
import { PROPOSAL_SCHEME, proposalLocation, proposalUri, type ProposalDocuments } from './proposalDocuments';

export interface ReviewControllerDeps {
  engine: EngineClient;
  log: vscode.LogOutputChannel;
  runEvents: RunEvents;
  proposals: ProposalDocuments;
  /** Workspace state: which runs changed which path (tooltips), kept across reloads. */
  state: vscode.Memento;
  /** The extension's workspace storage; a `reviews` folder there means a review to bring back. */
  storageUri?: vscode.Uri;
}

/** Programmatic form of the accept / reject commands (tests, keybindings, other extensions). */
export interface ReviewSelection {
  folder: string;
  paths: string[];
  /**
   * Flagged paths: `true` approves them (the caller confirmed them), `false` leaves them pending, absent asks
   * in a modal that names them.
   */
  approveFlagged?: boolean;
}

const RUNS_KEY = 'agentSandbox.review.runsByPath';

/**
 * The review: a Source Control view per folder with Pending, Conflicts and Refused groups, native diff editors
 * against read-only proposals, accept / reject per file, per hunk (CodeLens in the diff) and for all, conflict
 * resolution, and its persistence across reloads (the server keeps the proposals; this keeps the rows' runs).
 */
export class ReviewController extends Disposable {
  private readonly reviews = new Map<string, FolderReview>();
  private readonly decorations = this._register(new ReviewDecorations());
  /** Multi-file Review editors (`vscode.changes`) opened on pending files. */
  private readonly reviewEditors = this._register(new ReviewEditors());
  private readonly changedEmitter = this._register(new vscode.EventEmitter<string>());
  /** Fires with a folder after its review changed (rows, counts). */
  readonly onDidChange = this.changedEmitter.event;
  private runsByPath: Record<string, string[]>;
  /** Conflicts the developer is merging by hand (`folder\0path`): their Keep Mine is recorded as a merge. */
  private readonly mergingByHand = new Set<string>();
  /** Review updates run one after another; readers wait for the queue to drain. */
  private updates: Promise<unknown> = Promise.resolve();
  private readonly runEndPrompts: RunEndPrompts;

  constructor(private readonly deps: ReviewControllerDeps) {
    super();
    this.runsByPath = deps.state.get<Record<string, string[]>>(RUNS_KEY, {});
    this._register(vscode.window.registerFileDecorationProvider(this.decorations));
    this.runEndPrompts = this._register(
      new RunEndPrompts({
        onDidChange: this.onDidChange,
        isPending: (folder, paths) =>
          this.review(folder)
            .changeRows()
            .some((r) => paths.includes(r.path)),
        openReview: async (folder, paths, title) => {
          await vscode.commands.executeCommand('agentSandbox.review.focus');
          await this.openReviewEditor(folder, { paths: [...paths], title });
        },
      }),
    );
    const hunks = this._register(new HunkActions({ hunksOfProposal: (doc) => this.hunksOfProposal(doc), onDidChange: this.onDidChange }));
    const runLabels = new Map<string, string>();
    this._register(
      deps.runEvents.onDidStartRun((event) => runLabels.set(event.runId, event.agent ? `${event.agent}: ${event.command}` : event.command)),
    );
    this._register(
      deps.runEvents.onDidEndRun((event) => {
        const label = runLabels.get(event.runId) ?? event.runId;
        runLabels.delete(event.runId);
        const changeSet = event.changeSet;
        if (changeSet) this.enqueue(async () => this.onRunCollected(await this.withEgress(label, event.folder, event.runId), changeSet));
      }),
    );
    this._register(deps.engine.onDidRestart(() => void this.refreshAll()));
    this._register(
      vscode.workspace.onDidSaveTextDocument((doc) => {
        if (doc.uri.scheme === 'file') void this.refreshConflictsFor(doc.uri.fsPath);
      }),
    );
    const command = (id: string, fn: (...args: never[]) => unknown) => this._register(vscode.commands.registerCommand(id, fn));
    command('agentSandbox.review.openDiff', (folder: string, relPath: string) => this.openDiff(folder, relPath));
    command('agentSandbox.review.accept', (...args: unknown[]) => this.acceptCommand(args));
    command('agentSandbox.review.reject', (...args: unknown[]) => this.rejectCommand(args));
    command('agentSandbox.review.acceptAll', (arg?: unknown) => this.acceptAll(this.folderFromArg(arg)));
    command('agentSandbox.review.rejectAll', (arg?: unknown) => this.rejectAll(this.folderFromArg(arg)));
    command('agentSandbox.review.takeBoxVersion', (...args: unknown[]) => this.takeBoxVersion(args));
    command('agentSandbox.review.keepMine', (...args: unknown[]) => this.keepMine(args));
    command('agentSandbox.review.mergeByHand', (row?: ReviewRow) => this.mergeByHand(row));
    // With no arguments (title bar, context menu, keybinding) they act on the hunk at the cursor.
    const hunkCommand = (decision: 'accept' | 'reject') => async (uri?: vscode.Uri | { scheme: string }, index?: number) => {
      const target: HunkTarget | undefined =
        uri && typeof index === 'number' ? { proposal: vscode.Uri.from(uri as vscode.Uri), index } : await hunks.hunkAtCursor();
      if (!target) {
        void vscode.window.showInformationMessage(
          vscode.l10n.t('Agent Sandbox: put the cursor in a pending change of a modified text file first (its proposal, or your side of its diff).'),
        );
        return undefined;
      }
      return this.decideHunk(target.proposal, target.index, decision);
    };
    command('agentSandbox.review.acceptHunk', hunkCommand('accept'));
    command('agentSandbox.review.rejectHunk', hunkCommand('reject'));
    command('agentSandbox.review.nextChange', () => this.goToChange(hunks, 1));
    command('agentSandbox.review.previousChange', () => this.goToChange(hunks, -1));
    command('agentSandbox.review.refresh', (arg?: unknown) => this.refreshCommand(arg));
    command('agentSandbox.review.pending', async (folder?: string) => {
      await this.updates;
      return this.pendingOf(folder);
    });
    command('agentSandbox.review.focus', () => vscode.commands.executeCommand('workbench.view.scm'));
    command('agentSandbox.review.openReviewEditor', (arg?: unknown, options?: { paths?: string[]; title?: string }) =>
      this.openReviewEditor(this.folderFromArg(arg), options),
    );
    // Every folder has its Source Control entry from the start (empty until a run), so the review and its
    // title actions (run a command, open the terminal) are there before the first run; a removed folder's goes.
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      if (folder.uri.scheme === 'file') this.review(folder.uri.fsPath);
    }
    this._register(
      vscode.workspace.onDidChangeWorkspaceFolders((event) => {
        for (const added of event.added) if (added.uri.scheme === 'file') this.review(added.uri.fsPath);
        for (const removed of event.removed) {
          const review = this.reviews.get(removed.uri.fsPath);
          if (!review) continue;
          this.reviews.delete(removed.uri.fsPath);
          review.dispose();
          this.changedEmitter.fire(removed.uri.fsPath);
          // Its box goes too (pending changes stay persisted, for when the folder comes back); no server is
          // started just for this.
          void deps.engine
            .reset(removed.uri.fsPath)
            .catch((error) => deps.log.warn(`[review] removing the box of ${removed.uri.fsPath}: ${errorText(error)}`));
        }
      }),
    );
  }

  /**
   * Asks what to do with a run's changes in a notification that stays until answered (Review opens them and
   * keeps asking); `keep` when cancelled or when every file of the run was decided in the meantime.
   */
  askRunEnd(folder: string, paths: readonly string[], message: string, title: string): Promise<RunEndChoice> {
    return this.runEndPrompts.ask(folder, paths, message, title);
  }

  /** Brings back reviews persisted by an earlier window, without starting any box. */
  async restore(): Promise<void> {
    if (!this.deps.storageUri) return;
    try {
      const entries = await vscode.workspace.fs.readDirectory(vscode.Uri.joinPath(this.deps.storageUri, 'reviews'));
      if (entries.length === 0) return;
    } catch {
      return; // no review was ever persisted in this workspace
    }
    await this.refreshAll();
  }

  private enqueue(work: () => Promise<unknown>): void {
    this.updates = this.updates.then(work).catch((error) => this.deps.log.warn(`[review] update failed: ${errorText(error)}`));
  }

  /** Pending and conflicting changes over all folders. */
  totalPending(): number {
    return [...this.reviews.values()].reduce((n, r) => n + r.rows().length, 0);
  }

  /** The folder's pending change set as the view shows it (for tests and other commands). */
  private pendingOf(folder?: string): ChangeSet | undefined {
    const key = folder ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    return key ? this.reviews.get(key)?.current : undefined;
  }

  private review(folder: string): FolderReview {
    let review = this.reviews.get(folder);
    if (!review) {
      review = this._register(new FolderReview(folder, (f, p) => this.runsByPath[`${f}\0${p}`]?.join(', ')));
      this.reviews.set(folder, review);
    }
    return review;
  }

  private async refreshAll(): Promise<void> {
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      if (folder.uri.scheme === 'file') await this.refresh(folder.uri.fsPath, { conflicts: false });
    }
  }

  /** Reloads a folder's pending changes from the server; `conflicts` also asks which ones are conflicts now. */
  async refresh(folder: string, options: { conflicts?: boolean; collect?: boolean } = {}): Promise<ChangeSet> {
    const changeSet = options.collect ? await this.deps.engine.collect(folder) : await this.deps.engine.pendingChanges(folder);
    const conflicts = options.conflicts === false ? new Set<string>() : await this.conflictsOf(changeSet);
    this.show(changeSet, conflicts);
    return changeSet;
  }

  private show(changeSet: ChangeSet, conflicts: Set<string>): void {
    const review = this.review(changeSet.folder);
    review.update(changeSet, conflicts);
    this.decorations.update([...this.reviews.values()].flatMap((r) => [...r.rows()]));
    this.deps.proposals.refresh(changeSet.folder);
    this.changedEmitter.fire(changeSet.folder);
    // A tab whose path is no longer pending shows nothing true any more, and its workspace side stays
    // editable next to a placeholder (VS Code's own "revert block" could write that into the file): close it.
    const pending = new Set(changeSet.changes.map((c) => c.path));
    void closeProposalTabs(changeSet.folder, (relPath) => !pending.has(relPath))
      .then(() => this.reviewEditors.refresh(changeSet.folder, changeSet.changes))
      .catch((error) => this.deps.log.warn(`[review] could not close decided tabs: ${errorText(error)}`));
  }

  private async conflictsOf(changeSet: ChangeSet): Promise<Set<string>> {
    if (changeSet.changes.length === 0) return new Set();
    try {
      const plan = await this.deps.engine.planApply({ folder: changeSet.folder, dirtyEditors: dirtyEditorsIn(changeSet.folder) });
      return new Set(plan.conflicts.map((c) => c.path));
    } catch (error) {
      this.deps.log.warn(`[review] could not check conflicts: ${errorText(error)}`);
      return new Set();
    }
  }

  private async refreshConflictsFor(file: string): Promise<void> {
    for (const review of this.reviews.values()) {
      const rel = path.relative(review.folder, file);
      if (!rel.startsWith('..') && review.current.changes.some((c) => c.path === rel.split(path.sep).join('/'))) {
        await this.refresh(review.folder).catch((error) => this.deps.log.warn(`[review] refresh failed: ${errorText(error)}`));
      }
    }
  }

  /** A run's collect: remember which run changed which path, and show the new state. */
  /** A run's label for the rows it changed, with what it contacted through the box's gateway, e.g. `npm ci — contacted registry.npmjs.org ×12`. */
  private async withEgress(label: string, folder: string, runId: string): Promise<string> {
    const { attempts } = await this.deps.engine.egressAttempts(folder, runId).catch(() => ({ attempts: [] }));
    const line = egressLine({ hosts: summarizeAttempts(attempts) });
    return line ? `${label} — ${line}` : label;
  }

  private async onRunCollected(label: string, changeSet: ChangeSet): Promise<void> {
    const previous = this.reviews.get(changeSet.folder)?.current;
    const before = new Map(previous?.changes.map((c) => [c.path, c.hash ?? c.kind]) ?? []);
    for (const change of changeSet.changes) {
      if (before.get(change.path) === (change.hash ?? change.kind)) continue;
      const key = `${changeSet.folder}\0${change.path}`;
      this.runsByPath[key] = [...(this.runsByPath[key] ?? []).filter((r) => r !== label), label].slice(-5);
    }
    const live = new Set(changeSet.changes.map((c) => `${changeSet.folder}\0${c.path}`));
    for (const key of Object.keys(this.runsByPath)) {
      if (key.startsWith(`${changeSet.folder}\0`) && !live.has(key)) delete this.runsByPath[key];
    }
    await this.deps.state.update(RUNS_KEY, this.runsByPath);
    this.show(changeSet, await this.conflictsOf(changeSet));
  }

  // ---------------------------------------------------------------------------------------------------------
  // Opening changes.

  private async openDiff(folder: string, relPath: string): Promise<void> {
    const review = this.review(folder);
    const change = review.current.changes.find((c) => c.path === relPath);
    if (!change) return;
    const real = vscode.Uri.file(path.join(folder, ...(change.fromPath ?? change.path).split('/')));
    const isConflict = review.rows().some((r) => r.path === relPath && r.group === 'conflicts');
    if (isConflict && change.kind !== 'added') {
      // Base, yours and the box's side by side: what each side did to the file they both started from.
      const base = proposalUri(folder, change.fromPath ?? relPath, { base: true });
      const name = path.basename(relPath);
      await vscode.commands.executeCommand('vscode.diff', base, real, `${name} (base ↔ yours)`, {
        viewColumn: vscode.ViewColumn.One,
        preview: false,
      });
      const boxSide = change.kind === 'deleted' ? proposalUri(folder, relPath, { empty: true }) : proposalUri(folder, relPath);
      await vscode.commands.executeCommand('vscode.diff', base, boxSide, `${name} (base ↔ box)`, {
        viewColumn: vscode.ViewColumn.Beside,
        preview: false,
      });
      // The row's actions are icons; here they are spelled out (not awaited: the diff is open either way).
      void vscode.window
        .showInformationMessage(
          vscode.l10n.t('Agent Sandbox: {0} changed on both sides. Which version stays?', relPath),
          vscode.l10n.t("Take the Box's Version"),
          vscode.l10n.t('Keep Mine'),
          vscode.l10n.t('Merge by Hand'),
        )
        .then((picked) => {
          const row = review.rows().find((r) => r.path === relPath && r.group === 'conflicts');
          if (!picked || !row) return;
          const command =
            picked === vscode.l10n.t('Keep Mine')
              ? 'agentSandbox.review.keepMine'
              : picked === vscode.l10n.t('Merge by Hand')
                ? 'agentSandbox.review.mergeByHand'
                : 'agentSandbox.review.takeBoxVersion';
          return vscode.commands.executeCommand(command, row);
        });
      return;
    }
    const left = change.kind === 'added' ? proposalUri(folder, relPath, { empty: true }) : real;
    const right = change.kind === 'deleted' ? proposalUri(folder, relPath, { empty: true }) : proposalUri(folder, relPath);
    const title = `${path.basename(relPath)} (workspace ↔ Agent Sandbox proposal)`;
    await vscode.commands.executeCommand('vscode.diff', left, right, title, { preview: true });
  }

  /**
   * Opens the folder's pending files (or `options.paths` among them) in one multi-file Review editor, whose
   * title bar has Accept / Reject for the file with the cursor. False when none of them is pending.
   */
  private async openReviewEditor(folder: string | undefined, options: { paths?: string[]; title?: string } = {}): Promise<boolean> {
    await this.updates;
    if (!folder) return false;
    const wanted = options.paths ? new Set(options.paths) : undefined;
    const changes = this.review(folder).current.changes.filter((c) => !c.flags.includes('git-internal') && (!wanted || wanted.has(c.path)));
    const opened = await this.reviewEditors.open(folder, changes, options.title ?? `Review: ${path.basename(folder)}`);
    if (!opened) void vscode.window.showInformationMessage(vscode.l10n.t('Agent Sandbox: no pending text file to review in one editor.'));
    return opened;
  }

  /**
   * The file an action in a Review editor's title bar (or its keybinding) acts on: the one with the cursor,
   * else the only one still pending, else the one picked.
   */
  private async reviewEditorSelection(): Promise<ReviewSelection | undefined> {
    const content = this.reviewEditors.active();
    if (!content) return undefined;
    const pending = new Set(
      this.review(content.folder)
        .changeRows()
        .map((r) => r.path),
    );
    const paths = content.paths.filter((p) => pending.has(p));
    const editor = vscode.window.activeTextEditor;
    const located = editor ? this.locate(editor.document.uri) : undefined;
    if (located?.folder === content.folder && paths.includes(located.path)) return { folder: content.folder, paths: [located.path] };
    if (paths.length <= 1) return paths.length ? { folder: content.folder, paths } : undefined;
    const picked = await vscode.window.showQuickPick(paths, {
      placeHolder: vscode.l10n.t('Which file? (Put the cursor in a file of the Review editor to act on it directly.)'),
    });
    return picked ? { folder: content.folder, paths: [picked] } : undefined;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Accept and reject.

  /** Accepts paths; flagged ones only after a modal that names them (or `approveFlagged`). */
  async accept(selection: ReviewSelection): Promise<ApplyOutcome | undefined> {
    const { folder } = selection;
    const changeSet = this.review(folder).current;
    const flagged = flaggedPaths(changeSet, selection.paths);
    let paths = selection.paths;
    let approveFlagged: string[] = [];
    if (flagged.length > 0) {
      if (selection.approveFlagged === true) {
        approveFlagged = flagged;
      } else if (selection.approveFlagged === false) {
        paths = paths.filter((p) => !flagged.includes(p));
      } else {
        const describe = flagged.map((p) => `${p} (${this.flagsOf(changeSet, p)})`).join('\n');
        const choice = await vscode.window.showWarningMessage(
          vscode.l10n.t('Apply changes that can run code on your machine?'),
          { modal: true, detail: vscode.l10n.t('{0}\n\nReview them first: they run outside the box once applied.', describe) },
          vscode.l10n.t('Apply Them Too'),
          ...(paths.length > flagged.length ? ['Apply Only the Others'] : []),
        );
        if (!choice) return undefined;
        if (choice === vscode.l10n.t('Apply Them Too')) approveFlagged = flagged;
        else paths = paths.filter((p) => !flagged.includes(p));
      }
    }
    return this.applyAndRecord(folder, changeSet, { paths, approveFlagged });
  }

  private async applyAndRecord(
    folder: string,
    changeSet: ChangeSet,
    selection: { paths: string[]; approveFlagged: string[]; takeBoxVersion?: string[] },
  ): Promise<ApplyOutcome | undefined> {
    const runs = [...new Set(selection.paths.flatMap((p) => this.runsByPath[`${folder}\0${p}`] ?? []))];
    const label = `Agent Sandbox: accept ${selection.paths.length === 1 ? selection.paths[0] : `${selection.paths.length} changes`}${runs.length ? ` from ${runs.join(', ')}` : ''}`;
    try {
      const outcome = await applyChanges(this.deps.engine, changeSet, { ...selection, label });
      await closeProposalTabs(folder, (p) => outcome.applied.includes(p));
      if (outcome.applied.length) {
        this.deps.runEvents.fireDecided({ folder, paths: outcome.applied, decision: 'accepted', at: Date.now() });
      }
      if (outcome.conflicts.length) {
        void vscode.window.showWarningMessage(
          vscode.l10n.t(
            'Agent Sandbox: not applied — you changed {0} since the box got {1}. Resolve {2} in the Conflicts group.',
            outcome.conflicts.join(', '),
            outcome.conflicts.length === 1 ? 'it' : 'them',
            outcome.conflicts.length === 1 ? 'it' : 'them',
          ),
        );
      }
      await this.refresh(folder);
      return outcome;
    } catch (error) {
      await showEngineError(error, this.deps.log);
      await this.refresh(folder).catch(() => undefined);
      return undefined;
    }
  }

  /**
   * Rejects paths: the box goes back to the workspace's version, so the agent sees the decision. After Merge
   * by Hand that version holds what the developer took from the box, so the decision is recorded as `merged`.
   */
  async reject(selection: ReviewSelection, decision: 'rejected' | 'merged' = 'rejected'): Promise<void> {
    try {
      await this.deps.engine.discard(selection.folder, selection.paths);
      await closeProposalTabs(selection.folder, (p) => selection.paths.includes(p));
      this.deps.runEvents.fireDecided({ folder: selection.folder, paths: selection.paths, decision, at: Date.now() });
      await this.refresh(selection.folder);
    } catch (error) {
      await showEngineError(error, this.deps.log);
    }
  }

  private async acceptAll(folder: string | undefined): Promise<ApplyOutcome | undefined> {
    if (!folder) return undefined;
    const review = this.review(folder);
    const pending = review
      .rows()
      .filter((r) => r.group === 'pending')
      .map((r) => r.path);
    if (pending.length === 0) {
      void vscode.window.showInformationMessage(vscode.l10n.t('Agent Sandbox: nothing pending to accept (conflicts are resolved one by one).'));
      return undefined;
    }
    return this.accept({ folder, paths: pending });
  }

  private async rejectAll(folder: string | undefined): Promise<void> {
    if (!folder) return;
    const paths = this.review(folder)
      .changeRows()
      .map((r) => r.path);
    if (paths.length === 0) return;
    const choice = await vscode.window.showWarningMessage(
      vscode.l10n.t("Reject all {0} pending change(s)? The box is put back to your workspace's version.", paths.length),
      { modal: true },
      vscode.l10n.t('Reject All'),
    );
    if (choice) await this.reject({ folder, paths });
  }

  private async takeBoxVersion(args: unknown[]): Promise<ApplyOutcome | undefined> {
    const selection = this.selectionFromArgs(args);
    if (!selection) return undefined;
    const changeSet = this.review(selection.folder).current;
    const choice = selection.approveFlagged
      ? "Take the Box's"
      : await vscode.window.showWarningMessage(
          vscode.l10n.t("Replace your changes to {0} with the box's version?", selection.paths.join(', ')),
          { modal: true, detail: vscode.l10n.t('Your own edits to these files since the box got them are replaced (Undo brings them back).') },
          vscode.l10n.t("Take the Box's"),
        );
    if (!choice) return undefined;
    const flagged = flaggedPaths(changeSet, selection.paths);
    return this.applyAndRecord(selection.folder, changeSet, { paths: selection.paths, approveFlagged: flagged, takeBoxVersion: selection.paths });
  }

  /** Keep Mine on a conflict: a reject, or the end of a merge by hand (recorded as such). */
  private async keepMine(args: unknown[]): Promise<void> {
    const selection = this.selectionFromArgs(args);
    if (!selection) return;
    const merged = selection.paths.filter((p) => this.mergingByHand.delete(`${selection.folder}\0${p}`));
    const rest = selection.paths.filter((p) => !merged.includes(p));
    if (merged.length) await this.reject({ ...selection, paths: merged }, 'merged');
    if (rest.length) await this.reject({ ...selection, paths: rest });
  }

  /** Opens the workspace file beside the box's version; "Keep Mine" afterwards sends the merge to the box. */
  private async mergeByHand(row?: ReviewRow): Promise<void> {
    if (!row?.change) return;
    this.mergingByHand.add(`${row.folder}\0${row.path}`);
    const real = vscode.Uri.file(path.join(row.folder, ...row.path.split('/')));
    await vscode.commands.executeCommand(
      'vscode.diff',
      proposalUri(row.folder, row.path),
      real,
      `${path.basename(row.path)} (box ↔ yours: edit yours)`,
    );
    void vscode.window.showInformationMessage(
      vscode.l10n.t(
        'Edit your {0} (right) taking what you want from the box\'s (left), save, then choose "Keep Mine" on the conflict: the box gets your merged file.',
        path.basename(row.path),
      ),
    );
  }

  private flagsOf(changeSet: ChangeSet, relPath: string): string {
    const change = changeSet.changes.find((c) => c.path === relPath);
    return (change?.flags ?? [])
      .filter((f) => f !== 'git-internal')
      .map(describeFlag)
      .join(', ');
  }

  private async acceptCommand(args: unknown[]): Promise<ApplyOutcome | undefined> {
    const selection = this.selectionFromArgs(args) ?? (await this.reviewEditorSelection());
    return selection ? this.accept(selection) : undefined;
  }

  private async rejectCommand(args: unknown[]): Promise<void> {
    const selection = this.selectionFromArgs(args) ?? (await this.reviewEditorSelection());
    if (selection) await this.reject(selection);
  }

  /**
   * Accepts what commands get: a `ReviewSelection`; SCM rows (the clicked one and the selection); or the uri
   * of a proposal or workspace file (editor title actions).
   */
  private selectionFromArgs(args: unknown[]): ReviewSelection | undefined {
    const [first, second] = args;
    if (isSelection(first)) return first;
    const rows = (Array.isArray(second) ? second : [first]).filter(isRow);
    if (rows.length > 0) return { folder: rows[0].folder, paths: rows.filter((r) => r.folder === rows[0].folder).map((r) => r.path) };
    const uri = first instanceof vscode.Uri ? first : vscode.window.activeTextEditor?.document.uri;
    const located = uri ? this.locate(uri) : undefined;
    return located ? { folder: located.folder, paths: [located.path] } : undefined;
  }

  /** Folder and path of a proposal uri or of a workspace file with a pending change. */
  private locate(uri: vscode.Uri): { folder: string; path: string } | undefined {
    if (uri.scheme === PROPOSAL_SCHEME) return proposalLocation(uri);
    for (const review of this.reviews.values()) {
      const rel = path.relative(review.folder, uri.fsPath).split(path.sep).join('/');
      if (!rel.startsWith('..') && review.current.changes.some((c) => c.path === rel)) return { folder: review.folder, path: rel };
    }
    return undefined;
  }

  private folderFromArg(arg: unknown): string | undefined {
    if (typeof arg === 'string') return arg;
    const rootUri = (arg as vscode.SourceControl | undefined)?.rootUri;
    if (rootUri) return rootUri.fsPath;
    if (this.reviews.size === 1) return [...this.reviews.keys()][0];
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  }

  private async refreshCommand(arg?: unknown): Promise<ChangeSet | undefined> {
    const folder = this.folderFromArg(arg);
    if (!folder) return undefined;
    try {
      return await this.refresh(folder);
    } catch (error) {
      await showEngineError(error, this.deps.log);
      return undefined;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Hunks.

  /**
   * The hunks of a proposal of a modified text file, against the workspace file (or why it is decided as a
   * whole: too large, too scattered); no hunks for anything else.
   */
  async hunksOfProposal(document: vscode.TextDocument): Promise<HunkSplit> {
    const none: HunkSplit = { hunks: [] };
    const located = this.locate(document.uri);
    const query = new URLSearchParams(document.uri.query);
    if (!located || query.get('empty') === '1' || query.get('base') === '1') return none;
    const change = this.review(located.folder).current.changes.find((c) => c.path === located.path);
    if (!change || change.kind !== 'modified' || change.binary || change.type !== 'file') return none;
    return this.hunksOf(located.folder, located.path, document.getText());
  }

  /** Next / previous pending change: the next hunk of the open proposal, else the next pending file's diff. */
  private async goToChange(hunks: HunkActions, direction: 1 | -1): Promise<void> {
    if (await hunks.revealHunk(direction)) return;
    const located = vscode.window.activeTextEditor ? this.locate(vscode.window.activeTextEditor.document.uri) : undefined;
    const folder = located?.folder ?? this.folderFromArg(undefined);
    if (!folder) return;
    const rows = this.review(folder).changeRows();
    if (rows.length === 0) {
      void vscode.window.showInformationMessage(vscode.l10n.t('Agent Sandbox: nothing is pending.'));
      return;
    }
    const at = located ? rows.findIndex((r) => r.path === located.path) : -1;
    const next = rows[(at + direction + rows.length) % rows.length] ?? rows[0];
    await this.openDiff(folder, next.path);
  }

  private async hunksOf(folder: string, relPath: string, proposal: string): Promise<HunkSplit> {
    const base = await vscode.workspace.openTextDocument(vscode.Uri.file(path.join(folder, ...relPath.split('/'))));
    return computeHunks(base.getText(), proposal);
  }

  /**
   * Accept: the hunk goes into the workspace file (a text edit, undoable, saved) and the baseline advances, so
   * the rest stays pending. Reject: the box's file loses that hunk, so the agent sees the decision.
   */
  async decideHunk(uri: vscode.Uri, index: number, decision: 'accept' | 'reject'): Promise<ChangeSet | undefined> {
    const located = this.locate(uri);
    if (!located) return undefined;
    const { folder, path: relPath } = located;
    try {
      const realUri = vscode.Uri.file(path.join(folder, ...relPath.split('/')));
      const document = await vscode.workspace.openTextDocument(realUri);
      if (document.isDirty) {
        void vscode.window.showWarningMessage(
          vscode.l10n.t('Agent Sandbox: save or revert your edits to {0} first; hunks apply to the saved file.', relPath),
        );
        return undefined;
      }
      const base = document.getText();
      const proposal = Buffer.from(await this.deps.engine.readProposal(folder, relPath)).toString('utf8');
      const split = computeHunks(base, proposal);
      if (split.wholeFileOnly !== undefined) {
        void vscode.window.showWarningMessage(
          vscode.l10n.t('Agent Sandbox: {0} has no hunks to decide: {1}. Accept or reject the whole file.', relPath, split.wholeFileOnly),
        );
        return undefined;
      }
      const hunk = split.hunks[index];
      if (!hunk) return undefined;
      if (decision === 'accept') {
        const edit = new vscode.WorkspaceEdit();
        edit.replace(realUri, new vscode.Range(document.positionAt(0), document.positionAt(base.length)), acceptHunk(base, proposal, hunk), {
          label: `Agent Sandbox: accept hunk ${hunk.header} of ${relPath}`,
          needsConfirmation: false,
        });
        if (!(await vscode.workspace.applyEdit(edit)) || !(await document.save())) {
          throw new Error(`Could not write the hunk into ${relPath}.`);
        }
        await this.deps.engine.advanceBaseline(folder, [relPath]);
      } else {
        await this.deps.engine.fileOp({ folder, op: 'write', path: relPath, content: rejectHunk(base, proposal, hunk) });
        await this.deps.engine.collect(folder);
      }
      this.deps.runEvents.fireDecided({
        folder,
        paths: [relPath],
        decision: decision === 'accept' ? 'accepted' : 'rejected',
        hunk: hunk.header,
        at: Date.now(),
      });
      return await this.refresh(folder);
    } catch (error) {
      await showEngineError(error, this.deps.log);
      return undefined;
    }
  }
}

function isSelection(value: unknown): value is ReviewSelection {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ReviewSelection).folder === 'string' &&
    Array.isArray((value as ReviewSelection).paths)
  );
}

function isRow(value: unknown): value is ReviewRow {
  return (
    typeof value === 'object' &&
    value !== null &&
    'resourceUri' in value &&
    typeof (value as ReviewRow).folder === 'string' &&
    typeof (value as ReviewRow).path === 'string'
  );
}

/**
 * Closes the tabs that show a proposal or base of a decided path — either side of a diff (the conflict views
 * put the box's base on the left of your file): once decided, there is nothing left to see.
 */
async function closeProposalTabs(folder: string, isDecided: (relPath: string) => boolean): Promise<void> {
  const proposalPath = (uri: vscode.Uri) => {
    const located = proposalLocation(uri);
    return located?.folder === folder ? located.path : undefined;
  };
  const tabs = vscode.window.tabGroups.all.flatMap((group) =>
    group.tabs.filter((tab) => {
      const input = tab.input;
      const uris =
        input instanceof vscode.TabInputTextDiff ? [input.original, input.modified] : input instanceof vscode.TabInputText ? [input.uri] : [];
      return uris.some((uri) => {
        const relPath = proposalPath(uri);
        return relPath !== undefined && isDecided(relPath);
      });
    }),
  );
  if (tabs.length > 0) await vscode.window.tabGroups.close(tabs, true);
}
