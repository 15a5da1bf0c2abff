// Host tier: a run's egress in the Run History, with a real allowlisted box. The gateway sits on an internal
// Docker network this suite creates and resolves through its own loopback, so nothing it is asked for leaves
// the machine: a listed name fails to resolve (a "failed" attempt), an unlisted one is denied before that.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RunCommandResult } from '../../../src/host/commands/runCommand';
import type { ExportHistoryResult } from '../../../src/host/history/historyFeature';
import type { HistoryRecord } from '../../../src/core/history/historyRecord';
import { egressLine } from '../../../src/core/history/egressSummary';
import type { DockerEngine } from '../../../src/core/docker/dockerEngine';
import { connectTestEngine, TEST_IMAGES } from '../../engine/engineHarness';

const extensionId = 'agent-sandbox.agent-sandbox';
const SETTINGS = ['network', 'allowedHosts', 'gatewayImage', 'gatewayNetwork', 'gatewayDns', 'image'] as const;

suite('Run history: what each run contacted (real engine, allowlisted box)', function () {
  this.timeout(240_000);
  let folder: string;
  let engine: DockerEngine;
  let exportDir: string;
  const networkName = `agent-sandbox-host-egress-${process.pid}`;
  /** The user's values before the suite (the rig sets the image), put back after it. */
  const before = new Map<string, unknown>();

  async function run(command: string, extra: { network?: 'none' } = {}): Promise<RunCommandResult> {
    const result = (await vscode.commands.executeCommand('agentSandbox.runCommand', { folder, command, decision: 'discard', ...extra })) as
      RunCommandResult | undefined;
    assert.ok(result, 'agentSandbox.runCommand returned nothing (see the Agent Sandbox log)');
    return result;
  }

  async function recordOf(runId: string): Promise<HistoryRecord> {
    const result = (await vscode.commands.executeCommand('agentSandbox.history.export', {
      path: path.join(exportDir, 'export.json'),
    })) as ExportHistoryResult;
    const record = result.records.find((r) => r.id === runId);
    assert.ok(record, `run ${runId} is not in the history`);
    return record;
  }

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    exportDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-history-egress-'));
    engine = await connectTestEngine();
    await engine.call('creating the test network', (d) =>
      d.createNetwork({ Name: networkName, Internal: true, Labels: { 'dev.agent-sandbox.test': 'host-egress' } }),
    );
    const config = vscode.workspace.getConfiguration('agentSandbox');
    const global = vscode.ConfigurationTarget.Global;
    for (const key of SETTINGS) before.set(key, config.inspect(key)?.globalValue);
    await config.update('image', TEST_IMAGES.net, global);
    await config.update('gatewayImage', TEST_IMAGES.net, global);
    await config.update('gatewayNetwork', networkName, global);
    await config.update('gatewayDns', ['127.0.0.1'], global);
    await config.update('allowedHosts', ['allowed.test:80'], global);
    await config.update('network', 'allowlist', global);
    // The settings reach the server asynchronously; a fresh box is made with them once they have.
    for (let i = 0; i < 20; i++) {
      await vscode.commands.executeCommand('agentSandbox.reset', folder);
      if ((await run('true')).result.policy.network === 'allowlist') return;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.fail('the box never came up with network "allowlist"');
  });

  suiteTeardown(async () => {
    const config = vscode.workspace.getConfiguration('agentSandbox');
    for (const key of SETTINGS) await config.update(key, before.get(key), vscode.ConfigurationTarget.Global);
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    await engine?.call('removing the test network', (d) => d.getNetwork(networkName).remove()).catch(() => undefined);
    fs.rmSync(exportDir, { recursive: true, force: true });
  });

  test("a run's record holds what it contacted, per host: a denied host with its reason, an allowed one that failed, and the short line the panel shows", async () => {
    const ran = await run('curl -sS http://denied.test/ ; curl -sS http://allowed.test/ ; true');
    assert.match(ran.result.stdout, /denied\.test:80 is not allowed/);
    const record = await recordOf(ran.result.runId);
    assert.equal(record.policy?.network, 'allowlist');
    assert.deepEqual(
      record.egress?.hosts.map((s) => [s.host, s.port, s.allowed, s.denied, s.failed, s.reasons]),
      [
        ['allowed.test', 80, 0, 0, 1, ['resolve-failed']],
        ['denied.test', 80, 0, 1, 0, ['not-allowlisted']],
      ],
    );
    assert.equal(record.egress?.unattributed, undefined);
    assert.equal(egressLine(record.egress), 'denied denied.test:80 ×1 · failed allowed.test:80 ×1');
    // A run that tried nothing has no egress summary.
    const quiet = await run('echo quiet');
    assert.equal((await recordOf(quiet.result.runId)).egress, undefined);
  });

  test('an offline run (Run Command with network "none") is recorded as offline; what the box tried meanwhile is denied and kept apart, labelled as naming no run', async () => {
    const ran = await run('echo "proxy=[$HTTP_PROXY]"; curl -sS --proxy http://127.0.0.1:3128 http://denied.test/ ; true', { network: 'none' });
    assert.match(ran.result.stdout, /^proxy=\[\]$/m);
    assert.match(ran.result.stdout, /offline run \(network: "none"\) runs: host-/);
    const record = await recordOf(ran.result.runId);
    assert.deepEqual([record.policy?.network, record.policy?.offline], ['none', true]);
    assert.deepEqual(record.egress?.hosts, []);
    assert.deepEqual(
      record.egress?.unattributed?.map((s) => [s.host, s.denied, s.reasons]),
      [['denied.test', 1, ['offline-run']]],
    );
    assert.equal(egressLine(record.egress), '1 more from the box naming no run');
    // The next run has the network again.
    const next = await run('curl -sS http://denied.test/ ; true');
    assert.match(next.result.stdout, /denied\.test:80 is not allowed/);
    assert.equal(next.result.policy.network, 'allowlist');
  });
});
