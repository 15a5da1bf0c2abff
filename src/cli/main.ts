/**
 * `agent-sandbox`: the command line (`dist/cli.js`, the package's `bin`). `mcp` bridges MCP clients on stdio to
 * the box; `run`, `diff`, `apply`, `discard`, `reset` and `history` drive an engine server of its own
 * (`node dist/server.js --stdio`, the same server VS Code starts) for one folder. Pending changes persist in the
 * folder's storage between invocations, where the extension finds them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import {
  ApplyRequest,
  CollectRequest,
  DiscardRequest,
  ExecRequest,
  OutputNotification,
  PendingChangesRequest,
  ReadProposalRequest,
  ResetRequest,
} from '../shared/protocol';
import { countByKind, describeChange, describeOutcome, runNotes } from '../core/tools/toolText';
import { newToolRunId } from '../core/tools/toolRunner';
import { CliHistoryRecorder, openHistory } from './cliHistory';
import { EngineProcess } from './engineProcess';
import { folderStorage, STORAGE_VARIABLE, USER_DATA_VARIABLE, type FolderStorage } from './folderStorage';
import { runMcpBridge } from './mcpBridge';
import { unifiedDiff } from './unifiedDiff';
import { errorText } from '../core/util/errorText';

/** Exit codes beyond the command's own, as `docker run` and shells use them. */
const EXIT = { usage: 2, engine: 125, timeout: 124, cancelled: 130, oom: 137 } as const;

const COMMON_OPTIONS = `Options:
  --folder DIR   the workspace folder (default: the current directory)
  --image REF    the box's image (default: $AGENT_SANDBOX_IMAGE, else node:22-bookworm)
  --verbose      print the engine server's log to stderr
  -h, --help     show this help`;

const HELP: Record<string, string> = {
  '': `Usage: agent-sandbox <command> [options]

Runs commands and agents' tool calls in the Agent Sandbox box: a hardened Docker container holding a copy of
the folder. Nothing reaches the folder until you apply it.

Commands:
  mcp       serve the sandbox tools to an MCP client on stdio (Claude Code, Codex, Gemini CLI, Cursor, …)
  run       run a command in the box; its changes become pending
  diff      show the pending changes as a unified diff
  apply     write pending changes into the folder
  discard   revert pending changes in the box
  reset     discard every pending change and remove the box
  history   list the folder's runs

Run "agent-sandbox <command> --help" for its options.
Pending changes and history live in the folder's storage: the extension's (found through VS Code's
workspaceStorage, or $${USER_DATA_VARIABLE}), or $${STORAGE_VARIABLE}, or $XDG_STATE_HOME/agent-sandbox
(~/.local/state/agent-sandbox), which the extension takes in when VS Code opens the folder.`,
  mcp: `Usage: agent-sandbox mcp [--folder DIR]

Serves the eight sandbox tools (agentSandbox_runCommand, _readFile, _listDirectory, _writeFile, _editFile,
_applyPatch, _deleteFile, _pendingChanges) to an MCP client on stdin/stdout. While VS Code has the folder (or a
parent) open, the calls go to its engine server, and their changes appear in its review and run history;
otherwise this starts an engine server of its own for the folder, which stops when the client disconnects.

${COMMON_OPTIONS}`,
  run: `Usage: agent-sandbox run [--folder DIR] [--timeout SECONDS] -- COMMAND [ARGS…]

Runs COMMAND in the folder's box, streams its output, and exits with its exit code (124 timeout, 130
cancelled, 137 out of memory, 125 the engine failed). One argument is a shell command line ("npm test && npm
run lint"); several are quoted one by one. What it changes is pending: see "diff", then "apply" or "discard".

  --timeout S    kill the command after S seconds (0 = never; default: 600)
${COMMON_OPTIONS}`,
  diff: `Usage: agent-sandbox diff [--folder DIR] [--stat]

Prints the pending changes as a unified diff of the folder's files now (a/) against the box's (b/).

  --stat         one line per changed path instead
${COMMON_OPTIONS}`,
  apply: `Usage: agent-sandbox apply [--folder DIR] [--approve-flagged] [PATHS…]

Writes pending changes (all, or PATHS) into the folder. A file you changed since the box took it is a
conflict and is not overwritten; changes that can run code on your machine (scripts, CI, editor settings,
hooks, newly executable files) are skipped unless --approve-flagged; .git/ is never written.

  --approve-flagged   apply flagged changes too (read them first with "diff")
${COMMON_OPTIONS}`,
  discard: `Usage: agent-sandbox discard [--folder DIR] [PATHS…]

Reverts pending changes (all, or PATHS) in the box to the folder's version.

${COMMON_OPTIONS}`,
  reset: `Usage: agent-sandbox reset [--folder DIR]

Discards every pending change of the folder and removes its box: the next run starts from the folder as it is.

${COMMON_OPTIONS}`,
  history: `Usage: agent-sandbox history [--folder DIR] [--json] [--limit N]

Lists the folder's runs, newest first: from VS Code, its agents, MCP clients and this command line.

  --json         the records as a JSON array
  --limit N      at most N runs (default: 50)
${COMMON_OPTIONS}`,
};

class UsageError extends Error {}

interface Parsed {
  command: string;
  folder: string;
  image?: string;
  verbose: boolean;
  help: boolean;
  flags: Set<string>;
  values: Map<string, string>;
  rest: string[];
}

const VALUE_OPTIONS = new Set(['--folder', '--image', '--timeout', '--limit']);
const FLAG_OPTIONS: Record<string, string[]> = {
  diff: ['--stat'],
  apply: ['--approve-flagged'],
  history: ['--json'],
};

export function parseArgs(argv: string[], cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): Parsed {
  const [command = '', ...args] = argv;
  const parsed: Parsed = { command, folder: cwd, verbose: false, help: false, flags: new Set(), values: new Map(), rest: [] };
  if (command === '-h' || command === '--help' || command === 'help') return { ...parsed, command: '', help: true };
  if (!(command in HELP) || command === '') throw new UsageError(command ? `Unknown command "${command}".` : 'No command given.');
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      parsed.rest.push(...args.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') parsed.help = true;
    else if (arg === '--verbose') parsed.verbose = true;
    else if (VALUE_OPTIONS.has(arg)) {
      const value = args[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a value.`);
      parsed.values.set(arg, value);
    } else if (arg.startsWith('--') && arg.includes('=') && VALUE_OPTIONS.has(arg.slice(0, arg.indexOf('=')))) {
      parsed.values.set(arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1));
    } else if (FLAG_OPTIONS[command]?.includes(arg)) parsed.flags.add(arg);
    else if (arg.startsWith('-')) throw new UsageError(`Unknown option "${arg}" for "${command}".`);
    else parsed.rest.push(arg);
  }
  parsed.folder = path.resolve(cwd, parsed.values.get('--folder') ?? '.');
  parsed.image = parsed.values.get('--image') ?? (env.AGENT_SANDBOX_IMAGE || undefined);
  return parsed;
}

function usageCheck(parsed: Parsed): void {
  if (!fs.existsSync(parsed.folder) || !fs.statSync(parsed.folder).isDirectory()) {
    throw new UsageError(`The folder ${parsed.folder} does not exist or is not a directory (--folder).`);
  }
  if (parsed.command === 'run' && parsed.rest.length === 0) throw new UsageError('Give the command after "--", e.g. agent-sandbox run -- npm test');
  if (['mcp', 'reset', 'history', 'diff'].includes(parsed.command) && parsed.rest.length > 0) {
    throw new UsageError(`"${parsed.command}" takes no arguments, got "${parsed.rest.join(' ')}".`);
  }
  for (const key of ['--timeout', '--limit']) {
    const value = parsed.values.get(key);
    if (value !== undefined && !/^\d+$/.test(value)) throw new UsageError(`${key} must be a whole number, got "${value}".`);
  }
}

/** The command line a `run` argument list stands for: one argument as written, several quoted one by one. */
export function commandLine(args: string[]): string {
  if (args.length === 1) return args[0];
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export async function main(argv: string[]): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseArgs(argv);
    if (parsed.help) {
      process.stdout.write(`${HELP[parsed.command]}\n`);
      return 0;
    }
    usageCheck(parsed);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`agent-sandbox: ${error.message}\n\n${HELP[argv[0] in HELP ? argv[0] : '']}\n`);
    return EXIT.usage;
  }
  const log = parsed.verbose ? (line: string) => process.stderr.write(`${line}\n`) : () => undefined;
  const storage = await folderStorage(parsed.folder);
  const box = parsed.image ? { image: parsed.image } : {};
  if (parsed.command === 'mcp') {
    return runMcpBridge({ folder: parsed.folder, storage, box, input: process.stdin, output: process.stdout, log });
  }
  if (parsed.command === 'history') return printHistory(parsed, storage);
  const engine = await EngineProcess.start({ storagePath: storage.dir, box, log });
  try {
    switch (parsed.command) {
      case 'run':
        return await run(engine, parsed, storage);
      case 'diff':
        return await diff(engine, parsed);
      case 'apply':
        return await apply(engine, parsed);
      case 'discard':
        await engine.connection.sendRequest(DiscardRequest.type, { folder: parsed.folder, paths: parsed.rest.length > 0 ? parsed.rest : undefined });
        return report(engine, parsed.folder, 'Discarded in the box.');
      case 'reset':
        await engine.connection.sendRequest(ResetRequest.type, { folder: parsed.folder, discardPending: true });
        process.stderr.write('The box is removed and no change is pending.\n');
        return 0;
      default:
        return EXIT.usage;
    }
  } finally {
    await engine.stop();
  }
}

async function run(engine: EngineProcess, parsed: Parsed, storage: FolderStorage): Promise<number> {
  const { connection } = engine;
  const folder = parsed.folder;
  const command = commandLine(parsed.rest);
  const runId = newToolRunId('cli');
  connection.onNotification(OutputNotification.type, (chunk) => {
    if (chunk.runId === runId) (chunk.stream === 'stdout' ? process.stdout : process.stderr).write(chunk.text);
  });
  const history = new CliHistoryRecorder(await openHistory(storage.dir));
  const before = await connection.sendRequest(PendingChangesRequest.type, { folder });
  await history.start({ runId, folder, source: 'command', agent: 'agent-sandbox CLI', command, startedAt: Date.now() }, before);
  const cancel = new CancellationTokenSource();
  const onSignal = () => cancel.cancel();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const timeout = parsed.values.get('--timeout');
  try {
    const result = await connection.sendRequest(
      ExecRequest.type,
      { folder, command, runId, timeoutSeconds: timeout === undefined ? undefined : Number(timeout) },
      cancel.token,
    );
    // A run that lost its box has nothing to collect from: what stays pending is what the server kept.
    const after = await connection.sendRequest(result.boxLost ? PendingChangesRequest.type : CollectRequest.type, { folder });
    await history.end({ runId, endedAt: Date.now(), result, changeSet: after });
    for (const note of runNotes(result)) process.stderr.write(`agent-sandbox: ${note}\n`);
    if (result.outcome !== 'exited') process.stderr.write(`agent-sandbox: ${describeOutcome(result)}.\n`);
    if (after.changes.length > 0) {
      process.stderr.write(
        `agent-sandbox: pending changes: ${countByKind(after.changes)}. See them with "agent-sandbox diff"; take them with "agent-sandbox apply".\n`,
      );
    }
    switch (result.outcome) {
      case 'exited':
        return result.exitCode ?? EXIT.engine;
      case 'timeout':
        return EXIT.timeout;
      case 'cancelled':
        return EXIT.cancelled;
      case 'oom':
        return EXIT.oom;
      default:
        return EXIT.engine;
    }
  } catch (error) {
    const message = errorText(error);
    const reason = (error as { data?: { reason?: string } }).data?.reason;
    await history.end({ runId, endedAt: Date.now(), error: { reason, message } });
    process.stderr.write(`agent-sandbox: ${message}\n`);
    return reason === 'cancelled' || cancel.token.isCancellationRequested ? EXIT.cancelled : EXIT.engine;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

async function diff(engine: EngineProcess, parsed: Parsed): Promise<number> {
  const { connection } = engine;
  const folder = parsed.folder;
  const pending = await connection.sendRequest(PendingChangesRequest.type, { folder });
  if (parsed.flags.has('--stat')) {
    for (const change of pending.changes) process.stdout.write(`${describeChange(change)}\n`);
  } else {
    const text = await unifiedDiff(pending.changes, {
      folder,
      readProposal: async (relPath) =>
        Buffer.from((await connection.sendRequest(ReadProposalRequest.type, { folder, path: relPath })).base64, 'base64'),
    });
    process.stdout.write(text);
  }
  for (const refused of pending.refused) process.stderr.write(`agent-sandbox: refused (never applied): ${refused.path}: ${refused.reason}\n`);
  if (pending.changes.length === 0) process.stderr.write('agent-sandbox: no pending changes.\n');
  return 0;
}

async function apply(engine: EngineProcess, parsed: Parsed): Promise<number> {
  const { connection } = engine;
  const folder = parsed.folder;
  const pending = await connection.sendRequest(PendingChangesRequest.type, { folder });
  const paths = parsed.rest.length > 0 ? parsed.rest : undefined;
  const unknown = (paths ?? []).filter((p) => !pending.changes.some((c) => c.path === p));
  if (unknown.length > 0) {
    process.stderr.write(`agent-sandbox: not pending: ${unknown.join(', ')}. "agent-sandbox diff --stat" lists what is.\n`);
    return EXIT.usage;
  }
  if (pending.changes.length === 0) {
    process.stderr.write('agent-sandbox: no pending changes.\n');
    return 0;
  }
  const approveFlagged = parsed.flags.has('--approve-flagged') ? pending.changes.filter((c) => c.flags.length > 0).map((c) => c.path) : undefined;
  const result = await connection.sendRequest(ApplyRequest.type, { folder, paths, approveFlagged });
  for (const p of result.applied) process.stdout.write(`applied ${p}\n`);
  for (const p of result.conflicts) process.stderr.write(`agent-sandbox: conflict, not applied: ${p} changed in the folder since the box took it\n`);
  for (const s of result.skipped)
    process.stderr.write(`agent-sandbox: skipped ${s.path}: ${s.reason}${s.path.startsWith('.git/') ? '' : ' (--approve-flagged applies it)'}\n`);
  return result.conflicts.length > 0 || result.skipped.length > 0 ? 1 : 0;
}

async function report(engine: EngineProcess, folder: string, what: string): Promise<number> {
  const pending = await engine.connection.sendRequest(PendingChangesRequest.type, { folder });
  process.stderr.write(`${what} Pending changes: ${countByKind(pending.changes)}.\n`);
  return 0;
}

async function printHistory(parsed: Parsed, storage: FolderStorage): Promise<number> {
  const store = await openHistory(storage.dir);
  try {
    const limit = Number(parsed.values.get('--limit') ?? 50);
    const records = store
      .records()
      .filter((r) => r.folder === parsed.folder)
      .sort((a, b) => b.startedAt - a.startedAt)
      .slice(0, limit);
    if (parsed.flags.has('--json')) {
      process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
      return 0;
    }
    if (records.length === 0) process.stderr.write(`agent-sandbox: no runs recorded for ${parsed.folder} (in ${storage.dir}).\n`);
    for (const r of records) {
      const when = new Date(r.startedAt).toISOString().replace('T', ' ').slice(0, 19);
      const who = r.agent ? `${r.source}:${r.agent}` : r.source;
      const how = r.outcome === 'exited' ? `exit ${r.exitCode}` : r.outcome;
      const files = r.files.length > 0 ? `  [${r.files.length} file${r.files.length === 1 ? '' : 's'}]` : '';
      process.stdout.write(`${when}  ${how.padEnd(12)}  ${who.padEnd(28)}  ${r.command.split('\n')[0]}${files}\n`);
    }
    return 0;
  } finally {
    store.dispose();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    // Exit at once: stdin may still be open (mcp), and every child was stopped already.
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`agent-sandbox: ${errorText(error)}\n`);
      process.exit(EXIT.engine);
    },
  );
}
