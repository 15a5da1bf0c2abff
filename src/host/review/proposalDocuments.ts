import * as vscode from 'vscode';
import { Disposable } from '../../core/lifecycle';
import type { EngineClient } from '../engineClient';

/** URI scheme of read-only documents that show what the box proposes for a file. */
export const PROPOSAL_SCHEME = 'agent-sandbox-proposal';

/**
 * A uri of `scheme` for `relPath` of `folder` whose path is the workspace file's, so VS Code sees it and the
 * file as one resource (the multi-file diff editor marks differing paths as a rename; the language follows
 * the name); the folder and `params` go in the query.
 */
export function folderFileUri(scheme: string, folder: string, relPath: string, params: Record<string, string>): vscode.Uri {
  const query = new URLSearchParams({ folder, ...params });
  return vscode.Uri.from({ scheme, path: vscode.Uri.joinPath(vscode.Uri.file(folder), ...relPath.split('/')).path, query: query.toString() });
}

/** Folder and workspace-relative path of a uri made by `folderFileUri`; undefined when its path is outside the folder. */
export function folderFileOf(uri: vscode.Uri): { folder: string; path: string } | undefined {
  const folder = new URLSearchParams(uri.query).get('folder');
  if (!folder) return undefined;
  const root = vscode.Uri.file(folder).path;
  const prefix = root.endsWith('/') ? root : `${root}/`;
  return uri.path.startsWith(prefix) && uri.path.length > prefix.length ? { folder, path: uri.path.slice(prefix.length) } : undefined;
}

/**
 * Uri of the box's version of `relPath` in `folder`; `empty` gives an empty document (left side of an add),
 * `base` the version workspace and box both started from.
 */
export function proposalUri(folder: string, relPath: string, options: { empty?: boolean; base?: boolean; version?: number } = {}): vscode.Uri {
  return folderFileUri(PROPOSAL_SCHEME, folder, relPath, {
    ...(options.empty ? { empty: '1' } : {}),
    ...(options.base ? { base: '1' } : {}),
    v: String(options.version ?? 0),
  });
}

/** Folder and workspace-relative path of a proposal uri; undefined for other uris. */
export function proposalLocation(uri: vscode.Uri): { folder: string; path: string } | undefined {
  return uri.scheme === PROPOSAL_SCHEME ? folderFileOf(uri) : undefined;
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
