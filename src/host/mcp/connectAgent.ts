import * as os from 'node:os';
import * as vscode from 'vscode';
import { Disposable } from '../../core/lifecycle';
import { pickWorkspaceFolder } from '../workspaceFolders';
import { AGENT_CLIENTS, ConfigFileError, agentConfig, bridgeCommand, type AgentClient } from './agentConfigs';

/** Arguments of `agentSandbox.connectAgent` when called programmatically (tests, walkthroughs). */
export interface ConnectAgentArgs {
  client?: AgentClient;
  /** Absolute path of the workspace folder; the active one when omitted. */
  folder?: string;
  /** Write without the confirmation (the preview is still opened). */
  confirm?: boolean;
}

/** Read-only previews of the configuration before it is written (virtual: closing one never asks to save). */
const PREVIEW_SCHEME = 'agent-sandbox-config';

/**
 * `Agent Sandbox: Connect an External Agent…` (`agentSandbox.connectAgent`): picks the agent, shows the
 * configuration it needs (merged into its existing file) and which of its own tools to turn off, and writes it
 * only when the user says so.
 */
export class ConnectAgentCommand extends Disposable {
  private readonly previews = new Map<string, string>();

  constructor(cliPath: string, serve: (folder: string) => Promise<string>) {
    super();
    this._register(
      vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, {
        provideTextDocumentContent: (uri) => this.previews.get(uri.toString()) ?? '',
      }),
    );
    this._register(
      vscode.commands.registerCommand('agentSandbox.connectAgent', (args?: ConnectAgentArgs) =>
        connectAgent(cliPath, serve, args ?? {}, (file, content) => {
          const uri = vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: file, query: String(Date.now()) });
          this.previews.set(uri.toString(), content);
          return uri;
        }),
      ),
    );
  }
}

async function connectAgent(
  cliPath: string,
  serve: (folder: string) => Promise<string>,
  args: ConnectAgentArgs,
  previewUri: (file: string, content: string) => vscode.Uri,
): Promise<vscode.Uri | undefined> {
  const folder = args.folder ?? (await pickWorkspaceFolder())?.uri.fsPath;
  if (!folder) {
    void vscode.window.showWarningMessage(vscode.l10n.t("Agent Sandbox: open a folder first; an external agent works in one folder's box."));
    return undefined;
  }
  const client =
    args.client ??
    (
      await vscode.window.showQuickPick(
        AGENT_CLIENTS.map((c) => ({ label: c.label, description: c.description, client: c.client })),
        {
          title: 'Connect an External Agent to the Sandbox',
          placeHolder: vscode.l10n.t('Which agent should act only in the box?'),
        },
      )
    )?.client;
  if (!client) return undefined;
  const bridge = bridgeCommand(process.execPath, cliPath, folder);
  const draft = agentConfig(client, bridge, folder, os.homedir(), undefined);
  const uri = vscode.Uri.file(draft.file);
  const existing = await vscode.workspace.fs.readFile(uri).then(
    (bytes) => Buffer.from(bytes).toString('utf8'),
    () => undefined,
  );
  let config;
  try {
    config = agentConfig(client, bridge, folder, os.homedir(), existing);
  } catch (error) {
    if (!(error instanceof ConfigFileError)) throw error;
    void vscode.window.showErrorMessage(vscode.l10n.t('Agent Sandbox: {0}', error.message));
    return undefined;
  }
  await vscode.window.showTextDocument(previewUri(config.file, config.content), { preview: true, viewColumn: vscode.ViewColumn.Beside });
  const detail = [
    `${existing === undefined ? 'Creates' : 'Updates'} ${config.file} with the content shown beside (other entries are kept).`,
    '',
    config.ownTools,
    ...(config.alternative ? ['', `Or add it yourself: ${config.alternative}`] : []),
  ].join('\n');
  const write =
    args.confirm ??
    (await vscode.window.showInformationMessage(
      vscode.l10n.t('Connect {0} to the sandbox?', config.label),
      { modal: true, detail },
      vscode.l10n.t('Write Configuration'),
    )) === vscode.l10n.t('Write Configuration');
  if (!write) return undefined;
  await vscode.workspace.fs.createDirectory(vscode.Uri.joinPath(uri, '..'));
  await vscode.workspace.fs.writeFile(uri, Buffer.from(config.content, 'utf8'));
  // Served now, so the agent reaches this window's box (and review) from its first call.
  await serve(folder).catch(() => undefined);
  void vscode.window.showInformationMessage(
    vscode.l10n.t('Agent Sandbox: {0} now reaches the box of {1}. {2}', config.label, folder, config.ownTools),
  );
  return uri;
}
