// Model keys and network settings from VS Code, on a real engine: Set API Key stores the key (SecretStorage)
// and the box's gateway adds it; a settings change reaches the running box's gateway. The provider and the
// hosts are stand-ins on a Docker network this suite creates (test/engine/egressInternet.ts); no traffic
// leaves the machine.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { RunCommandResult } from '../../../src/host/commands/runCommand';
import type { SetApiKeyOutcome } from '../../../src/host/secrets/setApiKeyCommand';
import type { SandboxPseudoterminal } from '../../../src/host/terminal/sandboxPseudoterminal';
import { MODEL_KEY_PLACEHOLDER } from '../../../src/core/egress/modelProviders';
import type { DockerEngine } from '../../../src/core/docker/dockerEngine';
import { connectTestEngine, TEST_IMAGES, testOwnerId } from '../../engine/engineHarness';
import { createTestInternet, type TestInternet } from '../../engine/egressInternet';

const extensionId = 'agent-sandbox.agent-sandbox';
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

suite("Model keys and network settings reach the box's gateway (real engine, stand-in internet)", function () {
  this.timeout(240_000);
  const ownerId = testOwnerId('host-keys');
  const key = `sk-ant-host-${randomBytes(24).toString('hex')}`;
  let engine: DockerEngine;
  let internet: TestInternet;
  let folder: string;
  const settingKeys = ['image', 'network', 'allowedHosts', 'gatewayImage', 'gatewayNetwork', 'gatewayDns', 'gatewayCaFile'];
  const config = () => vscode.workspace.getConfiguration('agentSandbox');
  /** The rig's own user values (its image), put back afterwards. */
  const previous = new Map<string, unknown>();

  const run = async (command: string): Promise<RunCommandResult> =>
    (await vscode.commands.executeCommand('agentSandbox.runCommand', { folder, command, decision: 'keep' })) as RunCommandResult;
  /** Runs until `ok` holds (settings reach the server asynchronously after the change event), at most 20 s. */
  const runUntil = async (command: string, ok: (r: RunCommandResult) => boolean): Promise<RunCommandResult> => {
    let last: RunCommandResult | undefined;
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
      last = await run(command);
      if (ok(last)) return last;
    }
    assert.fail(`never as expected: ${JSON.stringify(last?.result)}`);
  };
  const gateways = (): string[] =>
    spawnSync(
      'docker',
      ['ps', '-q', '--no-trunc', '--filter', 'label=dev.agent-sandbox.role=gateway', '--filter', `label=dev.agent-sandbox.folder=${folder}`],
      { encoding: 'utf8' },
    )
      .stdout.trim()
      .split('\n')
      .filter(Boolean);

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    engine = await connectTestEngine();
    internet = await createTestInternet(engine, ownerId);
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    const c = config();
    for (const k of settingKeys) previous.set(k, c.inspect(k)?.globalValue);
    await c.update('image', TEST_IMAGES.net, vscode.ConfigurationTarget.Global);
    await c.update('gatewayImage', TEST_IMAGES.net, vscode.ConfigurationTarget.Global);
    await c.update('gatewayNetwork', internet.networkName, vscode.ConfigurationTarget.Global);
    await c.update('gatewayDns', ['127.0.0.1'], vscode.ConfigurationTarget.Global);
    await c.update('gatewayCaFile', internet.caFile, vscode.ConfigurationTarget.Global);
    await c.update('allowedHosts', ['registry.test'], vscode.ConfigurationTarget.Global);
    await c.update('network', 'allowlist', vscode.ConfigurationTarget.Global);
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('agentSandbox.setApiKey', { provider: 'anthropic', clear: true });
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    for (const k of settingKeys) await config().update(k, previous.get(k), vscode.ConfigurationTarget.Global);
    await internet?.remove();
  });

  test('Set API Key stores the key and the gateway adds it on the provider route; the box holds only the placeholder; clearing it takes it away', async () => {
    const stored = (await vscode.commands.executeCommand('agentSandbox.setApiKey', { provider: 'anthropic', key: ` ${key} ` })) as SetApiKeyOutcome;
    assert.deepEqual(stored, { provider: 'anthropic', action: 'stored' });
    // The key travels SecretStorage → engine server → gateway; the box's run sends the placeholder.
    const routed = await runUntil(
      'curl -sS --fail -H "x-api-key: $ANTHROPIC_API_KEY" -d "{}" "$ANTHROPIC_BASE_URL/v1/messages"',
      (r) => r.result.exitCode === 0,
    );
    const answer = JSON.parse(routed.result.stdout) as { host: string; apiKeySha256: string };
    assert.deepEqual({ host: answer.host, key: answer.apiKeySha256 }, { host: 'api.anthropic.com', key: sha256(key) });
    assert.deepEqual(routed.result.policy.modelKeys, ['anthropic']);
    const env = await run('env | grep ^ANTHROPIC_API_KEY=');
    assert.equal(env.result.stdout, `ANTHROPIC_API_KEY=${MODEL_KEY_PLACEHOLDER}\n`);

    // Run Agent CLI's first lines say which key the gateway adds (the image has no claude: the launch then fails).
    const terminal = (await vscode.commands.executeCommand('agentSandbox.runAgentCli', { folder, name: 'Claude Code' })) as vscode.Terminal;
    const pty = (terminal.creationOptions as vscode.ExtensionTerminalOptions).pty as unknown as SandboxPseudoterminal;
    assert.deepEqual(pty.options.notes, [
      'The gateway adds your Anthropic API key on requests to api.anthropic.com; the box has ANTHROPIC_BASE_URL pointing at the gateway and only a placeholder in ANTHROPIC_API_KEY.',
    ]);
    await pty.ended;
    terminal.dispose();

    const cleared = (await vscode.commands.executeCommand('agentSandbox.setApiKey', { provider: 'anthropic', clear: true })) as SetApiKeyOutcome;
    assert.deepEqual(cleared, { provider: 'anthropic', action: 'cleared' });
    const without = await runUntil('env | grep -c ^ANTHROPIC_; curl -sS http://127.0.0.1:3128/_agent-sandbox/anthropic/v1/messages', (r) =>
      r.result.stdout.startsWith('0\n'),
    );
    assert.match(without.result.stdout, /no Anthropic API key is stored.*Set API Key/);
  });

  test('a settings change reaches the running box: the same gateway enforces the new allowlist at the next run', async () => {
    const denied = await run('curl -sS --cacert /dev/stdin https://other.test/ <<EOF\n' + internet.caPem + 'EOF');
    assert.match(denied.result.stderr, /CONNECT tunnel failed, response 403/);
    const before = gateways();
    assert.equal(before.length, 1);
    await config().update('allowedHosts', ['other.test'], vscode.ConfigurationTarget.Global);
    const allowed = await runUntil(
      'curl -sS --fail --cacert /dev/stdin https://other.test/ <<EOF\n' + internet.caPem + 'EOF',
      (r) => r.result.exitCode === 0 && r.result.policy.allowedHosts?.[0] === 'other.test',
    );
    // (The gateway enforces the new rules a moment before its confirmation reaches the server, which is when a
    // run's policy starts naming them: a run in between may pass with the old list in its record.)
    assert.equal((JSON.parse(allowed.result.stdout) as { upstream: string }).upstream, 'other');
    assert.deepEqual(allowed.result.policy.allowedHosts, ['other.test']);
    assert.deepEqual(gateways(), before, 'the running gateway took the new rules');
    // Network "none": the box loses its gateway at its next run, and the run says so in its policy.
    await config().update('network', 'none', vscode.ConfigurationTarget.Global);
    const offline = await runUntil(
      'curl -sS --max-time 5 --cacert /dev/stdin https://other.test/ <<EOF\n' + internet.caPem + 'EOF',
      (r) => r.result.policy.network === 'none',
    );
    assert.notEqual(offline.result.exitCode, 0);
    assert.deepEqual(gateways(), []);
  });
});
