import * as assert from 'node:assert/strict';
import { ConfigFileError, agentConfig, bridgeCommand, mergeToml } from '../../../src/host/mcp/agentConfigs';

const bridge = bridgeCommand('/opt/code/code', '/ext/dist/cli.js', '/home/u/proj');

suite("MCP: external agents' configuration (Connect an External Agent…)", () => {
  test('Claude Code: .mcp.json gets the server, other servers and keys are kept; the tools to turn off are named', () => {
    const existing = JSON.stringify({ mcpServers: { other: { command: 'x' } }, keep: 1 });
    const config = agentConfig('claude', bridge, '/home/u/proj', '/home/u', existing);
    assert.equal(config.file, '/home/u/proj/.mcp.json');
    assert.deepEqual(JSON.parse(config.content), {
      mcpServers: {
        other: { command: 'x' },
        'agent-sandbox': {
          type: 'stdio',
          command: '/opt/code/code',
          args: ['/ext/dist/cli.js', 'mcp', '--folder', '/home/u/proj'],
          env: { ELECTRON_RUN_AS_NODE: '1' },
        },
      },
      keep: 1,
    });
    assert.match(config.ownTools, /--disallowedTools "Bash Edit MultiEdit Write NotebookEdit"/);
    assert.equal(
      config.alternative,
      'claude mcp add agent-sandbox -e ELECTRON_RUN_AS_NODE=1 -- /opt/code/code /ext/dist/cli.js mcp --folder /home/u/proj',
    );
  });

  test('Gemini CLI: excludeTools gains its own shell and edit tools, without duplicates', () => {
    const config = agentConfig('gemini', bridge, '/home/u/proj', '/home/u', JSON.stringify({ excludeTools: ['write_file', 'web_fetch'] }));
    assert.equal(config.file, '/home/u/proj/.gemini/settings.json');
    const json = JSON.parse(config.content) as { excludeTools: string[]; mcpServers: Record<string, unknown> };
    assert.deepEqual(json.excludeTools, ['write_file', 'web_fetch', 'run_shell_command', 'replace']);
    assert.ok(json.mcpServers['agent-sandbox']);
  });

  test('Cursor: .cursor/mcp.json; a file that is not a JSON object is never overwritten', () => {
    assert.equal(agentConfig('cursor', bridge, '/p', '/h', undefined).file, '/p/.cursor/mcp.json');
    assert.throws(
      () => agentConfig('cursor', bridge, '/p', '/h', '{ broken'),
      (e: unknown) => e instanceof ConfigFileError && /\.cursor\/mcp\.json is not a JSON object.*fix or remove it/.test(e.message),
    );
    assert.throws(() => agentConfig('claude', bridge, '/p', '/h', '[1]'), ConfigFileError);
  });

  test('Codex: ~/.codex/config.toml gets a [mcp_servers.agent-sandbox] table, replaced in place on a second connect', () => {
    const first = agentConfig('codex', bridge, '/home/u/proj', '/home/u', 'model = "o3"\n\n[mcp_servers.other]\ncommand = "x"\n');
    assert.equal(first.file, '/home/u/.codex/config.toml');
    assert.equal(
      first.content,
      'model = "o3"\n\n[mcp_servers.other]\ncommand = "x"\n\n[mcp_servers.agent-sandbox]\ncommand = "/opt/code/code"\nargs = ["/ext/dist/cli.js", "mcp", "--folder", "/home/u/proj"]\nenv = { ELECTRON_RUN_AS_NODE = "1" }\n',
    );
    const moved = agentConfig('codex', bridgeCommand('/opt/code/code', '/ext/dist/cli.js', '/elsewhere'), '/elsewhere', '/home/u', first.content);
    assert.equal((moved.content.match(/\[mcp_servers\.agent-sandbox\]/g) ?? []).length, 1);
    assert.match(moved.content, /"--folder", "\/elsewhere"\]/);
    assert.match(moved.content, /\[mcp_servers\.other\]\ncommand = "x"/);
    assert.match(first.ownTools, /--sandbox read-only/);
  });

  test('mergeToml keeps the tables after the one it replaces', () => {
    assert.equal(mergeToml('[a]\nx = 1\n\n[b]\ny = 2\n', 'a', ['x = 3']), '[a]\nx = 3\n\n[b]\ny = 2\n');
    assert.equal(mergeToml('', 'a', ['x = 1']), '[a]\nx = 1\n');
  });
});
