import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DECIDED_DIR, DecidedContents } from '../../core/history/decidedContents';
import type { HistoryExport, HistoryRecord } from '../../core/history/historyRecord';
import { HistoryStore, type HistoryLimits } from '../../core/history/historyStore';
import { REDACTED } from '../../core/history/redaction';
import { Disposable } from '../../core/lifecycle';
import type { EngineClient } from '../engineClient';
import { proposalUri } from '../review/proposalDocuments';
import type { RunEvents } from '../runEvents';
import type { SandboxSettings } from '../settings';
import { DecidedDocuments, decidedUri } from './decidedDocuments';
import { HistoryRecorder } from './historyRecorder';
import { HISTORY_VIEW_ID, HistoryViewProvider } from './historyView';
import { errorText } from '../../core/util/errorText';

export interface RunHistoryDeps {
  context: vscode.ExtensionContext;
  runEvents: RunEvents;
  engine: EngineClient;
  settings: SandboxSettings;
  log: vscode.LogOutputChannel;
}

/** Arguments of `agentSandbox.history.export`; without `path` a save dialog asks. */
export interface ExportHistoryArgs {
  path?: string;
}

/** What `agentSandbox.history.export` returns (for tests, keybindings and other extensions). */
export interface ExportHistoryResult {
  /** The file written. */
  path: string;
  /** The store's current file (JSON lines), for tools that read the history directly. */
  storeFile: string;
  /** The records exported, newest first. */
  records: HistoryRecord[];
}

/** Settings section of the history's own keys (`agentSandbox.history.maxSizeMiB`, `…maxAgeDays`). */
const HISTORY_SECTION = 'agentSandbox.history';

function historyLimits(): HistoryLimits {
  const config = vscode.workspace.getConfiguration(HISTORY_SECTION);
  const maxSizeMiB = Math.max(1, config.get<number>('maxSizeMiB', 20));
  const maxAgeDays = Math.max(0, config.get<number>('maxAgeDays', 30));
  return { maxSizeBytes: maxSizeMiB * 1024 * 1024, maxAgeMs: maxAgeDays * 24 * 60 * 60 * 1000 };
}

/** The workspace's own storage folder (the window's, when no folder is open). */
function historyDir(context: vscode.ExtensionContext): string {
  const base = context.storageUri?.scheme === 'file' ? context.storageUri : context.globalStorageUri;
  return path.join(base.fsPath, 'history');
}

/**
 * The run history: the store, the recorder on the run event stream, the panel and its commands. The store
 * opens in the background; nothing here delays activation.
 */
export class RunHistory extends Disposable {
  readonly recorder: HistoryRecorder;
  private readonly decided: DecidedContents;

  constructor(private readonly deps: RunHistoryDeps) {
    super();
    const store = HistoryStore.open({ dir: historyDir(deps.context), ...historyLimits() });
    // The decided diffs' contents live next to the history and take at most as much room as it may.
    this.decided = new DecidedContents(path.join(historyDir(deps.context), DECIDED_DIR), historyLimits().maxSizeBytes);
    this._register(new DecidedDocuments(this.decided));
    store.then(
      (s) => {
        this._register(s);
        if (s.skippedLines > 0) deps.log.warn(`[history] skipped ${s.skippedLines} unreadable line(s) in ${s.file} (a write cut short by a crash)`);
      },
      (error: unknown) => deps.log.error(`[history] could not open the run history: ${errorText(error)}`),
    );
    this.recorder = this._register(
      new HistoryRecorder({
        store,
        runEvents: deps.runEvents,
        readProposal: (folder, relPath) => deps.engine.readProposal(folder, relPath),
        pendingChanges: (folder) => deps.engine.pendingChanges(folder),
        egressAttempts: async (folder) => (await deps.engine.egressAttempts(folder)).attempts,
        log: deps.log,
        envAllowlist: () => deps.settings.envAllowlist(),
        decided: this.decided,
      }),
    );
    this._register(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (!event.affectsConfiguration(HISTORY_SECTION)) return;
        void store.then((s) => s.setLimits(historyLimits()));
        this.decided.setMaxBytes(historyLimits().maxSizeBytes);
      }),
    );
    this._register(
      new HistoryViewProvider(
        vscode.Uri.joinPath(deps.context.extensionUri),
        this.recorder,
        {
          openDiff: (runId, relPath) => this.openDiff(runId, relPath),
          rerun: (runId) => this.rerun(runId),
          copyCommand: (runId) => this.copyCommand(runId),
          exportHistory: async () => void (await this.exportHistory()),
          clear: async () => void (await this.clear()),
        },
        deps.log,
      ),
    );
    this._register(vscode.commands.registerCommand('agentSandbox.showHistory', () => this.show()));
    this._register(vscode.commands.registerCommand('agentSandbox.history.export', (args?: ExportHistoryArgs) => this.exportHistory(args)));
    this._register(vscode.commands.registerCommand('agentSandbox.history.clear', (args?: { confirm?: boolean }) => this.clear(args)));
  }

  async show(): Promise<void> {
    await vscode.commands.executeCommand(`${HISTORY_VIEW_ID}.focus`);
  }

  private async record(runId: string): Promise<HistoryRecord> {
    const record = (await this.recorder.store).get(runId);
    if (!record) throw new Error(`run ${runId} is no longer in the history (it was cleared or rotated out).`);
    return record;
  }

  private async openDiff(runId: string, relPath: string): Promise<void> {
    const record = await this.record(runId);
    const file = record.files.find((f) => f.path === relPath);
    if (!file) throw new Error(`run ${runId} did not change ${relPath}.`);
    const real = vscode.Uri.file(path.join(record.folder, ...relPath.split('/')));
    const last = file.decisions.at(-1);
    // Decided: every decision was on the whole file, or its hunks were all decided (nothing pending any more).
    const decided = last && (!last.hunk || !(await this.isPending(record.folder, relPath)));
    if (last && decided) {
      const kept = await this.decided.get(runId, relPath);
      if (kept?.decided !== undefined) {
        // Both sides are read-only documents from the history: nothing in this tab can write the workspace.
        const title = `${path.basename(relPath)} (box proposed ↔ ${last.decision}, read-only)`;
        await vscode.commands.executeCommand(
          'vscode.diff',
          decidedUri(record.folder, runId, relPath, 'proposed'),
          decidedUri(record.folder, runId, relPath, 'decided'),
          title,
          { preview: true },
        );
        return;
      }
      // A decided file is no longer a proposal: the box holds the workspace's version again.
      if (last.decision === 'accepted' && file.kind !== 'deleted') {
        await vscode.commands.executeCommand('vscode.open', real);
      } else {
        void vscode.window.showInformationMessage(
          vscode.l10n.t(
            'Agent Sandbox: {0} was {1} on {2}; there is no pending proposal to compare.',
            relPath,
            last.decision === 'accepted' ? 'applied (deleted)' : 'rejected',
            new Date(last.at).toLocaleString(),
          ),
        );
      }
      return;
    }
    const version = Date.now();
    const left =
      file.kind === 'added'
        ? proposalUri(record.folder, relPath, { empty: true, version })
        : file.fromPath
          ? vscode.Uri.file(path.join(record.folder, ...file.fromPath.split('/')))
          : real;
    const right =
      file.kind === 'deleted' ? proposalUri(record.folder, relPath, { empty: true, version }) : proposalUri(record.folder, relPath, { version });
    await vscode.commands.executeCommand('vscode.diff', left, right, `${relPath} (workspace ↔ box)`);
  }

  private async isPending(folder: string, relPath: string): Promise<boolean> {
    const pending = await this.deps.engine.pendingChanges(folder).catch(() => undefined);
    return pending?.changes.some((c) => c.path === relPath) ?? false;
  }

  private async rerun(runId: string): Promise<void> {
    const record = await this.record(runId);
    if (record.command.includes(REDACTED)) {
      void vscode.window.showWarningMessage(
        vscode.l10n.t('Agent Sandbox: this command had a secret in it, which the history does not keep; run it again yourself.'),
      );
      return;
    }
    await vscode.commands.executeCommand('agentSandbox.runCommand', {
      command: record.command,
      folder: record.folder,
      ...(record.cwd ? { cwd: record.cwd } : {}),
      // An offline run runs offline again.
      ...(record.policy?.offline ? { network: 'none' } : {}),
    });
  }

  private async copyCommand(runId: string): Promise<void> {
    const record = await this.record(runId);
    await vscode.env.clipboard.writeText(record.command);
    vscode.window.setStatusBarMessage('Agent Sandbox: command copied', 3000);
  }

  /** Writes the history as JSON to `args.path` (or where the save dialog says); undefined when cancelled. */
  async exportHistory(args: ExportHistoryArgs = {}): Promise<ExportHistoryResult | undefined> {
    await this.recorder.idle();
    const store = await this.recorder.store;
    let target = args.path;
    if (!target) {
      const stamp = new Date().toISOString().slice(0, 10);
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
      const picked = await vscode.window.showSaveDialog({
        title: 'Export Run History',
        saveLabel: 'Export',
        filters: { JSON: ['json'] },
        ...(folder ? { defaultUri: vscode.Uri.joinPath(folder, `agent-sandbox-history-${stamp}.json`) } : {}),
      });
      if (!picked) return undefined;
      target = picked.fsPath;
    }
    const records = store.records();
    const document: HistoryExport = { format: 'agent-sandbox-run-history', version: 1, exportedAt: new Date().toISOString(), records };
    await fs.promises.writeFile(target, `${JSON.stringify(document, null, 2)}\n`, { mode: 0o600 });
    if (!args.path) vscode.window.setStatusBarMessage(`Agent Sandbox: exported ${records.length} run(s) to ${target}`, 5000);
    return { path: target, storeFile: store.file, records };
  }

  /** Clears the history after a modal confirmation (skipped with `{ confirm: false }`); true when cleared. */
  async clear(args: { confirm?: boolean } = {}): Promise<boolean> {
    if (args.confirm !== false) {
      const choice = await vscode.window.showWarningMessage(
        vscode.l10n.t('Clear the run history of this workspace?'),
        {
          modal: true,
          detail: vscode.l10n.t('Every recorded run, its output and the decisions are removed. Export the history first to keep a copy.'),
        },
        vscode.l10n.t('Clear History'),
      );
      if (choice !== vscode.l10n.t('Clear History')) return false;
    }
    await this.recorder.clear();
    return true;
  }
}
