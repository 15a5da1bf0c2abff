import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { agentEnvStatus, agentNetworkNotes, DEFAULT_AGENT_CLIS, parseAgentClis } from '../../src/host/terminal/agentClis';

suite('agent CLI entries', () => {
  test('the setting defaults in package.json are the built-in defaults, each with its no-prompt flag', () => {
    const manifest = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
    assert.deepEqual(manifest.contributes.configuration.properties['agentSandbox.agentClis'].default, DEFAULT_AGENT_CLIS);
    const flags = Object.fromEntries(DEFAULT_AGENT_CLIS.map((e) => [e.name, e.command]));
    assert.equal(flags['Claude Code'], 'claude --dangerously-skip-permissions');
    assert.equal(flags['Codex'], 'codex --dangerously-bypass-approvals-and-sandbox');
    assert.equal(flags['aider'], 'aider --yes-always');
    assert.equal(flags['Gemini CLI'], 'gemini --yolo');
  });

  test('malformed entries are skipped with a reason naming the setting; bad variable names are dropped', () => {
    const { entries, problems } = parseAgentClis([
      { name: ' Mine ', command: ' my-agent --yolo ', env: ['MY_KEY', 'not a name', 5] },
      { name: 'no command' },
      null,
    ]);
    assert.deepEqual(entries, [{ name: 'Mine', command: 'my-agent --yolo', env: ['MY_KEY'] }]);
    assert.deepEqual(problems, [
      'agentSandbox.agentClis[1] needs a "name" and a "command"',
      'agentSandbox.agentClis[2] needs a "name" and a "command"',
    ]);
    assert.deepEqual(parseAgentClis(undefined).entries, DEFAULT_AGENT_CLIS);
    assert.deepEqual(parseAgentClis('oops').problems, ['agentSandbox.agentClis is not a list']);
  });

  test('a variable is passed only when listed by the entry, allowlisted and set; values never appear', () => {
    const entry = { name: 'aider', command: 'aider --yes-always', env: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY'] };
    const status = agentEnvStatus(entry, ['OPENAI_API_KEY', 'GEMINI_API_KEY', 'OTHER'], { OPENAI_API_KEY: 'sk-secret', OTHER: 'x' });
    assert.deepEqual(status, { passed: ['OPENAI_API_KEY'], notAllowlisted: ['ANTHROPIC_API_KEY'], unset: ['GEMINI_API_KEY'] });
    assert.ok(!JSON.stringify(status).includes('sk-secret'));
  });

  test('each default names the provider whose key the gateway adds; a bad provider is reported and dropped', () => {
    assert.deepEqual(Object.fromEntries(DEFAULT_AGENT_CLIS.map((e) => [e.name, e.provider])), {
      'Claude Code': 'anthropic',
      Codex: 'openai',
      aider: 'anthropic',
      'Gemini CLI': 'gemini',
    });
    const { entries, problems } = parseAgentClis([
      { name: 'A', command: 'a', provider: 'openai' },
      { name: 'B', command: 'b', provider: 'mistral' },
    ]);
    assert.deepEqual(
      entries.map((e) => e.provider),
      ['openai', undefined],
    );
    assert.deepEqual(problems, ['agentSandbox.agentClis[1].provider must be "anthropic", "openai" or "gemini"; the entry runs without one']);
  });

  test("the terminal's network notes: network none, no key stored (with the command), the key the gateway adds, no provider", () => {
    const claude = DEFAULT_AGENT_CLIS[0]!;
    assert.match(
      agentNetworkNotes(claude, 'none', ['anthropic'])[0]!,
      /^Network: none \(agentSandbox\.network\)\. Claude Code cannot reach its model API.*"allowlist".*Set API Key/,
    );
    assert.match(agentNetworkNotes(claude, 'allowlist', ['openai'])[0]!, /^No Anthropic API key is set: run "Agent Sandbox: Set API Key…"/);
    assert.equal(
      agentNetworkNotes(claude, 'allowlist', ['anthropic'])[0],
      'The gateway adds your Anthropic API key on requests to api.anthropic.com; the box has ANTHROPIC_BASE_URL pointing at the gateway and only a placeholder in ANTHROPIC_API_KEY.',
    );
    assert.match(agentNetworkNotes({ name: 'X', command: 'x', env: [] }, 'allowlist', ['anthropic'])[0]!, /no "provider"/);
  });
});
