import * as path from 'node:path';

// The configuration each external agent needs to reach the box over MCP, and which of its own tools to turn
// off so it acts only through the box. Pure text (no `vscode`), so unit tests pin it.

/** The server's name in every client's configuration. */
export const MCP_SERVER_NAME = 'agent-sandbox';

export type AgentClient = 'claude' | 'codex' | 'gemini' | 'cursor';

/** How a client starts the bridge: this editor's runtime as plain Node (no Node install needed), `dist/cli.js mcp`. */
export interface BridgeCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
}

export function bridgeCommand(runtime: string, cliPath: string, folder: string): BridgeCommand {
  return { command: runtime, args: [cliPath, 'mcp', '--folder', folder], env: { ELECTRON_RUN_AS_NODE: '1' } };
}

export interface AgentConfig {
  client: AgentClient;
  label: string;
  /** The file written: absolute. */
  file: string;
  /** The file's whole new content (the existing one with the server added or replaced). */
  content: string;
  /** The agent's own tools to turn off, and how. */
  ownTools: string;
  /** Another way to add it, when the client has one (a command line). */
  alternative?: string;
}

export const AGENT_CLIENTS: { client: AgentClient; label: string; description: string }[] = [
  { client: 'claude', label: 'Claude Code', description: '.mcp.json in the folder' },
  { client: 'codex', label: 'Codex CLI', description: '~/.codex/config.toml' },
  { client: 'gemini', label: 'Gemini CLI', description: '.gemini/settings.json in the folder' },
  { client: 'cursor', label: 'Cursor', description: '.cursor/mcp.json in the folder' },
];

/** Thrown when an existing configuration file cannot be read as its format: it is never overwritten then. */
export class ConfigFileError extends Error {}

/**
 * The configuration for `client`, merged into `existing` (the file's current text, or undefined): other
 * servers and settings are kept; an earlier `agent-sandbox` entry is replaced.
 */
export function agentConfig(client: AgentClient, bridge: BridgeCommand, folder: string, home: string, existing: string | undefined): AgentConfig {
  const server = { command: bridge.command, args: bridge.args, env: bridge.env };
  switch (client) {
    case 'claude':
      return {
        client,
        label: 'Claude Code',
        file: path.join(folder, '.mcp.json'),
        content: mergeJson(existing, '.mcp.json', (json) => ({
          ...json,
          mcpServers: { ...objectAt(json, 'mcpServers'), [MCP_SERVER_NAME]: { type: 'stdio', ...server } },
        })),
        ownTools:
          'Turn off Claude Code\'s own tools that act on your machine, so it works only in the box: start it with --disallowedTools "Bash Edit MultiEdit Write NotebookEdit" (or list them under permissions.deny in .claude/settings.json). Its Read, Grep and Glob still read the real folder, secrets included: deny them too if the box should be all it sees.',
        alternative: `claude mcp add ${MCP_SERVER_NAME} -e ELECTRON_RUN_AS_NODE=1 -- ${[bridge.command, ...bridge.args].map(shellWord).join(' ')}`,
      };
    case 'codex':
      return {
        client,
        label: 'Codex CLI',
        file: path.join(home, '.codex', 'config.toml'),
        content: mergeToml(existing ?? '', `mcp_servers.${MCP_SERVER_NAME}`, [
          `command = ${tomlString(bridge.command)}`,
          `args = [${bridge.args.map(tomlString).join(', ')}]`,
          `env = { ${Object.entries(bridge.env)
            .map(([k, v]) => `${k} = ${tomlString(v)}`)
            .join(', ')} }`,
        ]),
        ownTools:
          "Codex's own shell and apply_patch act on your machine: start it with --sandbox read-only (and --ask-for-approval untrusted) so they cannot write, and ask it to use the agentSandbox_* tools. The server is in your user configuration: it serves the folder named in its --folder argument.",
      };
    case 'gemini':
      return {
        client,
        label: 'Gemini CLI',
        file: path.join(folder, '.gemini', 'settings.json'),
        content: mergeJson(existing, '.gemini/settings.json', (json) => ({
          ...json,
          mcpServers: { ...objectAt(json, 'mcpServers'), [MCP_SERVER_NAME]: server },
          excludeTools: [...new Set([...stringsAt(json, 'excludeTools'), 'run_shell_command', 'write_file', 'replace'])],
        })),
        ownTools:
          "Gemini CLI's own run_shell_command, write_file and replace act on your machine: this configuration lists them under excludeTools, so it works only in the box.",
      };
    case 'cursor':
      return {
        client,
        label: 'Cursor',
        file: path.join(folder, '.cursor', 'mcp.json'),
        content: mergeJson(existing, '.cursor/mcp.json', (json) => ({
          ...json,
          mcpServers: { ...objectAt(json, 'mcpServers'), [MCP_SERVER_NAME]: server },
        })),
        ownTools:
          "Cursor's agent runs terminal commands and edits files on your machine: in Cursor Settings → Chat, turn off auto-run and edit auto-apply (or disable its terminal and edit tools in the agent's tool list), and ask it to use the agentSandbox_* tools.",
      };
  }
}

function mergeJson(existing: string | undefined, name: string, update: (json: Record<string, unknown>) => Record<string, unknown>): string {
  let json: Record<string, unknown> = {};
  if (existing !== undefined && existing.trim() !== '') {
    try {
      const parsed: unknown = JSON.parse(existing);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      json = parsed as Record<string, unknown>;
    } catch (error) {
      throw new ConfigFileError(
        `${name} is not a JSON object (${error instanceof Error ? error.message : error}); fix or remove it, then connect again.`,
      );
    }
  }
  return `${JSON.stringify(update(json), null, 2)}\n`;
}

function objectAt(json: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = json[key];
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function stringsAt(json: Record<string, unknown>, key: string): string[] {
  const value = json[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** `existing` with the table `[name]` set to `lines`: replaced where it was, else appended. */
export function mergeToml(existing: string, name: string, lines: string[]): string {
  const header = `[${name}]`;
  const all = existing.split('\n');
  const start = all.findIndex((line) => line.trim() === header);
  const table = [header, ...lines];
  if (start < 0) {
    const body = existing.replace(/\n*$/, '');
    return `${body ? `${body}\n\n` : ''}${table.join('\n')}\n`;
  }
  let end = start + 1;
  while (end < all.length && !/^\s*\[/.test(all[end])) end++;
  // Keep the blank line that separated the table from the next one.
  const rest = all.slice(end);
  return [...all.slice(0, start), ...table, ...(rest.length > 0 ? ['', ...rest] : [''])].join('\n').replace(/\n{3,}/g, '\n\n');
}

function tomlString(text: string): string {
  return JSON.stringify(text);
}

function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
