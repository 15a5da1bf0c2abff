import type { ChangeSet, ErrorData, ErrorReason, ExecResult, FileOpRequest } from '../../shared/protocol';
import { SandboxError } from '../errors';
import { checkToolInput, findToolDefinition, type SandboxToolName } from './toolDefinitions';
import { REVIEW_NOTE, changesByRun, countByKind, formatPatched, formatRunResult, looksBinary, sliceLines, summarizeChangeSet } from './toolText';
import { errorText } from '../util/errorText';
import { shellQuote } from '../util/shellQuote';

/**
 * What the tools need of the engine. The extension host implements it over its engine client (JSON-RPC), the
 * engine server over its `EngineService` (in process, for MCP): one implementation of each tool serves both.
 */
export interface ToolEngine {
  ensureBox(folder: string, signal: AbortSignal): Promise<unknown>;
  collect(folder: string, signal?: AbortSignal): Promise<ChangeSet>;
  /** What a run left pending: collected, or — when the run lost its box — the pending changes kept without one. */
  collectAfterRun(folder: string, result: ExecResult): Promise<ChangeSet>;
  exec(params: ToolExecParams, signal: AbortSignal): Promise<ExecResult>;
  fileOp(params: FileOpRequest.Params, signal: AbortSignal): Promise<FileOpRequest.Result>;
}

export interface ToolExecParams {
  folder: string;
  command: string;
  cwd?: string;
  timeoutSeconds?: number;
  runId: string;
  /** `none`: this run gets no network whatever the box's egress setting (enforced by the engine). */
  network?: 'none';
}

/** A tool call as the run history records it. */
export interface ToolRunStart {
  runId: string;
  folder: string;
  /** The run as the history records it, e.g. `write src/a.ts`. */
  command: string;
  cwd?: string;
  startedAt: number;
}

export interface ToolRunEnd {
  runId: string;
  folder: string;
  endedAt: number;
  result?: ExecResult;
  error?: { reason?: string; message: string };
  changeSet?: ChangeSet;
}

export interface ToolCall {
  name: string;
  input: unknown;
  folder: string;
  runId: string;
  signal: AbortSignal;
  engine: ToolEngine;
  /** Fired once the input was checked and the run begins, and when it ended (failed and cancelled ones too). */
  onStarted?(start: ToolRunStart): void;
  onEnded?(end: ToolRunEnd): void;
  log?(line: string): void;
}

export interface ToolOutcome {
  /** What the model reads. */
  text: string;
  result?: ExecResult;
  changeSet?: ChangeSet;
}

/**
 * Why a tool call failed, as the model should read it. `input`: the call itself is wrong (unknown tool, bad
 * arguments) and nothing ran; `cancelled`: the caller gave up; `failed`: the engine refused or failed, and the
 * message names the cause and the fix.
 */
export class ToolCallError extends Error {
  override readonly name = 'ToolCallError';
  constructor(
    readonly kind: 'input' | 'cancelled' | 'failed',
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }

  static is(value: unknown): value is ToolCallError {
    return value instanceof ToolCallError;
  }
}

/** What one tool does beyond its definition. */
interface ToolSpec<T> {
  /** Checks the input beyond its schema; throws a message for the model. */
  validate?(input: T): void;
  /** The short line a chat shows while the tool runs, without the box's name. */
  message(input: T): string;
  /** The run as the history records it, e.g. `write src/a.ts`. */
  describe(input: T): string;
  /** True when the tool can change the box: the run then ends with a collect, for the review and the history. */
  mutates: boolean;
  run(input: T, context: { folder: string; runId: string; signal: AbortSignal; engine: ToolEngine }): Promise<ToolOutcome>;
}

interface RunCommandInput {
  command: string;
  cwd?: string;
  timeoutSeconds?: number;
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

function spec<T>(s: ToolSpec<T>): ToolSpec<unknown> {
  return s as ToolSpec<unknown>;
}

const toolSpecs: Record<SandboxToolName, ToolSpec<unknown>> = {
  agentSandbox_runCommand: spec<RunCommandInput>({
    validate: (input) => nonEmpty(input.command, 'command'),
    message: (input) => `Running \`${oneLine(input.command)}\`${input.cwd ? ` in ${input.cwd}` : ''}`,
    describe: (input) => input.command,
    mutates: true,
    run: async (input, { folder, runId, signal, engine }) => {
      await engine.ensureBox(folder, signal);
      const before = await engine.collect(folder, signal);
      const result = await engine.exec(
        { folder, command: input.command, cwd: input.cwd, timeoutSeconds: input.timeoutSeconds, runId, network: input.network },
        signal,
      );
      const after = await engine.collectAfterRun(folder, result);
      return { text: formatRunResult(input.command, result, changesByRun(before, after), after.changes), result, changeSet: after };
    },
  }),
  agentSandbox_readFile: spec<ReadFileInput>({
    validate: (input) => nonEmpty(input.path, 'path'),
    message: (input) => `Reading ${input.path}${input.startLine || input.endLine ? `, lines ${input.startLine ?? 1}-${input.endLine ?? 'end'}` : ''}`,
    describe: (input) => `read ${input.path}`,
    mutates: false,
    run: async (input, { folder, signal, engine }) => {
      const { content = '' } = await engine.fileOp({ folder, op: 'read', path: input.path }, signal);
      if (looksBinary(content)) {
        return {
          text: `${input.path} is a binary file (not UTF-8 text). Inspect it with agentSandbox_runCommand, e.g. \`od -c ${shellQuote(input.path)} | head\`.`,
        };
      }
      return { text: sliceLines(input.path, content, input.startLine, input.endLine) };
    },
  }),
  agentSandbox_listDirectory: spec<PathInput>({
    message: (input) => `Listing ${input.path || '.'}`,
    describe: (input) => `list ${input.path || '.'}`,
    mutates: false,
    run: async (input, { folder, signal, engine }) => {
      const { entries = [] } = await engine.fileOp({ folder, op: 'list', path: input.path || '.' }, signal);
      const header = `${input.path || '.'} holds ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} (directories end with /):`;
      return { text: entries.length === 0 ? `${input.path || '.'} is empty.` : `${header}\n${entries.join('\n')}` };
    },
  }),
  agentSandbox_writeFile: spec<WriteFileInput>({
    validate: (input) => nonEmpty(input.path, 'path'),
    message: (input) => `Writing ${input.path}`,
    describe: (input) => `write ${input.path}`,
    mutates: true,
    run: async (input, { folder, signal, engine }) => {
      await engine.fileOp({ folder, op: 'write', path: input.path, content: input.content }, signal);
      return { text: `Wrote ${input.path} (${Buffer.byteLength(input.content, 'utf8')} bytes) in the sandbox box. ${REVIEW_NOTE}` };
    },
  }),
  agentSandbox_editFile: spec<EditFileInput>({
    validate: (input) => {
      nonEmpty(input.path, 'path');
      nonEmpty(input.oldString, 'oldString');
    },
    message: (input) => `Editing ${input.path}`,
    describe: (input) => `edit ${input.path}`,
    mutates: true,
    run: async (input, { folder, signal, engine }) => {
      const { replacements = 0 } = await engine.fileOp(
        { folder, op: 'edit', path: input.path, oldString: input.oldString, newString: input.newString, replaceAll: input.replaceAll },
        signal,
      );
      return { text: `Edited ${input.path}: ${replacements} replacement(s) in the sandbox box. ${REVIEW_NOTE}` };
    },
  }),
  agentSandbox_applyPatch: spec<ApplyPatchInput>({
    validate: (input) => nonEmpty(input.patch, 'patch'),
    message: (input) => `Applying a patch to ${patchTargets(input.patch)}`,
    describe: (input) => `patch ${patchTargets(input.patch)}`,
    mutates: true,
    run: async (input, { folder, signal, engine }) => {
      const { patched = [] } = await engine.fileOp({ folder, op: 'patch', patch: input.patch }, signal);
      return { text: formatPatched(patched) };
    },
  }),
  agentSandbox_deleteFile: spec<PathInput>({
    validate: (input) => nonEmpty(input.path, 'path'),
    message: (input) => `Deleting ${input.path}`,
    describe: (input) => `delete ${input.path}`,
    mutates: true,
    run: async (input, { folder, signal, engine }) => {
      await engine.fileOp({ folder, op: 'delete', path: input.path }, signal);
      return { text: `Deleted ${input.path} in the sandbox box. ${REVIEW_NOTE}` };
    },
  }),
  agentSandbox_pendingChanges: spec<Record<string, never>>({
    message: () => 'Listing pending changes',
    describe: () => 'pending changes',
    mutates: false,
    run: async (_input, { folder, signal, engine }) => {
      await engine.ensureBox(folder, signal);
      const changeSet = await engine.collect(folder, signal);
      return { text: summarizeChangeSet(changeSet), changeSet };
    },
  }),
};

/**
 * The tool's definition and spec after checking the input against both; throws `ToolCallError` (`input`)
 * naming what is wrong. Nothing runs before this passes.
 */
function checkedSpec(name: string, input: unknown): ToolSpec<unknown> {
  const definition = findToolDefinition(name);
  if (!definition) {
    throw new ToolCallError('input', `There is no tool "${name}". The sandbox tools are: ${Object.keys(toolSpecs).join(', ')}.`);
  }
  const problem = checkToolInput(definition, input);
  if (problem) throw new ToolCallError('input', problem);
  const toolSpec = toolSpecs[definition.name as SandboxToolName];
  try {
    toolSpec.validate?.(input);
  } catch (error) {
    throw new ToolCallError('input', errorText(error));
  }
  return toolSpec;
}

/** The line a chat shows while the tool runs (the input unchecked: it is only shown). */
export function toolInvocationMessage(name: string, input: unknown): string {
  const toolSpec = toolSpecs[name as SandboxToolName];
  try {
    return toolSpec ? toolSpec.message(input ?? {}) : name;
  } catch {
    return name;
  }
}

/**
 * Runs one tool call: checks the input, records the run (`onStarted`/`onEnded`), runs it in the folder's box,
 * and — for tools that change the box — collects afterwards so the review and the history see the box as the
 * run left it. Failures throw `ToolCallError` with the text the model reads.
 */
export async function runTool(call: ToolCall): Promise<ToolOutcome> {
  const toolSpec = checkedSpec(call.name, call.input);
  const { folder, runId, signal, engine } = call;
  const input = call.input as Record<string, unknown>;
  call.onStarted?.({
    runId,
    folder,
    command: toolSpec.describe(input),
    cwd: typeof input.cwd === 'string' ? input.cwd : undefined,
    startedAt: Date.now(),
  });
  let outcome: ToolOutcome;
  try {
    outcome = await toolSpec.run(input, { folder, runId, signal, engine });
  } catch (error) {
    const reason = reasonOf(error);
    const message = errorText(error);
    call.onEnded?.({ runId, folder, endedAt: Date.now(), error: { reason, message } });
    call.log?.(`[tools] ${call.name} failed: ${reason ?? 'error'}: ${message}`);
    if (signal.aborted || reason === 'cancelled') throw new ToolCallError('cancelled', `${call.name} was cancelled.`, 'cancelled');
    throw new ToolCallError('failed', toolErrorText(error), reason);
  }
  let changeSet = outcome.changeSet;
  if (toolSpec.mutates && !changeSet) {
    // The review and the history see the box as this run left it; a failed collect does not undo the run.
    changeSet = await engine.collect(folder).catch((error: unknown) => {
      call.log?.(`[tools] collect after ${call.name} failed: ${errorText(error)}`);
      return undefined;
    });
  }
  call.onEnded?.({ runId, folder, endedAt: Date.now(), result: outcome.result, changeSet });
  let text = outcome.text;
  if (toolSpec.mutates && changeSet && !outcome.result) text += `\nAll pending changes in the box: ${countByKind(changeSet.changes)}.`;
  return { ...outcome, text, changeSet };
}

/** A fresh run id for a tool call; `prefix` tells the surfaces apart in logs (`tool`, `mcp`). */
export function newToolRunId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The typed reason of an error: a `SandboxError` thrown in process, or one that came over JSON-RPC in `data`. */
function reasonOf(error: unknown): ErrorReason | undefined {
  if (SandboxError.is(error)) return error.reason;
  const data = (error as { data?: Partial<ErrorData> } | undefined)?.data;
  return typeof data?.reason === 'string' ? data.reason : undefined;
}

function settingOf(error: unknown): string | undefined {
  if (SandboxError.is(error)) return error.options.setting;
  return (error as { data?: Partial<ErrorData> } | undefined)?.data?.setting;
}

/** An engine error as the model should read it: the engine's message names the cause; this adds who can fix it. */
function toolErrorText(error: unknown): string {
  const message = errorText(error);
  switch (reasonOf(error)) {
    case 'engine-unreachable':
      return `${message} The sandbox cannot run until the developer fixes this (command "Agent Sandbox: Check Docker Engine").`;
    case 'image-missing':
      return `${message} Ask the developer to run "Agent Sandbox: Pull Sandbox Image".`;
    case 'invalid-setting': {
      const setting = settingOf(error);
      return setting ? `${message} Ask the developer to correct the setting ${setting}.` : message;
    }
    default:
      return message;
  }
}

function nonEmpty(value: string, key: string): void {
  if (value === '') throw new Error(`"${key}" must not be empty.`);
}

function oneLine(text: string): string {
  const first = text.split('\n')[0];
  return first.length > 80 || text.includes('\n') ? `${first.slice(0, 80)}…` : first;
}

/** The files a patch names, for the chat line and the history (best effort: the engine parses it for real). */
function patchTargets(patch: string): string {
  const names = [...patch.matchAll(/^\+\+\+ (?:b\/)?([^\t\n]+)/gm)].map((m) => m[1].trim()).filter((n) => n !== '/dev/null');
  const removed = [...patch.matchAll(/^--- (?:a\/)?([^\t\n]+)\n\+\+\+ \/dev\/null/gm)].map((m) => m[1].trim());
  const all = [...new Set([...names, ...removed])];
  if (all.length === 0) return 'the box';
  return all.length <= 3 ? all.join(', ') : `${all.slice(0, 3).join(', ')} and ${all.length - 3} more`;
}
