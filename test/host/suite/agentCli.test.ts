// End to end in VS Code, the real thing: **Run Agent CLI in Sandbox** runs the real Claude Code CLI (image
// agent-sandbox-test/claude) with its permission prompts off in an allowlisted box. Its key is set with
// **Set API Key…** (SecretStorage); the box gets only the gateway's base URL and a placeholder, and the gateway
// adds the key on its way to api.anthropic.com. The CLI runs the model's Read, Edit and Bash calls; the edit
// arrives in the review and the session in the run history.
//
// The real api.anthropic.com is unreachable from this machine (and no test may send traffic off it): the name
// belongs to a stand-in for the Messages API on the test's own Docker network (test/engine/claudeCodeStandIns.ts),
// whose certificate comes from a CA made for the test, which the gateway trusts through agentSandbox.gatewayCaFile.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { runInBox } from '../../../src/core/box/boxRun';
import { LABEL_FOLDER } from '../../../src/core/box/boxConfig';
import type { DockerEngine } from '../../../src/core/docker/dockerEngine';
import { LABEL_ROLE } from '../../../src/core/egress/gatewayConfig';
import { MODEL_KEY_PLACEHOLDER } from '../../../src/core/egress/modelProviders';
import type { ExportHistoryResult } from '../../../src/host/history/historyFeature';
import type { SetApiKeyOutcome } from '../../../src/host/secrets/setApiKeyCommand';
import type { SandboxPseudoterminal } from '../../../src/host/terminal/sandboxPseudoterminal';
import type { ChangeSet } from '../../../src/shared/protocol';
import { claudePids, scanWhileToolRuns, type BoxCommandRunner } from '../../engine/claudeCodeKeyScan';
import {
  CLAUDE_COMMAND,
  CLAUDE_FINAL_TEXT,
  CLAUDE_IMAGE,
  CLAUDE_SCRIPT,
  GREETING_AFTER,
  GREETING_BEFORE,
  GREETING_FILE,
  MESSAGES_API_HOST,
  RAN_FILE,
  RAN_TEXT,
  startMessagesApi,
} from '../../engine/claudeCodeStandIns';
import { createTestInternet, type TestInternet } from '../../engine/egressInternet';
import { connectTestEngine, testOwnerId } from '../../engine/engineHarness';

const extensionId = 'agent-sandbox.agent-sandbox';
const AGENT_NAME = 'Claude Code (stand-in API)';

/** The box container of `folder` (not its gateway or relay), once it runs (the terminal makes it as it opens). */
async function boxOf(engine: DockerEngine, folder: string): Promise<string> {
  for (let i = 0; ; i++) {
    const list = await engine.call('listing boxes', (d) => d.listContainers({ filters: { label: [`${LABEL_FOLDER}=${folder}`] } }));
    const boxes = list.filter((c) => !c.Labels?.[LABEL_ROLE]);
    if (boxes.length === 1) return boxes[0]!.Id;
    assert.ok(i < 300, `one running box for ${folder}: ${JSON.stringify(list.map((c) => c.Names))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

suite(
  'Run Agent CLI in Sandbox: the real Claude Code CLI, its key added by the gateway (real engine, a local stand-in for the Anthropic API)',
  function () {
    this.timeout(300_000);
    const apiKey = `sk-ant-api03-host-e2e-${process.pid}-${Date.now().toString(36)}`;
    const settings: Record<string, unknown> = {};
    const originals: Record<string, unknown> = {};
    let engine: DockerEngine;
    let internet: TestInternet;
    let api: Awaited<ReturnType<typeof startMessagesApi>>;
    let folder: string;
    let scratch: string;

    suiteSetup(async () => {
      await vscode.extensions.getExtension(extensionId)?.activate();
      folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
      engine = await connectTestEngine();
      if (!(await engine.inspectImage(CLAUDE_IMAGE)))
        throw new Error(`This suite needs the image ${CLAUDE_IMAGE}; build it with \`bash scripts/build-test-images.sh\`.`);
      internet = await createTestInternet(engine, testOwnerId('host-claude'), { withoutNames: [MESSAGES_API_HOST] });
      api = await startMessagesApi(engine, internet, CLAUDE_SCRIPT);
      scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-claude-'));
      fs.writeFileSync(path.join(folder, GREETING_FILE), GREETING_BEFORE);
      // A box of an earlier suite has another image and no network: start from none.
      await vscode.commands.executeCommand('agentSandbox.reset', folder);
      Object.assign(settings, {
        image: CLAUDE_IMAGE,
        // The route needs no allowlist entry; the preset is what a user would pick, and resolves to the stand-in.
        ...internet.settings([], ['anthropic']),
        agentClis: [
          { name: AGENT_NAME, command: `env CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 ${CLAUDE_COMMAND}`, env: [], provider: 'anthropic' },
        ],
      });
      const config = vscode.workspace.getConfiguration('agentSandbox');
      // User level (the rig's own values there, e.g. its test image, come back in the teardown).
      for (const [key, value] of Object.entries(settings)) {
        originals[key] = config.inspect(key)?.globalValue;
        await config.update(key, value, vscode.ConfigurationTarget.Global);
      }
      const stored = (await vscode.commands.executeCommand('agentSandbox.setApiKey', { provider: 'anthropic', key: apiKey })) as SetApiKeyOutcome;
      assert.deepEqual(stored, { provider: 'anthropic', action: 'stored' });
    });

    suiteTeardown(async () => {
      for (const terminal of vscode.window.terminals) {
        if ((terminal.creationOptions as vscode.ExtensionTerminalOptions).pty) terminal.dispose();
      }
      await vscode.commands.executeCommand('agentSandbox.reset', folder);
      await vscode.commands.executeCommand('agentSandbox.setApiKey', { provider: 'anthropic', clear: true });
      const config = vscode.workspace.getConfiguration('agentSandbox');
      for (const [key, value] of Object.entries(originals)) await config.update(key, value, vscode.ConfigurationTarget.Global);
      if (folder) fs.rmSync(path.join(folder, GREETING_FILE), { force: true });
      await internet?.remove();
      if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    });

    test('claude -p --dangerously-skip-permissions edits a file and runs a command in the box; the edit is in the review, the stand-in got the real key, the box never held it, the history has the session', async () => {
      const terminal = (await vscode.commands.executeCommand('agentSandbox.runAgentCli', { folder, name: AGENT_NAME })) as vscode.Terminal;
      assert.ok(terminal, 'agentSandbox.runAgentCli returned the terminal');
      const pty = (terminal.creationOptions as vscode.ExtensionTerminalOptions).pty as SandboxPseudoterminal;
      let output = '';
      const listening = pty.onDidWrite((data) => (output += data));

      // While the CLI waits in its Bash call, look everywhere in the box for the key (and, as the control, for the
      // placeholder the CLI's environment holds), as the box's user.
      const box = await boxOf(engine, folder);
      const run: BoxCommandRunner = (command, stdin) => runInBox(engine, box, { command, stdin, outputLimitBytes: 4 << 20, timeoutMs: 120_000 });
      const scans = await scanWhileToolRuns(run, apiKey, MODEL_KEY_PLACEHOLDER);
      const end = await pty.ended;
      listening.dispose();
      assert.equal(end.exitCode, 0, `the CLI failed: ${end.error ?? ''}\n${output}`);
      assert.ok(output.includes(CLAUDE_FINAL_TEXT), `the terminal shows the CLI's answer: ${JSON.stringify(output.slice(-2000))}`);
      // Its first lines said which key the gateway adds, and for which host, before the CLI said anything.
      const intro = output.slice(0, output.indexOf(CLAUDE_FINAL_TEXT));
      assert.match(intro, /Anthropic API key/);
      assert.match(intro, /api\.anthropic\.com/);

      // The box never held the key: not in any process's environment or command line, not in any file…
      const pids = claudePids(scans.present);
      assert.ok(pids.length > 0, `the CLI was running during the scan: ${scans.present.processes.join(' | ')}`);
      assert.ok(
        pids.every((pid) => scans.present.hits.includes(`/proc/${pid}/environ`)),
        `control: the scan sees the CLI's environment: ${JSON.stringify(scans.present.hits)}`,
      );
      assert.deepEqual(scans.secret.hits, [], 'the key is nowhere in the box');
      assert.ok(scans.secret.files > 1000, `the scan read the box's files (${scans.secret.files})`);
      assert.deepEqual(
        scans.secret.unreadable.filter((u) => !/^\/proc\/1: /.test(u)),
        [],
      );
      // …nor in the box's, the gateway's or the relay's container configuration (environment, command, labels).
      const containers = await engine.call('listing', (d) => d.listContainers({ all: true, filters: { label: [`${LABEL_FOLDER}=${folder}`] } }));
      assert.ok(containers.length >= 3, `box, gateway and relay: ${JSON.stringify(containers.map((c) => c.Names))}`);
      for (const c of containers) {
        const inspected = await engine.call('inspecting', (d) => d.getContainer(c.Id).inspect());
        assert.ok(!JSON.stringify(inspected).includes(apiKey), `${c.Names[0]}'s configuration holds no key`);
      }

      // The stand-in API got the real key on every request, never the placeholder; the conversation ran to its end.
      const requests = await api.conversation();
      assert.deepEqual(
        requests.filter((r) => r.path === '/v1/messages').map((r) => r.turn),
        [0, 1, 2, 3],
        JSON.stringify(requests.map((r) => `${r.method} ${r.path}`)),
      );
      for (const request of requests) assert.equal(request.headers['x-api-key'], apiKey, `${request.method} ${request.path}`);
      assert.equal(requests.at(-1)!.toolResults!.at(-1), RAN_TEXT, 'the Bash call ran as the box user in the workspace');

      // The edit and the command's file are in the review; the workspace is untouched until approved.
      const pending = (await vscode.commands.executeCommand('agentSandbox.review.pending', folder)) as ChangeSet;
      const byPath = new Map(pending.changes.map((c) => [c.path, c]));
      assert.equal(byPath.get(GREETING_FILE)?.kind, 'modified', JSON.stringify(pending.changes.map((c) => [c.path, c.kind])));
      assert.equal(byPath.get(GREETING_FILE)?.hash, createHash('sha256').update(GREETING_AFTER).digest('hex'));
      assert.equal(byPath.get(RAN_FILE)?.kind, 'added');
      assert.equal(byPath.get(RAN_FILE)?.hash, createHash('sha256').update(`${RAN_TEXT}\n`).digest('hex'));
      assert.equal(fs.readFileSync(path.join(folder, GREETING_FILE), 'utf8'), GREETING_BEFORE);
      assert.equal(fs.existsSync(path.join(folder, RAN_FILE)), false);

      // The session is a run in the history: the agent, its network and the key the gateway added (by provider
      // name only), and the files it changed. No record holds the key.
      const target = path.join(scratch, 'history.json');
      const history = (await vscode.commands.executeCommand('agentSandbox.history.export', { path: target })) as ExportHistoryResult;
      const record = history.records.find((r) => r.id === pty.terminalId);
      assert.ok(record, `the session ${pty.terminalId} is in the history`);
      assert.equal(record.source, 'terminal');
      assert.equal(record.agent, AGENT_NAME);
      assert.match(record.command, /claude -p .* --dangerously-skip-permissions/);
      assert.equal(record.exitCode, 0);
      assert.equal(record.image?.reference, CLAUDE_IMAGE);
      assert.equal(record.policy?.network, 'allowlist');
      assert.deepEqual(record.policy?.modelKeys, ['anthropic']);
      // The calls it made: the route's base URL carries the session's id, so the gateway's records name it.
      const apiCalls = record.egress?.hosts.find((h) => h.host === 'api.anthropic.com');
      assert.ok(apiCalls && apiCalls.allowed >= 4 && apiCalls.denied === 0, `the session's egress: ${JSON.stringify(record.egress)}`);
      assert.deepEqual(record.files.map((f) => [f.path, f.kind]).sort(), [
        [GREETING_FILE, 'modified'],
        [RAN_FILE, 'added'],
      ]);
      assert.ok(!fs.readFileSync(target, 'utf8').includes(apiKey), 'the history holds no key');
    });
  },
);
