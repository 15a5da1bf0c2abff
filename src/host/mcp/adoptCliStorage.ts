import * as vscode from 'vscode';
import { adoptOwnStorage } from '../../cli/adoptOwnStorage';
import { errorText } from '../../core/util/errorText';

/**
 * For each open folder, brings the pending review and run history that `agent-sandbox mcp` or the command line
 * kept while VS Code had never opened it into this workspace's storage, and says so in the log. Runs on
 * activation before the review is restored and the history opens; a failure is logged, never fatal.
 */
export function adoptCliStorage(storageUri: vscode.Uri | undefined, log: vscode.LogOutputChannel): void {
  if (storageUri?.scheme !== 'file') return;
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    if (folder.uri.scheme !== 'file') continue;
    const fsPath = folder.uri.fsPath;
    try {
      const adopted = adoptOwnStorage(fsPath, storageUri.fsPath);
      if (!adopted) continue;
      if (adopted.review)
        log.info(`[review] brought the pending changes the command line made for ${fsPath} (kept in ${adopted.from}) into this workspace's review`);
      if (adopted.reviewLeft) {
        log.warn(
          `[review] ${fsPath} has pending changes in this workspace and others the command line made while VS Code was closed; those stay in ${adopted.from}: ` +
            `see them with "AGENT_SANDBOX_STORAGE=${adopted.from} agent-sandbox diff --folder ${fsPath}", then apply or discard them the same way.`,
        );
      }
      if (adopted.historyLines > 0)
        log.info(
          `[history] brought ${adopted.historyLines} history record line(s) of the command line's runs in ${fsPath} into this workspace's history`,
        );
    } catch (error) {
      log.warn(
        `[review] could not bring the command line's pending changes of ${fsPath} (in its state directory) into this workspace: ${errorText(error)}`,
      );
    }
  }
}
