import * as vscode from 'vscode';

/** The folder a sandbox command applies to: the only one, the active editor's, or the user's pick. */
export async function pickWorkspaceFolder(): Promise<vscode.WorkspaceFolder | undefined> {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
  if (folders.length <= 1) return folders[0];
  const active = vscode.window.activeTextEditor?.document.uri;
  const owner = active ? vscode.workspace.getWorkspaceFolder(active) : undefined;
  if (owner && owner.uri.scheme === 'file') return owner;
  return vscode.window.showWorkspaceFolderPick({ placeHolder: vscode.l10n.t("Which folder's sandbox?") });
}
