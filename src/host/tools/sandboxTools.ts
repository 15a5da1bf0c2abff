import * as path from 'node:path';
import * as vscode from 'vscode';
import { Disposable } from '../../core/lifecycle';
import { sandboxToolDefinitions, type SandboxToolName } from '../../core/tools/toolDefinitions';
import { ToolCallError, newToolRunId, runTool, toolInvocationMessage, type ToolEngine } from '../../core/tools/toolRunner';
import type { EngineClient } from '../engineClient';
import type { RunEvents } from '../runEvents';
import type { SandboxSettings } from '../settings';
import { networkPhrase } from '../../core/tools/toolText';

export interface SandboxToolsDeps {
  engine: EngineClient;
  runEvents: RunEvents;
  log: vscode.LogOutputChannel;
  /** The "Agent Sandbox: Run Output" channel; runCommand output is appended to it as it streams. */
  output?: vscode.OutputChannel;
  /** The user's network settings, for the chat's line of what a tool call can reach; `no network` without it. */
  settings?: Pick<SandboxSettings, 'egress'>;
}

/**
 * The language model tools (`agentSandbox_*`, defined once in `src/core/tools/toolDefinitions.ts` and run by
 * `src/core/tools/toolRunner.ts`, as the MCP server runs them): any agent in VS Code that uses tools acts in the
 * folder's box through them instead of on the real workspace. They need no confirmation — the box is the safety,
 * and every change waits for review — and each call is a run in `RunEvents` (source `tool`, agent = the tool's name).
 */
export class SandboxTools extends Disposable {
  private readonly toolEngine: ToolEngine;

  constructor(private readonly deps: SandboxToolsDeps) {
    super();
    this.toolEngine = engineForTools(deps);
    for (const { name } of sandboxToolDefinitions) this.register(name);
  }

  private register(name: SandboxToolName): void {
    this._register(
      vscode.lm.registerTool<unknown>(name, {
        prepareInvocation: (options) => {
          const folder = toolFolder();
          const offline = (options.input as { network?: unknown } | undefined)?.network === 'none';
          const network = offline ? 'offline' : networkPhrase(this.deps.settings?.egress() ?? {});
          const where = folder ? ` in the sandbox box of ${path.basename(folder)}, ${network}` : '';
          // No confirmationMessages: what runs in the box needs none, and every change waits for review.
          return { invocationMessage: `${toolInvocationMessage(name, options.input)}${where}` };
        },
        invoke: (options, token) => this.invoke(name, options.input ?? {}, token),
      }),
    );
  }

  private async invoke(name: SandboxToolName, input: unknown, token: vscode.CancellationToken): Promise<vscode.LanguageModelToolResult> {
    const folder = toolFolder();
    if (!folder) {
      throw new Error('No workspace folder is open, so there is no sandbox box. Ask the developer to open a folder.');
    }
    const controller = new AbortController();
    const subscription = token.onCancellationRequested(() => controller.abort());
    const { runEvents, log } = this.deps;
    try {
      const outcome = await runTool({
        name,
        input,
        folder,
        runId: newToolRunId('tool'),
        signal: controller.signal,
        engine: this.toolEngine,
        onStarted: (start) => runEvents.fireStarted({ ...start, source: 'tool', agent: name }),
        onEnded: (end) => runEvents.fireEnded(end),
        log: (line) => log.info(line),
      });
      return new vscode.LanguageModelToolResult([new vscode.LanguageModelTextPart(outcome.text)]);
    } catch (error) {
      if (ToolCallError.is(error) && error.kind === 'cancelled') throw new vscode.CancellationError();
      throw error instanceof Error ? new Error(error.message) : error;
    } finally {
      subscription.dispose();
    }
  }
}

/** The engine client as the shared tool runner needs it; runCommand output streams to the Run Output channel. */
function engineForTools({ engine, output }: SandboxToolsDeps): ToolEngine {
  return {
    ensureBox: (folder, signal) => withToken(signal, (token) => engine.ensureBox({ folder }, token)),
    collect: (folder, signal) => withToken(signal, (token) => engine.collect(folder, token)),
    collectAfterRun: (folder, result) => engine.collectAfterRun(folder, result),
    // `network: "none"` is checked by the runner and enforced by the engine (the gateway pauses for the run).
    exec: async ({ folder, command, cwd, timeoutSeconds, runId, network }, signal) => {
      output?.appendLine(`$ ${command}    [agentSandbox_runCommand]`);
      const outputSub = engine.onOutput((chunk) => {
        if (chunk.runId === runId) output?.append(chunk.text);
      });
      try {
        return await withToken(signal, (token) =>
          engine.exec({ folder, command, cwd, timeoutSeconds, runId, ...(network ? { network } : {}) }, token),
        );
      } finally {
        outputSub.dispose();
        output?.appendLine('');
      }
    },
    fileOp: (params) => engine.fileOp(params),
  };
}

/** Runs `work` with a cancellation token that follows `signal`. */
async function withToken<T>(signal: AbortSignal | undefined, work: (token: vscode.CancellationToken | undefined) => Promise<T>): Promise<T> {
  if (!signal) return work(undefined);
  const source = new vscode.CancellationTokenSource();
  const cancel = () => source.cancel();
  if (signal.aborted) source.cancel();
  signal.addEventListener('abort', cancel);
  try {
    return await work(source.token);
  } finally {
    signal.removeEventListener('abort', cancel);
    source.dispose();
  }
}

/**
 * The folder whose box the tools act in: the active editor's folder when several are open, else the first.
 * Tools never prompt; a multi-root user steers them by the editor they have open.
 */
function toolFolder(): string | undefined {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
  if (folders.length <= 1) return folders[0]?.uri.fsPath;
  const active = vscode.window.activeTextEditor?.document.uri;
  const owner = active ? vscode.workspace.getWorkspaceFolder(active) : undefined;
  return (owner?.uri.scheme === 'file' ? owner : folders[0]).uri.fsPath;
}
