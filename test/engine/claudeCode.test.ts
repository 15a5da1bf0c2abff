// End to end on a real engine, through the engine server as any client drives it: the real Claude Code CLI
// (agent-sandbox-test/claude) runs in an allowlisted box with its permission prompts off, talks to the Messages
// API through the box's egress gateway, runs the tool calls it gets, and what it did comes back as pending
// changes; and `npm ci` installs a locked, real package through the same gateway.
//
// The real api.anthropic.com and registry.npmjs.org are unreachable from this machine (and no test may send
// traffic off it): both names belong to stand-ins on the test's own Docker network (test/engine/claudeCodeStandIns.ts),
// with certificates from a CA made for the test. The box trusts that CA the way a developer behind a corporate
// proxy would (`NODE_EXTRA_CA_CERTS`); the gateway only tunnels, so TLS runs from the CLI to the stand-in.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { CollectRequest, ConfigureRequest, EgressAttemptsRequest, ExecRequest, ReadProposalRequest, ResetRequest } from '../../src/shared/protocol';
import type { ProtocolConnection } from 'vscode-languageserver-protocol/node';
import type { ChildProcess } from 'node:child_process';
import type { ScriptedTurn } from '../standIns/messagesApiServer';
import { CLAUDE_IMAGE, lockedProject, realPackageFromCache, startMessagesApi, startNpmRegistry, type RealPackage, type StandIn } from './claudeCodeStandIns';
import { createTestInternet, type TestInternet } from './egressInternet';
import { connectTestEngine, TEST_IMAGES, testOwnerId } from './engineHarness';
import { startEngineServer } from './engineServer';

/** What the stand-in model asks Claude Code to do: read and edit a file, run a command, then report. */
export const CLAUDE_SCRIPT: ScriptedTurn[] = [
  { tool: { name: 'Read', input: { file_path: '/workspace/README.md' } } },
  { tool: { name: 'Edit', input: { file_path: '/workspace/README.md', old_string: 'Hello from the workspace.', new_string: 'Hello from Claude Code, edited in the box.' } } },
  { tool: { name: 'Bash', input: { command: 'echo "ran as uid $(id -u) in $(pwd)" > ran.txt && cat ran.txt', description: 'Record who ran and where' } } },
  { text: 'Done: README.md edited and ran.txt written.' },
];

/** Waits for `check` to hold over the folder's attempts (the gateway reports an attempt when it ends). */
async function attemptsWhen(connection: ProtocolConnection, params: EgressAttemptsRequest.Params, check: (result: EgressAttemptsRequest.Result) => boolean): Promise<EgressAttemptsRequest.Result> {
  let result = await connection.sendRequest(EgressAttemptsRequest.type, params);
  for (let i = 0; i < 100 && !check(result); i++) {
    await new Promise((r) => setTimeout(r, 100));
    result = await connection.sendRequest(EgressAttemptsRequest.type, params);
  }
  return result;
}

suite('engine: the real Claude Code CLI and npm ci in an allowlisted box, against local stand-ins for their services', function () {
  this.timeout(300_000);
  const ownerId = testOwnerId('claude');
  const apiKey = `sk-ant-api03-e2e-${process.pid}-${Date.now().toString(36)}`;
  let engine: DockerEngine;
  let internet: TestInternet;
  let api: Awaited<ReturnType<typeof startMessagesApi>>;
  let registry: StandIn;
  let pkg: RealPackage;
  let folder: string;
  let server: ChildProcess;
  let connection: ProtocolConnection;

  suiteSetup(async () => {
    engine = await connectTestEngine();
    if (!(await engine.inspectImage(CLAUDE_IMAGE))) throw new Error(`This suite needs the image ${CLAUDE_IMAGE}; build it with \`bash scripts/build-test-images.sh\`.`);
    pkg = realPackageFromCache('ignore');
    internet = await createTestInternet(engine, ownerId);
    api = await startMessagesApi(engine, internet, CLAUDE_SCRIPT);
    registry = await startNpmRegistry(engine, internet, pkg);
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-claude-e2e-'));
    writeFileSync(path.join(folder, 'README.md'), '# A project\n\nHello from the workspace.\n');
    // Not `*.pem`: that name is on the secrets deny-list and would not reach the box.
    writeFileSync(path.join(folder, 'test-ca.txt'), internet.caPem);
    for (const [name, content] of Object.entries(lockedProject(pkg))) writeFileSync(path.join(folder, name), content);
    ({ process: server, connection } = await startEngineServer({ box: { image: CLAUDE_IMAGE, memoryMiB: 1024, idleTimeoutMinutes: 0 } }));
    await connection.sendRequest(ConfigureRequest.type, {
      engine: {},
      box: { image: CLAUDE_IMAGE, memoryMiB: 1024, idleTimeoutMinutes: 0 },
      egress: {
        network: 'allowlist',
        allowedHosts: [],
        // The presets a user would pick; their names resolve to the stand-ins on the test network.
        networkPresets: ['anthropic', 'npm'],
        gatewayImage: TEST_IMAGES.net,
        gatewayNetwork: internet.networkName,
        gatewayDns: ['127.0.0.1'],
      },
    });
  });

  suiteTeardown(async () => {
    await connection?.sendRequest(ResetRequest.type, {}).catch(() => undefined);
    connection?.dispose();
    server?.kill();
    await internet?.remove();
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  test('claude -p --dangerously-skip-permissions, as the box user, runs the stand-in model\'s Read, Edit and Bash calls; the edit and the command\'s file are pending changes', async () => {
    const run = await connection.sendRequest(ExecRequest.type, {
      folder,
      runId: 'claude-run',
      timeoutSeconds: 240,
      command:
        `ANTHROPIC_API_KEY=${apiKey} NODE_EXTRA_CA_CERTS=/workspace/test-ca.txt CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 ` +
        `claude -p "Greet from the box in README.md, then record who ran you in ran.txt." --dangerously-skip-permissions`,
    });
    assert.equal(run.exitCode, 0, `claude failed: ${run.stdout}\n${run.stderr}`);
    assert.equal(run.stdout.trim(), 'Done: README.md edited and ran.txt written.');
    assert.equal(run.policy.network, 'allowlist');

    // The stand-in played the whole conversation: each tool's result came back in the next request.
    const requests = await api.conversation();
    // Against api.anthropic.com the CLI also asks for its organisation's managed settings (404 here: none).
    const other = requests.filter((r) => r.path !== '/v1/messages');
    assert.deepEqual(other.map((r) => `${r.method} ${r.path} ${r.headers['x-api-key'] === apiKey}`).sort(), ['GET /api/claude_code/policy_limits true', 'GET /api/claude_code/settings true']);
    const conversation = requests.filter((r) => r.path === '/v1/messages');
    assert.deepEqual(conversation.map((r) => [r.method, r.path, r.turn, r.stream]), [0, 1, 2, 3].map((turn) => ['POST', '/v1/messages', turn, true]));
    for (const request of conversation) {
      assert.equal(request.headers['x-api-key'], apiKey, 'the CLI sent the key in x-api-key');
      assert.match(String(request.headers['user-agent']), /^claude-cli\/2\./);
      assert.ok(request.toolNames!.includes('Bash') && request.toolNames!.includes('Edit'), JSON.stringify(request.toolNames));
    }
    const results = conversation[3]!.toolResults!;
    assert.equal(results.length, 3, JSON.stringify(results));
    assert.match(results[0]!, /Hello from the workspace\./, 'Read saw the mirrored file');
    assert.equal(results[2], 'ran as uid 1000 in /workspace', 'Bash ran as the box user in the workspace');

    // What it did is a pending change, nothing more.
    const changes = await connection.sendRequest(CollectRequest.type, { folder });
    const byPath = new Map(changes.changes.map((c) => [c.path, c]));
    assert.equal(byPath.get('README.md')?.kind, 'modified', JSON.stringify(changes.changes.map((c) => [c.path, c.kind])));
    assert.equal(byPath.get('ran.txt')?.kind, 'added');
    const read = async (p: string): Promise<string> => Buffer.from((await connection.sendRequest(ReadProposalRequest.type, { folder, path: p })).base64, 'base64').toString('utf8');
    assert.equal(await read('README.md'), '# A project\n\nHello from Claude Code, edited in the box.\n');
    assert.equal(await read('ran.txt'), 'ran as uid 1000 in /workspace\n');
    // The CLI's own state stayed in its home (not the workspace).
    assert.deepEqual([...byPath.keys()].filter((p) => p.startsWith('.claude')), []);

    // It reached api.anthropic.com through the gateway and tried nothing else.
    const attempts = await attemptsWhen(connection, { folder, runId: 'claude-run' }, (r) => r.attempts.length >= 1);
    assert.ok(attempts.attempts.length >= 1);
    assert.deepEqual(
      [...new Set(attempts.attempts.map((a) => `${a.kind} ${a.host}:${a.port} ${a.decision}`))],
      ['connect api.anthropic.com:443 allowed'],
      JSON.stringify(attempts.attempts),
    );
  });

  test('npm ci installs a locked, real package (its published tarball) from the registry stand-in through the gateway', async () => {
    const run = await connection.sendRequest(ExecRequest.type, {
      folder,
      runId: 'npm-ci',
      timeoutSeconds: 180,
      command: `NODE_EXTRA_CA_CERTS=/workspace/test-ca.txt npm ci --no-audit --no-fund && node -p "require('${pkg.name}')().add('*.log').ignores('debug.log')"`,
    });
    assert.equal(run.exitCode, 0, `npm ci failed: ${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /added 1 package/);
    assert.match(run.stdout, /\ntrue\n$/);
    // npm took the lockfile's tarball (no resolution: npm ci asks for nothing else), and checked its integrity.
    // (npm's update notifier also asks for the document of `npm` itself: a 404 here.)
    const requests = (await registry.requests()).filter((r) => r.path !== '/npm');
    assert.deepEqual(requests.map((r) => `${r.method} ${r.path}`), [`GET /${pkg.name}/-/${pkg.name}-${pkg.version}.tgz`]);
    assert.match(String(requests[0]!.headers['user-agent']), /^npm\//);
    const attempts = await attemptsWhen(connection, { folder, runId: 'npm-ci' }, (r) => r.attempts.length >= 1);
    assert.deepEqual([...new Set(attempts.attempts.map((a) => `${a.host}:${a.port} ${a.decision}`))], ['registry.npmjs.org:443 allowed']);
    // The installed package is a pending change like anything else the box made.
    const changes = await connection.sendRequest(CollectRequest.type, { folder });
    const installed = changes.changes.find((c) => c.path === `node_modules/${pkg.name}/package.json`);
    assert.equal(installed?.kind, 'added');
    const manifest = JSON.parse(Buffer.from((await connection.sendRequest(ReadProposalRequest.type, { folder, path: installed!.path })).base64, 'base64').toString('utf8')) as { version: string };
    assert.equal(manifest.version, pkg.version);
  });
});
