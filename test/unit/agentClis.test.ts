import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { agentEnvStatus, DEFAULT_AGENT_CLIS, parseAgentClis } from '../../src/host/terminal/agentClis';

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
    assert.deepEqual(problems, ['agentSandbox.agentClis[1] needs a "name" and a "command"', 'agentSandbox.agentClis[2] needs a "name" and a "command"']);
    assert.deepEqual(parseAgentClis(undefined).entries, DEFAULT_AGENT_CLIS);
    assert.deepEqual(parseAgentClis('oops').problems, ['agentSandbox.agentClis is not a list']);
  });

  test('a variable is passed only when listed by the entry, allowlisted and set; values never appear', () => {
    const entry = { name: 'aider', command: 'aider --yes-always', env: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY'] };
    const status = agentEnvStatus(entry, ['OPENAI_API_KEY', 'GEMINI_API_KEY', 'OTHER'], { OPENAI_API_KEY: 'sk-secret', OTHER: 'x' });
    assert.deepEqual(status, { passed: ['OPENAI_API_KEY'], notAllowlisted: ['ANTHROPIC_API_KEY'], unset: ['GEMINI_API_KEY'] });
    assert.ok(!JSON.stringify(status).includes('sk-secret'));
  });
});
