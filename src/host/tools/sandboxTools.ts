import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeSet, ErrorData, ExecResult } from '../../shared/protocol';
import { Disposable } from '../../core/lifecycle';
import type { EngineClient } from '../engineClient';
import { errorReason, errorText } from '../errorMessages';
import type { RunEvents } from '../runEvents';
import type { SandboxSettings } from '../settings';
import type { SandboxToolName } from './toolNames';
import {
  REVIEW_NOTE,
  changesByRun,
  countByKind,
  formatPatched,
  formatRunResult,
  looksBinary,
  networkPhrase,
  sliceLines,
  summarizeChangeSet,
} from './toolText';

export interface SandboxToolsDeps {
  engine: EngineClient;
  runEvents: RunEvents;
  log: vscode.LogOutputChannel;
  /** The "Agent Sandbox: Run Output" channel; runCommand output is appended to it as it streams. */
  output?: vscode.OutputChannel;
  /** The user's network settings, for the chat's line of what a tool call can reach; `no network` without it. */
  settings?: Pick<SandboxSettings, 'egress'>;
}

interface RunCommandInput {
  command: string;
  cwd?: string;
  timeoutSeconds?: number;
  /** `none`: run offline even in a box whose network is `allowlist`. */
  network?: 'none';
}
interface ReadFileInput {
  path: string;
  startLine?: number;
  endLine?: number;
}
interface PathInput {
  path: string;
}
interface WriteFileInput {
  path: string;
  content: string;
}
interface EditFileInput {
  path: string;
  oldString: string;
  newString: string;
  replaceAll?: boolean;
}
interface ApplyPatchInput {
  patch: string;
}

/** What one tool does, for the registration below. */
interface ToolSpec<T> {
  /** Checks the input beyond the schema VS Code already applied; throws a message for the model. */
  validate(input: T): void;
  /** The short line the chat shows while the tool runs, without the box's name. */
  message(input: T): string;
  /** The run as the history records it, e.g. `write src/a.ts`. */
  describe(input: T): string;
  /** True when the tool can change the box: the run then ends with a collect, for the review and the history. */
  mutates: boolean;
  run(input: T, context: ToolRunContext): Promise<ToolOutcome>;
}

interface ToolRunContext {
  folder: string;
  runId: string;
  token: vscode.CancellationToken;
}

interface ToolOutcome {
  text: string;
  result?: ExecResult;
  changeSet?: ChangeSet;
}

/**
 * The language model tools (`agentSandbox_*`): any agent in VS Code that uses tools acts in the folder's box
 * through them instead of on the real workspace. They need no confirmation — the box is the safety, and every
 * change waits for review — and each call is a run in `RunEvents` (source `tool`, agent = the tool's name).
 */
export class SandboxTools extends Disposable {
  constructor(private readonly deps: SandboxToolsDeps) {
    super();
    this.register<RunCommandInput>('agentSandbox_runCommand', {
      validate: (input) => {
        requireString(input, 'command');
        optionalString(input, 'cwd');
        if (input.timeoutSeconds !== undefined && !(typeof input.timeoutSeconds === 'number' && input.timeoutSeconds >= 0)) {
          throw new Error('timeoutSeconds must be a number of seconds, 0 or more (0 = no timeout).');
        }
        if (input.network !== undefined && input.network !== 'none') {
          throw new Error('network must be "none" (run offline) or left out (the box\'s own network setting).');
        }
      },
      message: (input) => `Running \`${oneLine(input.command)}\`${input.cwd ? ` in ${input.cwd}` : ''}`,
      describe: (input) => input.command,
      mutates: true,
      run: (input, context) => this.runCommand(input, context),
    });
    this.register<ReadFileInput>('agentSandbox_readFile', {
      validate: (input) => {
        requireString(input, 'path');
        for (const key of ['startLine', 'endLine'] as const) {
          const value = input[key];
          if (value !== undefined && !(Number.isInteger(value) && value >= 1)) throw new Error(`${key} must be a line number, 1 or more.`);
        }
      },
      message: (input) => `Reading ${input.path}${input.startLine || input.endLine ? `, lines ${input.startLine ?? 1}-${input.endLine ?? 'end'}` : ''}`,
      describe: (input) => `read ${input.path}`,
      mutates: false,
      run: async (input, { folder }) => {
        const { content = '' } = await this.deps.engine.fileOp({ folder, op: 'read', path: input.path });
        if (looksBinary(content)) {
          return { text: `${input.path} is a binary file (not UTF-8 text). Inspect it with agentSandbox_runCommand, e.g. \`od -c ${shellQuote(input.path)} | head\`.` };
        }
        return { text: sliceLines(input.path, content, input.startLine, input.endLine) };
      },
    });
    this.register<PathInput>('agentSandbox_listDirectory', {
      validate: (input) => requireString(input, 'path', { allowEmpty: true }),
      message: (input) => `Listing ${input.path || '.'}`,
      describe: (input) => `list ${input.path || '.'}`,
      mutates: false,
      run: async (input, { folder }) => {
        const { entries = [] } = await this.deps.engine.fileOp({ folder, op: 'list', path: input.path || '.' });
        const header = `${input.path || '.'} holds ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} (directories end with /):`;
        return { text: entries.length === 0 ? `${input.path || '.'} is empty.` : `${header}\n${entries.join('\n')}` };
      },
    });
    this.register<WriteFileInput>('agentSandbox_writeFile', {
      validate: (input) => {
        requireString(input, 'path');
        requireString(input, 'content', { allowEmpty: true });
      },
      message: (input) => `Writing ${input.path}`,
      describe: (input) => `write ${input.path}`,
      mutates: true,
      run: async (input, { folder }) => {
        await this.deps.engine.fileOp({ folder, op: 'write', path: input.path, content: input.content });
        return { text: `Wrote ${input.path} (${Buffer.byteLength(input.content, 'utf8')} bytes) in the sandbox box. ${REVIEW_NOTE}` };
      },
    });
    this.register<EditFileInput>('agentSandbox_editFile', {
      validate: (input) => {
        requireString(input, 'path');
        requireString(input, 'oldString');
        requireString(input, 'newString', { allowEmpty: true });
        if (input.replaceAll !== undefined && typeof input.replaceAll !== 'boolean') throw new Error('replaceAll must be true or false.');
      },
      message: (input) => `Editing ${input.path}`,
      describe: (input) => `edit ${input.path}`,
      mutates: true,
      run: async (input, { folder }) => {
        const { replacements = 0 } = await this.deps.engine.fileOp({
          folder,
          op: 'edit',
          path: input.path,
          oldString: input.oldString,
          newString: input.newString,
          replaceAll: input.replaceAll,
        });
        return { text: `Edited ${input.path}: ${replacements} replacement(s) in the sandbox box. ${REVIEW_NOTE}` };
      },
    });
    this.register<ApplyPatchInput>('agentSandbox_applyPatch', {
      validate: (input) => requireString(input, 'patch'),
      message: (input) => `Applying a patch to ${patchTargets(input.patch)}`,
      describe: (input) => `patch ${patchTargets(input.patch)}`,
      mutates: true,
      run: async (input, { folder }) => {
        const { patched = [] } = await this.deps.engine.fileOp({ folder, op: 'patch', patch: input.patch });
        return { text: formatPatched(patched) };
      },
    });
    this.register<PathInput>('agentSandbox_deleteFile', {
      validate: (input) => requireString(input, 'path'),
      message: (input) => `Deleting ${input.path}`,
      describe: (input) => `delete ${input.path}`,
      mutates: true,
      run: async (input, { folder }) => {
        await this.deps.engine.fileOp({ folder, op: 'delete', path: input.path });
        return { text: `Deleted ${input.path} in the sandbox box. ${REVIEW_NOTE}` };
      },
    });
    this.register<Record<string, never>>('agentSandbox_pendingChanges', {
      validate: () => undefined,
      message: () => 'Listing pending changes',
      describe: () => 'pending changes',
      mutates: false,
      run: async (_input, { folder, token }) => {
        await this.deps.engine.ensureBox({ folder }, token);
        const changeSet = await this.deps.engine.collect(folder, token);
        return { text: summarizeChangeSet(changeSet), changeSet };
      },
    });
  }

  private register<T>(name: SandboxToolName, spec: ToolSpec<T>): void {
    this._register(
      vscode.lm.registerTool<T>(name, {
        prepareInvocation: (options) => {
          const folder = toolFolder();
          const offline = (options.input as { network?: unknown } | undefined)?.network === 'none';
          const network = offline ? 'offline' : networkPhrase(this.deps.settings?.egress() ?? {});
          const where = folder ? ` in the sandbox box of ${path.basename(folder)}, ${network}` : '';
          // No confirmationMessages: what runs in the box needs none, and every change waits for review.
          return { invocationMessage: `${spec.message(options.input ?? ({} as T))}${where}` };
        },
        invoke: (options, token) => this.invoke(name, spec, options.input ?? ({} as T), token),
      }),
    );
  }

  private async invoke<T>(name: SandboxToolName, spec: ToolSpec<T>, input: T, token: vscode.CancellationToken): Promise<vscode.LanguageModelToolResult> {
    spec.validate(input);
    const folder = toolFolder();
    if (!folder) {
      throw new Error('No workspace folder is open, so there is no sandbox box. Ask the developer to open a folder.');
    }
    const runId = `tool-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const command = spec.describe(input);
    const cwd = (input as { cwd?: string }).cwd;
    this.deps.runEvents.fireStarted({ runId, folder, source: 'tool', agent: name, command, cwd, startedAt: Date.now() });
    let outcome: ToolOutcome;
    try {
      outcome = await spec.run(input, { folder, runId, token });
    } catch (error) {
      this.deps.runEvents.fireEnded({ runId, folder, endedAt: Date.now(), error: { reason: errorReason(error), message: errorText(error) } });
      this.deps.log.info(`[tools] ${name} failed: ${errorReason(error) ?? 'error'}: ${errorText(error)}`);
      if (token.isCancellationRequested || errorReason(error) === 'cancelled') throw new vscode.CancellationError();
      throw toolError(error);
    }
    let changeSet = outcome.changeSet;
    if (spec.mutates && !changeSet) {
      // The review view and the history see the box as this run left it; a failed collect does not undo the run.
      changeSet = await this.deps.engine.collect(folder).catch((error) => {
        this.deps.log.warn(`[tools] collect after ${name} failed: ${errorText(error)}`);
        return undefined;
      });
    }
    this.deps.runEvents.fireEnded({ runId, folder, endedAt: Date.now(), result: outcome.result, changeSet });
    let text = outcome.text;
    if (spec.mutates && changeSet && !outcome.result) text += `\nAll pending changes in the box: ${countByKind(changeSet.changes)}.`;
    return new vscode.LanguageModelToolResult([new vscode.LanguageModelTextPart(text)]);
  }

  private async runCommand(input: RunCommandInput, { folder, runId, token }: ToolRunContext): Promise<ToolOutcome> {
    const { engine, output } = this.deps;
    await engine.ensureBox({ folder }, token);
    const before = await engine.collect(folder, token);
    output?.appendLine(`$ ${input.command}    [agentSandbox_runCommand]`);
    const outputSub = engine.onOutput((chunk) => {
      if (chunk.runId === runId) output?.append(chunk.text);
    });
    let result: ExecResult;
    try {
      result = await engine.exec({ folder, command: input.command, cwd: input.cwd, timeoutSeconds: input.timeoutSeconds, runId, ...(input.network ? { network: input.network } : {}) }, token);
    } finally {
      outputSub.dispose();
    }
    output?.appendLine('');
    const after = await engine.collectAfterRun(folder, result);
    return { text: formatRunResult(input.command, result, changesByRun(before, after), after.changes), result, changeSet: after };
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

/** An engine error as the model should read it: the server's message names the cause and the fix. */
function toolError(error: unknown): Error {
  const reason = errorReason(error);
  const message = errorText(error);
  switch (reason) {
    case 'engine-unreachable':
      return new Error(`${message} The sandbox cannot run until the developer fixes this (command "Agent Sandbox: Check Docker Engine").`);
    case 'image-missing':
      return new Error(`${message} Ask the developer to run "Agent Sandbox: Pull Sandbox Image".`);
    case 'invalid-setting': {
      const setting = (error as { data?: Partial<ErrorData> }).data?.setting;
      return new Error(setting ? `${message} Ask the developer to correct the setting ${setting}.` : message);
    }
    default:
      return new Error(message);
  }
}

function requireString<T>(input: T, key: keyof T & string, options: { allowEmpty?: boolean } = {}): void {
  const value = (input as Record<string, unknown> | undefined)?.[key];
  if (typeof value !== 'string' || (!options.allowEmpty && value === '')) {
    throw new Error(`"${key}" is required and must be a ${options.allowEmpty ? '' : 'non-empty '}string.`);
  }
}

function optionalString<T>(input: T, key: keyof T & string): void {
  const value = (input as Record<string, unknown>)[key];
  if (value !== undefined && typeof value !== 'string') throw new Error(`"${key}" must be a string.`);
}

function oneLine(text: string): string {
  const first = text.split('\n')[0];
  return first.length > 80 || text.includes('\n') ? `${first.slice(0, 80)}…` : first;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The files a patch names, for the chat line and the history (best effort: the server parses it for real). */
function patchTargets(patch: string): string {
  const names = [...patch.matchAll(/^\+\+\+ (?:b\/)?([^\t\n]+)/gm)].map((m) => m[1].trim()).filter((n) => n !== '/dev/null');
  const removed = [...patch.matchAll(/^--- (?:a\/)?([^\t\n]+)\n\+\+\+ \/dev\/null/gm)].map((m) => m[1].trim());
  const all = [...new Set([...names, ...removed])];
  if (all.length === 0) return 'the box';
  return all.length <= 3 ? all.join(', ') : `${all.slice(0, 3).join(', ')} and ${all.length - 3} more`;
}
