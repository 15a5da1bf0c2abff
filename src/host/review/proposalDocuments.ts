import * as vscode from 'vscode';
import { Disposable } from '../../core/lifecycle';
import type { EngineClient } from '../engineClient';

/** URI scheme of read-only documents that show what the box proposes for a file. */
export const PROPOSAL_SCHEME = 'agent-sandbox-proposal';

/**
 * Uri of the box's version of `relPath` in `folder`; `empty` gives an empty document (left side of an add),
 * `base` the version workspace and box both started from. Its path is the workspace file's path, so VS Code
 * sees both sides of a diff as one file (the multi-file diff editor marks differing paths as a rename).
 */
export function proposalUri(folder: string, relPath: string, options: { empty?: boolean; base?: boolean; version?: number } = {}): vscode.Uri {
  const query = new URLSearchParams({
    folder,
    ...(options.empty ? { empty: '1' } : {}),
    ...(options.base ? { base: '1' } : {}),
    v: String(options.version ?? 0),
  });
  return vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: vscode.Uri.joinPath(vscode.Uri.file(folder), ...relPath.split('/')).path, query: query.toString() });
}

/** Folder and workspace-relative path of a proposal uri; undefined for other uris or a path outside the folder. */
export function proposalLocation(uri: vscode.Uri): { folder: string; path: string } | undefined {
  if (uri.scheme !== PROPOSAL_SCHEME) return undefined;
  const folder = new URLSearchParams(uri.query).get('folder');
  if (!folder) return undefined;
  const root = vscode.Uri.file(folder).path;
  const prefix = root.endsWith('/') ? root : `${root}/`;
  return uri.path.startsWith(prefix) && uri.path.length > prefix.length ? { folder, path: uri.path.slice(prefix.length) } : undefined;
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
    const located = proposalLocation(uri);
    if (query.get('empty') === '1' || !located) return '';
    const { folder, path: relPath } = located;
    let bytes: Uint8Array;
    try {
      if (query.get('base') === '1') {
        const base = await this.engine.readBase(folder, relPath);
        if (!base) return '(the common base of this file was not kept: it is larger than 1 MiB, or the box changed it after you did)';
        bytes = base;
      } else {
        bytes = await this.engine.readProposal(folder, relPath);
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
