import * as vscode from 'vscode';
import { Disposable } from '../../core/lifecycle';
import type { EngineClient } from '../engineClient';

/** URI scheme of read-only documents that show what the box proposes for a file. */
export const PROPOSAL_SCHEME = 'agent-sandbox-proposal';

/**
 * Uri of the box's version of `relPath` in `folder`; `empty` gives an empty document (left side of an add),
 * `base` the version workspace and box both started from.
 */
export function proposalUri(folder: string, relPath: string, options: { empty?: boolean; base?: boolean; version?: number } = {}): vscode.Uri {
  const query = new URLSearchParams({
    folder,
    ...(options.empty ? { empty: '1' } : {}),
    ...(options.base ? { base: '1' } : {}),
    v: String(options.version ?? 0),
  });
  return vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: `/${relPath}`, query: query.toString() });
}

/**
 * Serves proposal documents from the engine server's last collect. Nothing here touches the workspace:
 * both sides of a preview are virtual until the developer approves.
 */
export class ProposalDocuments extends Disposable implements vscode.TextDocumentContentProvider {
  private readonly changeEmitter = this._register(new vscode.EventEmitter<vscode.Uri>());
  readonly onDidChange = this.changeEmitter.event;

  constructor(private readonly engine: EngineClient) {
    super();
    this._register(vscode.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, this));
  }

  /** Open proposal documents of the folder show the box's current content again. */
  refresh(folder: string): void {
    for (const doc of vscode.workspace.textDocuments) {
      if (doc.uri.scheme === PROPOSAL_SCHEME && new URLSearchParams(doc.uri.query).get('folder') === folder) {
        this.changeEmitter.fire(doc.uri);
      }
    }
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const query = new URLSearchParams(uri.query);
    const folder = query.get('folder');
    if (query.get('empty') === '1' || !folder) return '';
    let bytes: Uint8Array;
    try {
      if (query.get('base') === '1') {
        const base = await this.engine.readBase(folder, uri.path.slice(1));
        if (!base) return '(the common base of this file was not kept: it is larger than 1 MiB, or the box changed it after you did)';
        bytes = base;
      } else {
        bytes = await this.engine.readProposal(folder, uri.path.slice(1));
      }
    } catch {
      return '(no longer pending: accepted, rejected or changed again in the box)';
    }
    if (bytes.includes(0)) {
      return `(binary file, ${bytes.length} bytes: not shown)`;
    }
    return Buffer.from(bytes).toString('utf8');
  }
}
