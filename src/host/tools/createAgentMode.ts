import * as vscode from 'vscode';
import { pickWorkspaceFolder } from '../workspaceFolders';
import { agentModeFile } from './agentModeFile';

/** Arguments of `agentSandbox.createAgentMode` when called programmatically. */
export interface CreateAgentModeArgs {
  /** Absolute path of the workspace folder; the active one when omitted. */
  folder?: string;
  /** What to do with an existing file: `undefined` asks (modal), `false` keeps it, `true` replaces it. */
  overwrite?: boolean;
}

export interface CreateAgentModeResult {
  uri: vscode.Uri;
  /** False when an existing file was kept. */
  written: boolean;
}

/**
 * `Agent Sandbox: Create Sandboxed Agent Mode`: writes a custom agent (VS Code ≥ 1.106) or chat mode file whose
 * tools are only the sandbox tools, then opens it. An existing file is replaced only after a modal says so.
 */
export async function createAgentMode(extensionId: string, args: CreateAgentModeArgs = {}): Promise<CreateAgentModeResult | undefined> {
  const folder = args.folder ? vscode.Uri.file(args.folder) : (await pickWorkspaceFolder())?.uri;
  if (!folder) {
    void vscode.window.showWarningMessage(vscode.l10n.t('Agent Sandbox: open a folder first; the agent mode file belongs to a workspace.'));
    return undefined;
  }
  const file = agentModeFile(vscode.version, extensionId);
  const uri = vscode.Uri.joinPath(folder, ...file.path.split('/'));
  let write = true;
  if (await exists(uri)) {
    if (args.overwrite === undefined) {
      const choice = await vscode.window.showWarningMessage(
        vscode.l10n.t('{0} already exists. Replace it with the sandbox-only version?', file.path),
        { modal: true, detail: vscode.l10n.t('Its tools list will hold only the Agent Sandbox tools; your edits to the file are lost.') },
        vscode.l10n.t('Replace'),
      );
      write = choice === vscode.l10n.t('Replace');
    } else {
      write = args.overwrite;
    }
  }
  if (write) {
    await vscode.workspace.fs.createDirectory(vscode.Uri.joinPath(uri, '..'));
    await vscode.workspace.fs.writeFile(uri, Buffer.from(file.content, 'utf8'));
  }
  await vscode.window.showTextDocument(uri, { preview: false });
  if (write) {
    void vscode.window.showInformationMessage(
      vscode.l10n.t(
        'Agent Sandbox: pick "Agent Sandbox" in the Chat view\'s agent picker; its agent can only act in the box, and you review every change.',
      ),
    );
  }
  return { uri, written: write };
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false;
  }
}
