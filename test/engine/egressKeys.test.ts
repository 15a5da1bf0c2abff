// Model keys that never enter the box, on a real engine, through the engine server as VS Code drives it. The
// provider is a stand-in for api.anthropic.com on the suite's own test network (test/engine/egressInternet.ts):
// the real API is unreachable here, and no traffic leaves this machine. The gateway trusts the stand-in's test
// CA through agentSandbox.gatewayCaFile, as it would a company's TLS-inspecting proxy.
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createProtocolConnection,
  InitializeRequest,
  StreamMessageReader,
  StreamMessageWriter,
  type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { sealModelKeys } from '../../src/core/egress/sealedKeys';
import { MODEL_KEY_PLACEHOLDER, type ModelKeys } from '../../src/core/egress/modelProviders';
import {
  ConfigureRequest,
  EgressAttemptsRequest,
  EnsureBoxRequest,
  ExecRequest,
  ResetRequest,
  SetModelKeysRequest,
  type EgressSettings,
  type ExecResult,
  type InitializeResultExtras,
} from '../../src/shared/protocol';
import { connectTestEngine, removeEverythingOwnedBy, TEST_IMAGES, testOwnerId } from './engineHarness';
import { createTestInternet, execIn, type TestInternet } from './egressInternet';
import { serverJs } from '../builders/engineServer';

/** A grep pattern that matches `text` without containing it (a bracketed character), so the search itself never holds the key. */
function patternFor(text: string): string {
  return `${text.slice(0, 8)}[${text[8]}]${text.slice(9)}`;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

suite('engine: model keys are added by the gateway and never enter the box (stand-in api.anthropic.com)', function () {
  this.timeout(240_000);
  const ownerId = testOwnerId('egress-keys');
  let engine: DockerEngine;
  let internet: TestInternet;
  let server: ChildProcess;
  let connection: ProtocolConnection;
  let publicKey: string;
  let folder: string;
  /** Everything the server said: its log messages and its stderr. */
  const serverOutput: string[] = [];
  const results: ExecResult[] = [];
  // Unique per run: nothing on this machine holds it before the test.
  const realKey = `sk-ant-test-${randomBytes(24).toString('hex')}`;
  const newKey = `sk-ant-test-${randomBytes(24).toString('hex')}`;
  let egress: Partial<EgressSettings>;

  const run = async (command: string, runId?: string): Promise<ExecResult> => {
    const result = await connection.sendRequest(ExecRequest.type, { folder, command, ...(runId ? { runId } : {}) });
    results.push(result);
    return result;
  };
  const runOk = async (command: string): Promise<string> => {
    const result = await run(command);
    assert.equal(result.exitCode, 0, `${command}\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  };
  const setKeys = (keys: ModelKeys) => connection.sendRequest(SetModelKeysRequest.type, { sealed: sealModelKeys(publicKey, keys) });

  suiteSetup(async () => {
    engine = await connectTestEngine();
    internet = await createTestInternet(engine, ownerId);
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-egress-keys-'));
    writeFileSync(path.join(folder, 'README.md'), 'a workspace\n');
    server = spawn(process.execPath, [serverJs, '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    server.stderr!.on('data', (chunk: Buffer) => serverOutput.push(chunk.toString('utf8')));
    connection = createProtocolConnection(new StreamMessageReader(server.stdout!), new StreamMessageWriter(server.stdin!));
    connection.onNotification('window/logMessage', (p: { message: string }) => void serverOutput.push(p.message));
    connection.listen();
    const initialized = (await connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: null,
      capabilities: {},
    })) as unknown as InitializeResultExtras;
    publicKey = initialized.modelKeys.publicKey;
    egress = internet.settings(['registry.test']);
    await connection.sendRequest(ConfigureRequest.type, {
      engine: {},
      box: { image: TEST_IMAGES.net, memoryMiB: 256, idleTimeoutMinutes: 0, caches: false },
      egress,
    });
    const set = await setKeys({ anthropic: realKey });
    assert.deepEqual(set, { providers: ['anthropic'], updatedBoxes: 0, notes: [] });
    await connection.sendRequest(EnsureBoxRequest.type, { folder });
    await connection.sendRequest(ExecRequest.type, { folder, command: 'cat > /tmp/ca.pem', stdin: internet.caPem });
  });

  suiteTeardown(async () => {
    await connection?.sendRequest(ResetRequest.type, {}).catch(() => undefined);
    connection?.dispose();
    server?.kill();
    await removeEverythingOwnedBy(engine, ownerId);
    await internet?.remove();
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  test("the box gets the base URL through its relay and a placeholder key; the run's policy names the provider", async () => {
    const result = await run('env | grep ^ANTHROPIC_ | sort', 'keys-env');
    // The base URL carries the run id, so the gateway's record of each call names the run.
    assert.equal(
      result.stdout,
      `ANTHROPIC_API_KEY=${MODEL_KEY_PLACEHOLDER}\nANTHROPIC_BASE_URL=http://127.0.0.1:3128/_agent-sandbox/run-keys-env/anthropic\n`,
    );
    assert.deepEqual(result.policy.modelKeys, ['anthropic']);
  });

  test('a request from the box with the placeholder arrives at the provider with the real key; the attempt is recorded with host, path, method, status and bytes', async () => {
    const out = await runOk(
      'curl -sS --fail -H "x-api-key: $ANTHROPIC_API_KEY" -H "content-type: application/json" -d \'{"model":"m"}\' "$ANTHROPIC_BASE_URL/v1/messages"',
    );
    const answer = JSON.parse(out) as { host: string; url: string; scheme: string; apiKeySha256: string };
    assert.deepEqual(
      { host: answer.host, url: answer.url, scheme: answer.scheme, key: answer.apiKeySha256 },
      { host: 'api.anthropic.com', url: '/v1/messages', scheme: 'https', key: sha256(realKey) },
    );
    // Control: the box itself sent only the placeholder (the same stand-in, reached without the route).
    const direct = await runOk('curl -sS --fail --cacert /tmp/ca.pem -H "x-api-key: $ANTHROPIC_API_KEY" https://registry.test/v1/messages');
    assert.equal((JSON.parse(direct) as { apiKeySha256: string }).apiKeySha256, sha256(MODEL_KEY_PLACEHOLDER));
    const { attempts } = await connection.sendRequest(EgressAttemptsRequest.type, { folder });
    const routed = attempts.find((a) => a.reason === 'provider-key');
    assert.ok(routed, JSON.stringify(attempts));
    assert.deepEqual(
      {
        host: routed.host,
        port: routed.port,
        path: routed.path,
        method: routed.method,
        status: routed.status,
        decision: routed.decision,
        address: routed.address,
      },
      {
        host: 'api.anthropic.com',
        port: 443,
        path: '/v1/messages',
        method: 'POST',
        status: 200,
        decision: 'allowed',
        address: internet.upstreamAddress,
      },
    );
    assert.equal(routed.bytesUp, 13);
    assert.ok(routed.bytesDown > 100);
  });

  test('server-sent events stream through the route: the box reads the first event before the provider sends the second', async () => {
    // The stand-in sends the second event only after /release was asked for, and the box asks for it only once
    // it has read the first: behind a buffering gateway this run would never end.
    const result = await run(
      '(curl -sS -N -H "x-api-key: $ANTHROPIC_API_KEY" "$ANTHROPIC_BASE_URL/v1/stream" > /tmp/events &) && ' +
        'for i in $(seq 1 400); do grep -q "event: one" /tmp/events 2>/dev/null && break; sleep 0.05; done; cat /tmp/events; echo ---; ' +
        'curl -sS --fail --cacert /tmp/ca.pem https://registry.test/release; ' +
        'for i in $(seq 1 400); do grep -q "event: two" /tmp/events && break; sleep 0.05; done; cat /tmp/events',
    );
    const [before, after] = result.stdout.split('---\n');
    assert.match(before!, /^event: one\ndata: \{"key":"[0-9a-f]{64}"\}/, result.stderr);
    assert.doesNotMatch(before!, /event: two/);
    assert.match(after!, /^released\nevent: one[\s\S]*event: two/);
    assert.ok(before!.includes(sha256(realKey)), 'the streamed request carried the real key');
  });

  test("the key is in no box process's environment and no box file; controls: the same searches find the placeholder", async () => {
    const environ = await run(
      `cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c -e '${patternFor(realKey)}' -e '${patternFor(newKey)}'; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '${patternFor(MODEL_KEY_PLACEHOLDER)}'`,
    );
    const [keyCount, placeholderCount] = environ.stdout.trim().split('\n').map(Number);
    assert.equal(keyCount, 0);
    assert.ok(placeholderCount! > 0, environ.stdout);
    await runOk(`echo ${MODEL_KEY_PLACEHOLDER} > /tmp/control.txt`);
    const files = await run(
      // Regular files only (a fifo would block the read), everywhere but the kernel's views.
      `find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -type f -print0 2>/dev/null | xargs -0 grep -l -s -e '${patternFor(realKey)}' -e '${patternFor(MODEL_KEY_PLACEHOLDER)}'; true`,
    );
    assert.deepEqual(files.stdout.trim().split('\n'), ['/tmp/control.txt'], files.stderr);
  });

  test("the key is not in the egress volume, the gateway's or relay's container configuration, the run results, the attempts or the server's output", async () => {
    const boxName = (await connection.sendRequest(EnsureBoxRequest.type, { folder })).volumeName.replace(/-workspace$/, '');
    const containers = await engine.call('listing', (d) => d.listContainers({ all: true, filters: { label: [`dev.agent-sandbox.box=${boxName}`] } }));
    assert.equal(containers.length, 2);
    for (const c of containers) {
      const inspected = await engine.call('inspecting', (d) => d.getContainer(c.Id).inspect());
      assert.ok(!JSON.stringify(inspected).includes(realKey), `docker inspect of the ${c.Labels['dev.agent-sandbox.role']}`);
    }
    const gateway = containers.find((c) => c.Labels['dev.agent-sandbox.role'] === 'gateway')!;
    // The volume the relay (box side) mounts; and control: the gateway process does hold it (it adds it).
    const volume = await execIn(engine, gateway.Id, ['sh', '-c', `grep -r -l -s -e '${patternFor(realKey)}' /egress; echo done`]);
    assert.equal(volume.stdout.trim(), 'done');
    const all = JSON.stringify({ results, attempts: await connection.sendRequest(EgressAttemptsRequest.type, { folder }) });
    assert.ok(!all.includes(realKey));
    assert.ok(all.includes('api.anthropic.com'), 'control: the records are the ones of these requests');
    const output = serverOutput.join('\n');
    assert.ok(!output.includes(realKey), 'the server never logs the key');
    assert.match(output, /model keys set for: anthropic/, "control: the server's log was captured");
  });

  test('settings changes reach the running box: new rules and a new key in place (same gateway), then network "none" and back give it a new way out', async () => {
    const gatewayOf = async (): Promise<string[]> => {
      const boxName = (await connection.sendRequest(EnsureBoxRequest.type, { folder })).volumeName.replace(/-workspace$/, '');
      const list = await engine.call('listing', (d) =>
        d.listContainers({ all: true, filters: { label: [`dev.agent-sandbox.box=${boxName}`, 'dev.agent-sandbox.role=gateway'] } }),
      );
      return list.map((c) => c.Id);
    };
    const before = await gatewayOf();
    const boxBefore = (await connection.sendRequest(EnsureBoxRequest.type, { folder })).containerId;
    const allowedBefore = await run('curl -sS --cacert /tmp/ca.pem https://other.test/');
    assert.match(allowedBefore.stderr, /CONNECT tunnel failed, response 403/);
    await connection.sendRequest(ConfigureRequest.type, {
      engine: {},
      box: { image: TEST_IMAGES.net, memoryMiB: 256, idleTimeoutMinutes: 0, caches: false },
      egress: { ...egress, allowedHosts: ['other.test'] },
    });
    assert.deepEqual(await setKeys({ anthropic: newKey }), { providers: ['anthropic'], updatedBoxes: 1, notes: [] });
    const allowedAfter = await runOk('curl -sS --fail --cacert /tmp/ca.pem https://other.test/');
    assert.equal((JSON.parse(allowedAfter) as { upstream: string }).upstream, 'other');
    const deniedAfter = await run('curl -sS --cacert /tmp/ca.pem https://registry.test/');
    assert.match(deniedAfter.stderr, /CONNECT tunnel failed, response 403/);
    const keyed = await runOk('curl -sS --fail -H "x-api-key: $ANTHROPIC_API_KEY" -d "{}" "$ANTHROPIC_BASE_URL/v1/messages"');
    assert.equal((JSON.parse(keyed) as { apiKeySha256: string }).apiKeySha256, sha256(newKey));
    assert.deepEqual(await gatewayOf(), before, 'the same gateway took the new rules and key');
    assert.deepEqual((await run('true')).policy.allowedHosts, ['other.test']);

    // Cleared keys: the route answers 403 naming the command, and the box's runs get no base URL any more.
    await setKeys({});
    assert.equal((await run('env | grep -c ^ANTHROPIC_; true')).stdout.trim(), '0');

    await connection.sendRequest(ConfigureRequest.type, {
      engine: {},
      box: { image: TEST_IMAGES.net, memoryMiB: 256, idleTimeoutMinutes: 0, caches: false },
      egress: { ...egress, network: 'none' },
    });
    assert.deepEqual(await gatewayOf(), [], 'nothing ran: the gateway went at once');
    const offline = await run('curl -sS --max-time 5 --cacert /tmp/ca.pem https://other.test/');
    assert.notEqual(offline.exitCode, 0);
    assert.equal(offline.policy.network, 'none');
    await connection.sendRequest(ConfigureRequest.type, {
      engine: {},
      box: { image: TEST_IMAGES.net, memoryMiB: 256, idleTimeoutMinutes: 0, caches: false },
      egress: { ...egress, allowedHosts: ['other.test'] },
    });
    const back = await runOk('curl -sS --fail --cacert /tmp/ca.pem https://other.test/');
    assert.equal((JSON.parse(back) as { upstream: string }).upstream, 'other');
    const after = await gatewayOf();
    assert.equal(after.length, 1);
    assert.notDeepEqual(after, before, 'a new gateway');
    assert.equal((await connection.sendRequest(EnsureBoxRequest.type, { folder })).containerId, boxBefore, 'the same box all along');
  });
});
