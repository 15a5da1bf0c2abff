import * as path from 'node:path';
import * as vscode from 'vscode';
import type { McpRunNotification } from '../../shared/protocol';
import { Disposable } from '../../core/lifecycle';
import type { EngineClient } from '../engineClient';
import type { RunEvents } from '../runEvents';

/** The id under `contributes.mcpServerDefinitionProviders` in package.json. */
export const MCP_PROVIDER_ID = 'agentSandbox.mcp';

export interface McpFeatureDeps {
  engine: EngineClient;
  runEvents: RunEvents;
  log: vscode.LogOutputChannel;
  /** Absolute path of `dist/cli.js` in the installed extension. */
  cliPath: string;
}

/**
 * The sandbox tools for MCP clients. While a folder is open, this window's engine server serves them on the
 * folder's private socket (`agent-sandbox mcp` from any agent reaches this window's box and review); tool calls
 * come back as runs (source `mcp`, agent = the client's name) for the history and the review. VS Code's own
 * MCP clients get the same server through the definition provider.
 */
export class McpFeature extends Disposable {
  private readonly served = new Set<string>();

  constructor(private readonly deps: McpFeatureDeps) {
    super();
    this._register(deps.engine.onMcpRun((run) => this.onRun(run)));
    const changed = this._register(new vscode.EventEmitter<void>());
    this._register(
      vscode.lm.registerMcpServerDefinitionProvider(MCP_PROVIDER_ID, {
        onDidChangeMcpServerDefinitions: changed.event,
        provideMcpServerDefinitions: () => fileFolders().map((folder) => this.definition(folder)),
        resolveMcpServerDefinition: async (server) => {
          // Served by this window's engine server before VS Code starts the bridge, so it never starts a server of its own.
          const args = server instanceof vscode.McpStdioServerDefinition ? server.args : [];
          const folder = args.includes('--folder') ? args[args.indexOf('--folder') + 1] : undefined;
          if (folder) await this.serve(folder).catch((error) => deps.log.warn(`[mcp] could not serve ${folder}: ${error}`));
          return server;
        },
      }),
    );
    this._register(
      vscode.workspace.onDidChangeWorkspaceFolders(() => {
        changed.fire();
        void this.serveOpenFolders();
      }),
    );
    // A restarted server has no sockets: serve again what was served.
    this._register(
      deps.engine.onDidRestart(() => {
        const folders = [...this.served];
        this.served.clear();
        for (const folder of folders) void this.serve(folder).catch((error) => deps.log.warn(`[mcp] could not serve ${folder} again: ${error}`));
      }),
    );
  }

  /** Serves every open folder when `agentSandbox.mcp.serve` is on (the default); starts the engine server. */
  async serveOpenFolders(): Promise<void> {
    if (!vscode.workspace.getConfiguration('agentSandbox').get<boolean>('mcp.serve', true)) return;
    for (const folder of fileFolders()) {
      await this.serve(folder).catch((error) =>
        this.deps.log.warn(`[mcp] could not serve ${folder}: ${error instanceof Error ? error.message : error}`),
      );
    }
  }

  /** Serves one folder; resolves with its socket path. */
  async serve(folder: string): Promise<string> {
    const { socketPath } = await this.deps.engine.mcpListen(folder);
    if (!this.served.has(folder)) this.deps.log.info(`[mcp] external agents reach ${folder} with "agent-sandbox mcp" (socket ${socketPath})`);
    this.served.add(folder);
    return socketPath;
  }

  private definition(folder: string): vscode.McpStdioServerDefinition {
    const label = fileFolders().length > 1 ? `Agent Sandbox (${path.basename(folder)})` : 'Agent Sandbox';
    // VS Code's own runtime runs the bridge as plain Node: no Node install needed.
    return new vscode.McpStdioServerDefinition(
      label,
      process.execPath,
      [this.deps.cliPath, 'mcp', '--folder', folder],
      { ELECTRON_RUN_AS_NODE: '1' },
      '0.1.0',
    );
  }

  private onRun(run: McpRunNotification.Params): void {
    const { runEvents } = this.deps;
    if (run.event === 'started') {
      runEvents.fireStarted({
        runId: run.runId,
        folder: run.folder,
        source: 'mcp',
        agent: run.agent,
        command: run.command ?? run.tool ?? 'MCP tool call',
        cwd: run.cwd,
        startedAt: run.at,
      });
    } else {
      runEvents.fireEnded({ runId: run.runId, folder: run.folder, endedAt: run.at, result: run.result, error: run.error, changeSet: run.changeSet });
    }
  }
}

function fileFolders(): string[] {
  return (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
}
