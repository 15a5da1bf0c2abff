import * as vscode from 'vscode';
import type { DecidedContents } from '../../core/history/decidedContents';
import { Disposable } from '../../core/lifecycle';
import { folderFileOf, folderFileUri } from '../review/proposalDocuments';

/** URI scheme of the history's read-only documents: what the box proposed and what was decided. */
export const DECIDED_SCHEME = 'agent-sandbox-decided';

/**
 * Uri of one side of a decided file of run `runId`. Its path is the workspace file's (the diff shows one file,
 * with its language), the query says which run and side; no workspace file is ever opened through it.
 */
export function decidedUri(folder: string, runId: string, relPath: string, side: 'proposed' | 'decided'): vscode.Uri {
  return folderFileUri(DECIDED_SCHEME, folder, relPath, { run: runId, side });
}

/** Serves the decided diff's two sides from the history's decided contents; both are read-only documents. */
export class DecidedDocuments extends Disposable implements vscode.TextDocumentContentProvider {
  constructor(private readonly contents: DecidedContents) {
    super();
    this._register(vscode.workspace.registerTextDocumentContentProvider(DECIDED_SCHEME, this));
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const query = new URLSearchParams(uri.query);
    const located = folderFileOf(uri);
    const runId = query.get('run');
    if (!located || !runId) return '';
    const kept = await this.contents.get(runId, located.path);
    const side = query.get('side') === 'decided' ? kept?.decided : kept?.proposed;
    if (side === undefined) return '(not kept in the run history: the file was too large, binary, or its run was cleared)';
    return side ?? '';
  }
}
