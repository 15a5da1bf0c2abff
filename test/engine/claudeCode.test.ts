// End to end on a real engine: the real Claude Code CLI (agent-sandbox-test/claude) runs in an allowlisted box
// with its permission prompts off, talks to the Messages API through the box's egress gateway, runs the tool
// calls it gets, and what it did comes back as pending changes; `npm ci` installs a locked, real package
// through the same gateway; and with the gateway's Anthropic route the CLI works with a placeholder while the
// real key is added outside the box, which never holds it.
//
// The real api.anthropic.com and registry.npmjs.org are unreachable from this machine (and no test may send
// traffic off it): both names belong to stand-ins on the test's own Docker network (test/engine/claudeCodeStandIns.ts),
// with certificates from a CA made for the test. Tunnelled (CONNECT) requests are TLS from the box to the
// stand-in, so there the box trusts that CA (`NODE_EXTRA_CA_CERTS`, as behind a company proxy); the gateway's
// route makes its own TLS and trusts it through `agentSandbox.gatewayCaFile`.
import * as assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ProtocolConnection } from 'vscode-languageserver-protocol/node';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { sealModelKeys } from '../../src/core/egress/sealedKeys';
import { MODEL_KEY_PLACEHOLDER, providerBaseUrl } from '../../src/core/egress/modelProviders';
import {
  CollectRequest,
  ConfigureRequest,
  EgressAttemptsRequest,
  ExecRequest,
  ReadProposalRequest,
  ResetRequest,
  SetModelKeysRequest,
} from '../../src/shared/protocol';
import { claudePids, scanWhileToolRuns, type BoxCommandRunner } from './claudeCodeKeyScan';
import {
  CLAUDE_COMMAND,
  CLAUDE_FINAL_TEXT,
  CLAUDE_IMAGE,
  CLAUDE_SCRIPT,
  GREETING_AFTER,
  GREETING_BEFORE,
  GREETING_FILE,
  MESSAGES_API_HOST,
  lockedProject,
  RAN_FILE,
  RAN_TEXT,
  realPackageFromCache,
  startMessagesApi,
  startNpmRegistry,
  type RealPackage,
  type StandIn,
} from './claudeCodeStandIns';
import { createTestInternet, type TestInternet } from './egressInternet';
import { connectTestEngine, testOwnerId } from './engineHarness';
import { startEngineServer, type EngineServerProcess } from '../builders/engineServer';

/** Waits for `check` to hold over the folder's attempts (the gateway reports an attempt when it ends). */
async function attemptsWhen(
  connection: ProtocolConnection,
  params: EgressAttemptsRequest.Params,
  check: (result: EgressAttemptsRequest.Result) => boolean,
): Promise<EgressAttemptsRequest.Result> {
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
  let initialized: EngineServerProcess['initialized'];

  suiteSetup(async () => {
    engine = await connectTestEngine();
    if (!(await engine.inspectImage(CLAUDE_IMAGE)))
      throw new Error(`This suite needs the image ${CLAUDE_IMAGE}; build it with \`bash scripts/build-test-images.sh\`.`);
    pkg = realPackageFromCache('ignore');
    internet = await createTestInternet(engine, ownerId, { withoutNames: [MESSAGES_API_HOST] });
    api = await startMessagesApi(engine, internet, CLAUDE_SCRIPT);
    registry = await startNpmRegistry(engine, internet, pkg);
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-claude-e2e-'));
    writeFileSync(path.join(folder, GREETING_FILE), GREETING_BEFORE);
    // Not `*.pem`: that name is on the secrets deny-list and would not reach the box.
    writeFileSync(path.join(folder, 'test-ca.txt'), internet.caPem);
    for (const [name, content] of Object.entries(lockedProject(pkg))) writeFileSync(path.join(folder, name), content);
    ({
      process: server,
      connection,
      initialized,
    } = await startEngineServer({ box: { image: CLAUDE_IMAGE, memoryMiB: 1024, idleTimeoutMinutes: 0 } }));
    await connection.sendRequest(ConfigureRequest.type, {
      engine: {},
      box: { image: CLAUDE_IMAGE, memoryMiB: 1024, idleTimeoutMinutes: 0, caches: false },
      // The presets a user would pick; their names resolve to the stand-ins on the test network. The gateway
      // trusts the test CA for the TLS it makes itself, on the provider route (the last test).
      egress: internet.settings([], ['anthropic', 'npm']),
    });
  });

  suiteTeardown(async () => {
    await connection?.sendRequest(ResetRequest.type, {}).catch(() => undefined);
    connection?.dispose();
    server?.kill();
    await internet?.remove();
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  test("claude -p --dangerously-skip-permissions, as the box user, runs the stand-in model's Read, Edit and Bash calls; the edit and the command's file are pending changes (the key given to the box is in its environment: the scan's control)", async () => {
    const claude = connection.sendRequest(ExecRequest.type, {
      folder,
      runId: 'claude-run',
      timeoutSeconds: 240,
      command: `ANTHROPIC_API_KEY=${apiKey} NODE_EXTRA_CA_CERTS=/workspace/test-ca.txt CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 ${CLAUDE_COMMAND}`,
    });
    let n = 0;
    const scans = await scanWhileToolRuns(
      (command, stdin) => connection.sendRequest(ExecRequest.type, { folder, runId: `look-${++n}`, command, stdin }),
      apiKey,
      apiKey,
    );
    const run = await claude;
    assert.equal(run.exitCode, 0, `claude failed: ${run.stdout}\n${run.stderr}`);
    assert.equal(run.stdout.trim(), CLAUDE_FINAL_TEXT);
    assert.equal(run.policy.network, 'allowlist');
    // Handed to the box, the key is where the scan looks: the CLI's environment.
    const pids = claudePids(scans.secret);
    assert.ok(pids.length > 0, `the CLI was running during the scan: ${scans.secret.processes.join(' | ')}`);
    assert.ok(
      pids.some((pid) => scans.secret.hits.includes(`/proc/${pid}/environ`)),
      `the scan found the key in the CLI's environment: ${JSON.stringify(scans.secret.hits)}`,
    );

    // The stand-in played the whole conversation: each tool's result came back in the next request.
    const requests = await api.conversation();
    // Against api.anthropic.com the CLI also asks for its organisation's managed settings (404 here: none).
    const other = requests.filter((r) => r.path !== '/v1/messages');
    assert.deepEqual(other.map((r) => `${r.method} ${r.path} ${r.headers['x-api-key'] === apiKey}`).sort(), [
      'GET /api/claude_code/policy_limits true',
      'GET /api/claude_code/settings true',
    ]);
    const conversation = requests.filter((r) => r.path === '/v1/messages');
    assert.deepEqual(
      conversation.map((r) => [r.method, r.turn, r.stream]),
      [0, 1, 2, 3].map((turn) => ['POST', turn, true]),
    );
    for (const request of conversation) {
      assert.equal(request.headers['x-api-key'], apiKey, 'the CLI sent the key in x-api-key');
      assert.match(String(request.headers['user-agent']), /^claude-cli\/2\./);
      assert.ok(request.toolNames!.includes('Bash') && request.toolNames!.includes('Edit'), JSON.stringify(request.toolNames));
    }
    const results = conversation[3]!.toolResults!;
    assert.equal(results.length, 3, JSON.stringify(results));
    assert.match(results[0]!, /Hello from the workspace\./, 'Read saw the mirrored file');
    assert.equal(results[2], RAN_TEXT, 'Bash ran as the box user in the workspace');

    // What it did is a pending change, nothing more.
    const changes = await connection.sendRequest(CollectRequest.type, { folder });
    const byPath = new Map(changes.changes.map((c) => [c.path, c]));
    assert.equal(byPath.get(GREETING_FILE)?.kind, 'modified', JSON.stringify(changes.changes.map((c) => [c.path, c.kind])));
    assert.equal(byPath.get(RAN_FILE)?.kind, 'added');
    const read = async (p: string): Promise<string> =>
      Buffer.from((await connection.sendRequest(ReadProposalRequest.type, { folder, path: p })).base64, 'base64').toString('utf8');
    assert.equal(await read(GREETING_FILE), GREETING_AFTER);
    assert.equal(await read(RAN_FILE), `${RAN_TEXT}\n`);
    // The CLI's own state stayed in its home (not the workspace).
    assert.deepEqual(
      [...byPath.keys()].filter((p) => p.startsWith('.claude')),
      [],
    );

    // It reached api.anthropic.com through the gateway and tried nothing else.
    const attempts = await attemptsWhen(connection, { folder, runId: 'claude-run' }, (r) => r.attempts.length >= 1);
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
    // npm took the lockfile's tarball (npm ci resolves nothing) and checked its integrity.
    // (npm's update notifier also asks for the document of `npm` itself: a 404 here.)
    const requests = (await registry.requests()).filter((r) => r.path !== '/npm');
    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.path}`),
      [`GET /${pkg.name}/-/${pkg.name}-${pkg.version}.tgz`],
    );
    assert.match(String(requests[0]!.headers['user-agent']), /^npm\//);
    const attempts = await attemptsWhen(connection, { folder, runId: 'npm-ci' }, (r) => r.attempts.length >= 1);
    assert.deepEqual([...new Set(attempts.attempts.map((a) => `${a.host}:${a.port} ${a.decision}`))], ['registry.npmjs.org:443 allowed']);
    // The installed package is a pending change like anything else the box made.
    const changes = await connection.sendRequest(CollectRequest.type, { folder });
    const installed = changes.changes.find((c) => c.path === `node_modules/${pkg.name}/package.json`);
    assert.equal(installed?.kind, 'added');
    const manifest = JSON.parse(
      Buffer.from((await connection.sendRequest(ReadProposalRequest.type, { folder, path: installed!.path })).base64, 'base64').toString('utf8'),
    ) as { version: string };
    assert.equal(manifest.version, pkg.version);
  });

  test('with a key set for the gateway (sealed to the engine server), the CLI works with a placeholder: the stand-in gets the real key, which is in no process and no file of the box', async () => {
    const routeKey = `${apiKey}-route`;
    const publicKey = initialized.modelKeys?.publicKey;
    assert.ok(publicKey, 'the initialize result has the public key model keys are sealed to');
    const set = await connection.sendRequest(SetModelKeysRequest.type, { sealed: sealModelKeys(publicKey, { anthropic: routeKey }) });
    assert.deepEqual(set.providers, ['anthropic']);
    // A folder of its own: a new box, made with the key set (the first folder's box held a key in test one).
    const routed = mkdtempSync(path.join(os.tmpdir(), 'as-claude-route-'));
    try {
      writeFileSync(path.join(routed, GREETING_FILE), GREETING_BEFORE);
      const before = (await api.conversation()).length;
      // Nothing but the command: the run gets the route's base URL and the placeholder from the server.
      const claude = connection.sendRequest(ExecRequest.type, {
        folder: routed,
        runId: 'claude-route',
        timeoutSeconds: 240,
        command: `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 ${CLAUDE_COMMAND}`,
      });
      let n = 0;
      const look: BoxCommandRunner = (command, stdin) =>
        connection.sendRequest(ExecRequest.type, { folder: routed, runId: `route-look-${++n}`, command, stdin });
      const scans = await scanWhileToolRuns(look, routeKey, MODEL_KEY_PLACEHOLDER);
      const run = await claude;
      assert.equal(run.exitCode, 0, `claude failed: ${run.stdout}\n${run.stderr}`);
      assert.equal(run.stdout.trim(), CLAUDE_FINAL_TEXT);
      assert.deepEqual(run.policy.modelKeys, ['anthropic'], "the run's policy names the key the gateway added");
      const env = await connection.sendRequest(ExecRequest.type, { folder: routed, runId: 'route-env', command: 'env | grep ^ANTHROPIC_ | sort' });
      assert.equal(env.stdout, `ANTHROPIC_API_KEY=${MODEL_KEY_PLACEHOLDER}\nANTHROPIC_BASE_URL=${providerBaseUrl('anthropic', 'route-env')}\n`);

      // The control: the scan sees the CLI's environment (it holds the placeholder)…
      const pids = claudePids(scans.present);
      assert.ok(pids.length > 0, `the CLI was running during the scan: ${scans.present.processes.join(' | ')}`);
      assert.ok(
        pids.every((pid) => scans.present.hits.includes(`/proc/${pid}/environ`)),
        JSON.stringify(scans.present.hits),
      );
      // …and the real key is nowhere: no process's environment or command line, no file.
      assert.deepEqual(scans.secret.hits, []);
      assert.ok(scans.secret.files > 1000, `the scan read the box's files (${scans.secret.files})`);
      assert.deepEqual(
        scans.secret.unreadable.filter((u) => !/^\/proc\/1: /.test(u)),
        [],
        'nothing the box user can reach was left out',
      );

      // The stand-in got the real key on every request of this conversation, never the placeholder.
      const conversation = (await api.conversation()).slice(before);
      assert.deepEqual(
        conversation.filter((r) => r.path === '/v1/messages').map((r) => r.turn),
        [0, 1, 2, 3],
        JSON.stringify(conversation.map((r) => r.path)),
      );
      for (const request of conversation) assert.equal(request.headers['x-api-key'], routeKey, `${request.method} ${request.path}`);
      // The gateway's records for this box: the route's requests, each with the key added, and nothing else.
      const attempts = await attemptsWhen(connection, { folder: routed }, (r) => r.attempts.length >= 4);
      assert.deepEqual(
        [...new Set(attempts.attempts.map((a) => `${a.kind} ${a.host}:${a.port} ${a.decision} ${a.reason}`))],
        ['http api.anthropic.com:443 allowed provider-key'],
      );
      // Each call names the run (its base URL carries the run id), so the history can show them under it.
      const byRun = await connection.sendRequest(EgressAttemptsRequest.type, { folder: routed, runId: 'claude-route' });
      assert.equal(byRun.attempts.filter((a) => a.path === '/v1/messages').length, 4, JSON.stringify(byRun.attempts.map((a) => [a.runId, a.path])));
      // What it did is a pending change of that folder.
      const changes = await connection.sendRequest(CollectRequest.type, { folder: routed });
      assert.deepEqual(
        changes.changes.map((c) => [c.path, c.kind]),
        [
          [GREETING_FILE, 'modified'],
          [RAN_FILE, 'added'],
        ],
      );
    } finally {
      await connection.sendRequest(ResetRequest.type, { folder: routed }).catch(() => undefined);
      rmSync(routed, { recursive: true, force: true });
    }
  });
});
