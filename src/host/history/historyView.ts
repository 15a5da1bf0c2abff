import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { Disposable } from '../../core/lifecycle';
import {
  ClearCommand,
  CopyCommandCommand,
  ExportCommand,
  OpenDiffCommand,
  ReadyCommand,
  RecordChangedNotification,
  RecordsNotification,
  RerunCommand,
  type IpcMessage,
} from '../../webview/history/protocol';
import type { HistoryRecorder } from './historyRecorder';
import { errorText } from '../../core/util/errorText';

/** Id of the Run History webview view (package.json `contributes.views.agentSandbox`). */
export const HISTORY_VIEW_ID = 'agentSandbox.historyView';

/** What the panel's buttons do; the feature wires them to its commands. */
export interface HistoryViewActions {
  openDiff(runId: string, path: string): Promise<void>;
  rerun(runId: string): Promise<void>;
  copyCommand(runId: string): Promise<void>;
  exportHistory(): Promise<void>;
  clear(): Promise<void>;
}

/**
 * The Run History panel. Its front end (media/history.js, built from src/webview/history) gets the records
 * only after it says `ready`, and again whole whenever it is re-created; it loads nothing but media/.
 */
export class HistoryViewProvider extends Disposable implements vscode.WebviewViewProvider {
  private view: vscode.WebviewView | undefined;
  private ready = false;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly recorder: HistoryRecorder,
    private readonly actions: HistoryViewActions,
    private readonly log: vscode.LogOutputChannel,
  ) {
    super();
    // Kept alive while hidden: runs show their output channel in the same panel area, and the history must
    // be there, current, the moment the developer switches back (re-creating it mid-run left it blank).
    this._register(vscode.window.registerWebviewViewProvider(HISTORY_VIEW_ID, this, { webviewOptions: { retainContextWhenHidden: true } }));
    this._register(
      recorder.onDidChange((change) => {
        if ('record' in change) this.post(RecordChangedNotification.message({ record: change.record }));
        else void this.postAll();
      }),
    );
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    view.webview.options = { enableScripts: true, localResourceRoots: [media] };
    view.webview.html = this.html(view.webview, media);
    const subscriptions = [
      view.webview.onDidReceiveMessage((message: unknown) => void this.onMessage(message)),
      view.onDidChangeVisibility(() => {
        if (view.visible && this.ready) void this.postAll();
      }),
    ];
    view.onDidDispose(() => {
      for (const s of subscriptions) s.dispose();
      if (this.view === view) this.view = undefined;
    });
  }

  private async onMessage(message: unknown): Promise<void> {
    try {
      if (ReadyCommand.is(message)) {
        this.ready = true;
        await this.postAll();
      } else if (OpenDiffCommand.is(message)) await this.actions.openDiff(message.params.runId, message.params.path);
      else if (RerunCommand.is(message)) await this.actions.rerun(message.params.runId);
      else if (CopyCommandCommand.is(message)) await this.actions.copyCommand(message.params.runId);
      else if (ExportCommand.is(message)) await this.actions.exportHistory();
      else if (ClearCommand.is(message)) await this.actions.clear();
      else this.log.warn(`[history] unknown message from the panel: ${JSON.stringify(message).slice(0, 200)}`);
    } catch (error) {
      this.log.error(`[history] ${errorText(error)}`);
      void vscode.window.showErrorMessage(vscode.l10n.t('Agent Sandbox: {0}', errorText(error)));
    }
  }

  private async postAll(): Promise<void> {
    const store = await this.recorder.store;
    this.post(RecordsNotification.message({ records: store.records() }));
  }

  private post(message: IpcMessage): void {
    if (this.view && this.ready) void this.view.webview.postMessage(message);
  }

  private html(webview: vscode.Webview, media: vscode.Uri): string {
    const nonce = randomBytes(16).toString('base64');
    const uri = (name: string) => webview.asWebviewUri(vscode.Uri.joinPath(media, name)).toString();
    const csp = [
      "default-src 'none'",
      `style-src ${webview.cspSource}`,
      `font-src ${webview.cspSource}`,
      `img-src ${webview.cspSource}`,
      `script-src 'nonce-${nonce}'`,
      "connect-src 'none'",
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${uri('codicon.css')}">
<link rel="stylesheet" href="${uri('history.css')}">
<title>Run History</title>
</head>
<body>
<div id="app" class="app" aria-busy="true"></div>
<script nonce="${nonce}" src="${uri('history.js')}"></script>
</body>
</html>`;
  }
}
