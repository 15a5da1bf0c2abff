import * as vscode from 'vscode';
import { runCommandInSandbox, type RunCommandArgs } from './host/commands/runCommand';
import { checkEngine, followImageTag, pullImage, resetSandbox } from './host/commands/engineCommands';
import { clearCaches, type ClearCachesArgs } from './host/commands/cacheCommands';
import { EngineClient } from './host/engineClient';
import { RunHistory } from './host/history/historyFeature';
import { ProposalDocuments } from './host/review/proposalDocuments';
import { ReviewController } from './host/review/reviewController';
import { SandboxStatus } from './host/review/sandboxStatus';
import { RunEvents } from './host/runEvents';
import { askImageBuild, askInsecureEngine, askWorkspaceImage } from './host/consentPrompts';
import { ImageBuildConsent } from './host/imageBuildConsent';
import { InsecureEngineConsent } from './host/engineConsent';
import { ImageConsent } from './host/imageConsent';
import { SandboxSettings } from './host/settings';
import { ModelKeyStore } from './host/secrets/modelKeyStore';
import { setApiKey, type SetApiKeyArgs } from './host/secrets/setApiKeyCommand';
import { SandboxTerminals } from './host/terminal/sandboxTerminals';
import { createAgentMode, type CreateAgentModeArgs } from './host/tools/createAgentMode';
import { SandboxTools } from './host/tools/sandboxTools';
import { McpFeature } from './host/mcp/mcpFeature';
import { ConnectAgentCommand } from './host/mcp/connectAgent';
import { adoptCliStorage } from './host/mcp/adoptCliStorage';

let engine: EngineClient | undefined;

/**
 * Builds the objects, registers them, pushes their disposables. Contacts no engine; starts the engine server
 * only when this workspace has a persisted review to bring back.
 */
export function activate(context: vscode.ExtensionContext) {
  const log = vscode.window.createOutputChannel('Agent Sandbox', { log: true });
  const output = vscode.window.createOutputChannel('Agent Sandbox: Run Output');
  const logLine = (line: string) => log.info(line);
  // What `agent-sandbox mcp` / the command line left for an open folder VS Code had never opened joins this workspace.
  adoptCliStorage(context.storageUri, log);
  const imageConsent = new ImageConsent({
    state: context.workspaceState,
    prompt: askWorkspaceImage,
    log: logLine,
    isTrusted: () => vscode.workspace.isTrusted,
  });
  const settings = new SandboxSettings({ imageConsent });
  const modelKeys = new ModelKeyStore(context.secrets);
  engine = new EngineClient({
    serverModule: context.asAbsolutePath('dist/server.js'),
    languageClientModule: context.asAbsolutePath('dist/languageClient.js'),
    storagePath: context.storageUri?.fsPath,
    log,
    settings,
    insecureEngines: new InsecureEngineConsent({ state: context.globalState, prompt: askInsecureEngine, log: logLine }),
    modelKeys,
    imageBuilds: new ImageBuildConsent({
      state: context.workspaceState,
      prompt: askImageBuild,
      log: logLine,
      isTrusted: () => vscode.workspace.isTrusted,
    }),
  });
  const proposals = new ProposalDocuments(engine);
  const runEvents = new RunEvents();
  context.subscriptions.push(log, output, settings, modelKeys, engine, proposals, runEvents);

  const deps = { engine, log, output, runEvents };
  const review = new ReviewController({ engine, log, runEvents, proposals, state: context.workspaceState, storageUri: context.storageUri });
  context.subscriptions.push(review, new SandboxStatus(engine, review));
  const runDeps = { ...deps, review };
  // A review persisted by an earlier window comes back (reads storage; starts no box).
  void review.restore().catch((error) => log.warn(`[review] could not restore pending changes: ${error}`));
  context.subscriptions.push(new RunHistory({ context, runEvents, engine, settings, log }));
  context.subscriptions.push(
    new SandboxTools({ ...deps, settings }),
    vscode.commands.registerCommand('agentSandbox.createAgentMode', (args?: CreateAgentModeArgs) => createAgentMode(context.extension.id, args)),
  );
  context.subscriptions.push(new SandboxTerminals({ ...deps, settings, modelKeys }));
  // External agents (MCP): this window's engine server serves the open folders' tools; runs come back as events.
  const mcp = new McpFeature({ engine, runEvents, log, cliPath: context.asAbsolutePath('dist/cli.js') });
  context.subscriptions.push(mcp, new ConnectAgentCommand(context.asAbsolutePath('dist/cli.js'), (folder) => mcp.serve(folder)));
  void mcp.serveOpenFolders();
  context.subscriptions.push(
    vscode.commands.registerCommand('agentSandbox.runCommand', (args?: string | RunCommandArgs) =>
      runCommandInSandbox({ ...runDeps, settings }, args),
    ),
    vscode.commands.registerCommand('agentSandbox.checkEngine', () => checkEngine(deps)),
    vscode.commands.registerCommand('agentSandbox.followImageTag', () => followImageTag(deps)),
    vscode.commands.registerCommand('agentSandbox.pullImage', (image?: string) => pullImage({ ...deps, settings }, image)),
    vscode.commands.registerCommand('agentSandbox.reset', (folder?: string | { all: true }) => resetSandbox(deps, folder)),
    vscode.commands.registerCommand('agentSandbox.showLog', () => log.show()),
    vscode.commands.registerCommand('agentSandbox.clearCaches', (args?: ClearCachesArgs) => clearCaches(deps, args)),
    vscode.commands.registerCommand('agentSandbox.setApiKey', (args?: SetApiKeyArgs) => setApiKey({ keys: modelKeys, log }, args)),
  );
}

/** Stops the engine server, which removes every box it created. */
export async function deactivate(): Promise<void> {
  await engine?.stop();
  engine = undefined;
}
