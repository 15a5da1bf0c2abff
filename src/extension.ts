import * as vscode from 'vscode';
import { runCommandInSandbox, type RunCommandArgs } from './host/commands/runCommand';
import { checkEngine, pullImage, resetSandbox } from './host/commands/engineCommands';
import { EngineClient } from './host/engineClient';
import { ProposalDocuments } from './host/review/proposalDocuments';
import { RunEvents } from './host/runEvents';
import { SandboxSettings } from './host/settings';

let engine: EngineClient | undefined;

/** Builds the objects, registers them, pushes their disposables. Starts no process and contacts no engine. */
export function activate(context: vscode.ExtensionContext) {
  const log = vscode.window.createOutputChannel('Agent Sandbox', { log: true });
  const output = vscode.window.createOutputChannel('Agent Sandbox: Run Output');
  const settings = new SandboxSettings();
  engine = new EngineClient({
    serverModule: context.asAbsolutePath('dist/server.js'),
    storagePath: context.storageUri?.fsPath,
    log,
    settings,
  });
  const proposals = new ProposalDocuments(engine);
  const runEvents = new RunEvents();
  context.subscriptions.push(log, output, settings, engine, proposals, runEvents);

  const deps = { engine, log, output, runEvents };
  context.subscriptions.push(
    vscode.commands.registerCommand('agentSandbox.runCommand', (args?: string | RunCommandArgs) => runCommandInSandbox(deps, args)),
    vscode.commands.registerCommand('agentSandbox.checkEngine', () => checkEngine(deps)),
    vscode.commands.registerCommand('agentSandbox.pullImage', (image?: string) => pullImage(deps, image)),
    vscode.commands.registerCommand('agentSandbox.reset', (folder?: string | { all: true }) => resetSandbox(deps, folder)),
    vscode.commands.registerCommand('agentSandbox.showLog', () => log.show()),
  );
}

/** Stops the engine server, which removes every box it created. */
export async function deactivate(): Promise<void> {
  await engine?.stop();
  engine = undefined;
}
