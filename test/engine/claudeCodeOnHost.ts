// The real Claude Code CLI (the native binary scripts/build-test-images.sh caches) run on the host for the MCP
// end-to-end tests, against the Messages-API stand-in (test/standIns/messagesApiServer.ts). The CLI, the stand-in
// and the MCP server the CLI starts run in a network namespace of their own (`unshare --net`) with only a
// loopback interface, so nothing they send can leave the machine; the MCP server reaches the Docker engine and
// VS Code's MCP socket through unix sockets, which the namespace does not cut off. Root only (the tests' user):
// the MCP server must reach the Docker engine.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RecordedMessagesRequest, ScriptedTurn } from '../standIns/messagesApiServer';
import { REQUEST_LINE_PREFIX } from '../standIns/standInHttp';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const standInJs = path.join(ROOT, 'out', 'test', 'standIns', 'messagesApiServer.js');

/** The MCP server's name in the CLI's configuration; Claude Code names its tools `mcp__<server>__<tool>`. */
export const MCP_SERVER_NAME = 'agent-sandbox';
export const mcpToolName = (name: string): string => `mcp__${MCP_SERVER_NAME}__${name}`;
/** Claude Code's own tools that read, write or run on the machine it runs on. */
export const CLAUDE_OWN_TOOLS = [
  'Bash',
  'Edit',
  'MultiEdit',
  'Write',
  'NotebookEdit',
  'Read',
  'Glob',
  'Grep',
  'WebFetch',
  'WebSearch',
  'Task',
  'Agent',
];

/** The native `claude` binary scripts/build-test-images.sh keeps (the version its recipe pins); throws how to get it. */
export function cachedClaudeBinary(): string {
  const recipe = readFileSync(path.join(ROOT, 'scripts', 'build-test-images.sh'), 'utf8');
  const version = /^CLAUDE_CODE_VERSION=(\S+)$/m.exec(recipe)?.[1];
  if (!version) throw new Error('scripts/build-test-images.sh no longer sets CLAUDE_CODE_VERSION');
  const cache = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  const binary = path.join(cache, 'agent-sandbox-test-images', `claude-code-${version}`, 'claude');
  if (!existsSync(binary)) throw new Error(`This test needs Claude Code's binary at ${binary}; run \`bash scripts/build-test-images.sh\`.`);
  if (!existsSync(standInJs)) throw new Error(`${standInJs} is missing: run "npm run compile-tests"`);
  if (spawnSync('unshare', ['--net', '--', 'ip', 'link', 'set', 'lo', 'up']).status !== 0) {
    throw new Error(
      'This test runs the CLI in a network namespace of its own: it needs `unshare --net` (util-linux), `ip` (iproute2) and the right to use them (root).',
    );
  }
  return binary;
}

export interface ClaudeRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** What the stand-in was asked, in order. */
  requests: RecordedMessagesRequest[];
}

/**
 * `claude -p PROMPT --mcp-config CONFIG --strict-mcp-config --allowedTools mcp__agent-sandbox EXTRA…` in `cwd`,
 * with the stand-in playing `script`; `workDir` holds the CLI's home and the stand-in's log. Asynchronous, so an
 * extension host running it keeps serving.
 */
export function runClaudeOnHost(options: {
  binary: string;
  workDir: string;
  cwd: string;
  mcpConfig: string;
  script: ScriptedTurn[];
  extraArgs: string[];
  env?: NodeJS.ProcessEnv;
}): Promise<ClaudeRun> {
  const home = path.join(options.workDir, 'claude-home');
  mkdirSync(home, { recursive: true });
  const standInLog = path.join(options.workDir, 'stand-in.log');
  rmSync(standInLog, { force: true });
  const args = [
    '-p',
    'Do what the task needs, in the box.',
    '--mcp-config',
    options.mcpConfig,
    '--strict-mcp-config',
    '--allowedTools',
    `mcp__${MCP_SERVER_NAME}`,
    ...options.extraArgs,
  ];
  const quoted = (text: string): string => `'${text.replace(/'/g, "'\\''")}'`;
  // The namespace's loopback comes up, the stand-in listens on it, then the CLI runs; the stand-in goes with it.
  const shell = [
    'set -u',
    'ip link set lo up || exit 97',
    `STAND_IN_PORT=8080 ${quoted(process.execPath)} ${quoted(standInJs)} > ${quoted(standInLog)} 2>&1 &`,
    'standin=$!',
    `for i in $(seq 100); do grep -q listening ${quoted(standInLog)} && break; sleep 0.1; done`,
    `${quoted(options.binary)} ${args.map(quoted).join(' ')} < /dev/null`,
    'status=$?',
    'kill $standin',
    'exit $status',
  ].join('\n');
  const child = spawn('unshare', ['--net', '--', '/bin/sh', '-c', shell], {
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...(options.env ?? process.env),
      HOME: home,
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:8080',
      ANTHROPIC_API_KEY: 'sk-ant-stand-in',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      STAND_IN_SCRIPT: JSON.stringify(options.script),
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      const requests = (existsSync(standInLog) ? readFileSync(standInLog, 'utf8') : '')
        .split('\n')
        .filter((line) => line.startsWith(REQUEST_LINE_PREFIX))
        .map((line) => JSON.parse(line.slice(REQUEST_LINE_PREFIX.length)) as RecordedMessagesRequest);
      resolve({ status, stdout, stderr, requests });
    });
  });
}
