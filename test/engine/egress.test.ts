// The egress gateway on a real engine. The "internet" is a Docker network and an upstream stand-in container
// this suite creates (test/engine/egressInternet.ts); every name and address is local to this machine.
import * as assert from 'node:assert/strict';
import { Box } from '../../src/core/box/box';
import { findBoxes, removeOrphans } from '../../src/core/box/orphans';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { connectTestEngine, removeEverythingOwnedBy, sh, shOk, TEST_IMAGES, testOwnerId, testSettings } from './engineHarness';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigureRequest, EgressAttemptsRequest, EnsureBoxRequest, ExecRequest, ResetRequest } from '../../src/shared/protocol';
import { attemptsOf, createTestInternet, ownedBy, rawConnect, type TestInternet } from './egressInternet';
import { egressLine, runEgress } from '../../src/core/history/egressSummary';
import { startEngineServer } from '../builders/engineServer';

suite('engine: egress gateway (allowlist) against a local stand-in internet', function () {
  this.timeout(180_000);
  const ownerId = testOwnerId('egress');
  let engine: DockerEngine;
  let internet: TestInternet;
  let box: Box;

  suiteSetup(async () => {
    engine = await connectTestEngine();
    internet = await createTestInternet(engine, ownerId);
    box = await Box.create(engine, testSettings({ image: TEST_IMAGES.net }), {
      folder: '/tmp/egress-engine-test',
      ownerId,
      env: [],
      egress: internet.egress(['registry.test', 'api.test:80']),
    });
    await shOk(box, 'cat > /tmp/ca.pem', { stdin: internet.caPem });
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
    await internet?.remove();
  });

  test('the box gets only proxy variables, and still has no interface but loopback', async () => {
    const env = await shOk(box, 'env | grep -i proxy | sort');
    assert.equal(
      env,
      [
        'HTTPS_PROXY=http://127.0.0.1:3128',
        'HTTP_PROXY=http://127.0.0.1:3128',
        'NODE_USE_ENV_PROXY=1',
        'NO_PROXY=localhost,127.0.0.1,::1',
        'http_proxy=http://127.0.0.1:3128',
        'https_proxy=http://127.0.0.1:3128',
        'no_proxy=localhost,127.0.0.1,::1',
        '',
      ].join('\n'),
    );
    const interfaces = await shOk(box, 'ls /sys/class/net');
    assert.equal(interfaces.trim(), 'lo');
    const containers = await ownedBy(engine, ownerId);
    assert.deepEqual(Object.keys(containers.containers).sort(), ['box', 'gateway', 'relay']);
  });

  test('an allowed HTTPS host answers curl configured only by the proxy variables (TLS end to end, the test CA)', async () => {
    const before = box.egress!.attempts.length;
    const out = await shOk(box, 'curl -sS --fail --cacert /tmp/ca.pem https://registry.test/hello');
    const answer = JSON.parse(out) as Record<string, unknown>;
    assert.deepEqual({ scheme: answer.scheme, host: answer.host, url: answer.url }, { scheme: 'https', host: 'registry.test', url: '/hello' });
    // The upstream saw the gateway's address on the test network, never the box (which has none).
    assert.match(String(answer.from), new RegExp(`^(::ffff:)?${internet.prefix.replace(/\./g, '\\.')}\\.`));
    const attempts = await attemptsOf(box, before + 1);
    const a = attempts[before]!;
    assert.deepEqual(
      { kind: a.kind, host: a.host, port: a.port, decision: a.decision, reason: a.reason, address: a.address },
      { kind: 'connect', host: 'registry.test', port: 443, decision: 'allowed', reason: 'allowlisted', address: internet.upstreamAddress },
    );
    assert.ok(a.bytesUp > 200 && a.bytesDown > 500, `TLS bytes counted: ${a.bytesUp} up, ${a.bytesDown} down`);
  });

  test('git clones over HTTPS through the gateway with nothing but the proxy variables', async () => {
    const out = await shOk(box, 'GIT_SSL_CAINFO=/tmp/ca.pem git clone -q https://registry.test/git/repo.git /tmp/clone && cat /tmp/clone/README.md');
    assert.equal(out, 'cloned through the egress gateway\n');
  });

  test('npm installs a package from an HTTPS registry stand-in through the gateway, with nothing but the proxy variables (and the test CA)', async () => {
    const out = await shOk(
      box,
      'mkdir -p /tmp/proj && cd /tmp/proj && npm install --no-audit --no-fund --registry https://registry.test/npm/ --cafile /tmp/ca.pem egress-tiny >/dev/null && node -p "require(\'egress-tiny\')"',
      { timeoutMs: 120_000 },
    );
    assert.equal(out, 'installed through the egress gateway\n');
  });

  test('plain HTTP to an allowed host:80 is forwarded; the record has method, path and status', async () => {
    const before = box.egress!.attempts.length;
    const out = await shOk(box, 'curl -sS --fail -X POST --data-binary @/etc/passwd http://api.test/v1/things?key=secret');
    const answer = JSON.parse(out) as Record<string, unknown>;
    assert.deepEqual(
      { scheme: answer.scheme, host: answer.host, method: answer.method, url: answer.url },
      { scheme: 'http', host: 'api.test', method: 'POST', url: '/v1/things?key=secret' },
    );
    const a = (await attemptsOf(box, before + 1))[before]!;
    assert.deepEqual(
      { kind: a.kind, method: a.method, path: a.path, status: a.status, decision: a.decision },
      { kind: 'http', method: 'POST', path: '/v1/things', status: 200, decision: 'allowed' },
    );
    assert.equal(a.bytesUp, answer.body);
  });

  test('a host not on the list: curl fails with the 403, and the 403 text names the host and agentSandbox.allowedHosts', async () => {
    const before = box.egress!.attempts.length;
    const viaCurl = await sh(box, 'curl -sS --cacert /tmp/ca.pem https://other.test/');
    assert.notEqual(viaCurl.exitCode, 0);
    assert.match(viaCurl.stderr, /CONNECT tunnel failed, response 403/);
    const raw = await sh(box, rawConnect('other.test:443'));
    assert.match(raw.stdout, /^HTTP\/1\.1 403 Forbidden/);
    assert.match(raw.stdout, /other\.test:443 is not allowed/);
    assert.match(raw.stdout, /add "other\.test" to agentSandbox\.allowedHosts/);
    // An allowed host on a port that is not listed is denied too.
    const port = await sh(box, 'curl -sS http://registry.test:8080/');
    assert.match(port.stdout, /registry\.test:8080 is not allowed/);
    const attempts = (await attemptsOf(box, before + 3)).slice(before);
    assert.deepEqual(
      attempts.map((a) => [a.host, a.port, a.decision, a.reason]),
      [
        ['other.test', 443, 'denied', 'not-allowlisted'],
        ['other.test', 443, 'denied', 'not-allowlisted'],
        ['registry.test', 8080, 'denied', 'not-allowlisted'],
      ],
    );
  });

  test('the attempt list is exactly what happened, in order, with start and end times', async () => {
    const all = box.egress!.attempts;
    // curl's tunnel and at least one of git's.
    assert.ok(all.filter((a) => a.host === 'registry.test' && a.port === 443).length >= 2, JSON.stringify(all));
    assert.deepEqual(
      all.map((a) => `${a.kind} ${a.host}:${a.port} ${a.decision}`),
      [
        'connect registry.test:443 allowed',
        ...all
          .filter((a) => a.kind === 'connect' && a.host === 'registry.test' && a.port === 443)
          .slice(1)
          .map(() => 'connect registry.test:443 allowed'),
        'http api.test:80 allowed',
        'connect other.test:443 denied',
        'connect other.test:443 denied',
        'http registry.test:8080 denied',
      ],
    );
    assert.deepEqual(
      all.map((a) => a.seq),
      all.map((_, i) => i + 1),
    );
    for (const a of all) assert.ok(Date.parse(a.start) <= Date.parse(a.end), JSON.stringify(a));
  });

  test('removing the box removes its gateway, relay and egress volume', async () => {
    const other = await Box.create(engine, testSettings({ image: TEST_IMAGES.net }), {
      folder: '/tmp/egress-remove',
      ownerId: `${ownerId}-rm`,
      env: [],
      egress: internet.egress([]),
    });
    const made = await ownedBy(engine, `${ownerId}-rm`);
    assert.deepEqual(Object.keys(made.containers).sort(), ['box', 'gateway', 'relay']);
    assert.equal(made.volumes.length, 2, JSON.stringify(made.volumes));
    await other.remove();
    assert.deepEqual(await ownedBy(engine, `${ownerId}-rm`), { containers: {}, volumes: [] });
  });

  test("the orphan sweep removes a dead owner's gateway, relay and egress volume with its box", async () => {
    const deadOwner = `${ownerId}-dead`;
    // Labelled with a host name of its own, so the sweeps of other engine servers on this shared engine (which
    // leave other hosts' boxes alone) cannot take it first; this sweep plays that host.
    const fakeHost = `egress-orphan-test-${process.pid}`;
    await Box.create(engine, testSettings({ image: TEST_IMAGES.net }), {
      folder: '/tmp/egress-orphan',
      ownerId: deadOwner,
      env: [],
      egress: internet.egress([]),
      ownerPid: 999_999_999,
      ownerHost: fakeHost,
    });
    assert.equal(Object.keys((await ownedBy(engine, deadOwner)).containers).length, 3);
    const removed = await removeOrphans(engine, { isAlive: (pid) => pid !== 999_999_999, currentOwnerId: ownerId, currentHost: fakeHost });
    assert.equal(removed.containers.filter((name) => name.includes('egress-orphan')).length, 3, JSON.stringify(removed));
    assert.deepEqual(await ownedBy(engine, deadOwner), { containers: {}, volumes: [] });
    // Our own live box, its gateway and relay were kept (the suite's upstream stand-in is not counted).
    assert.deepEqual(Object.keys((await ownedBy(engine, ownerId)).containers).sort(), ['box', 'gateway', 'relay']);
    assert.ok((await findBoxes(engine, { ownerId })).length >= 3);
  });

  test('network "none" (or no egress option) is exactly today\'s box: no gateway, no relay, no proxy variables', async () => {
    const plainOwner = `${ownerId}-none`;
    const plain = await Box.create(engine, testSettings({ image: TEST_IMAGES.net }), {
      folder: '/tmp/egress-none',
      ownerId: plainOwner,
      env: [],
      egress: {
        ...internet.egress(['registry.test']),
        validated: { ...internet.egress([]).validated, settings: { ...internet.egress([]).validated.settings, network: 'none' } },
      },
    });
    try {
      assert.equal(plain.egress, undefined);
      assert.deepEqual(Object.keys((await ownedBy(engine, plainOwner)).containers), ['box']);
      assert.equal((await sh(plain, 'env | grep -ic proxy')).stdout.trim(), '0');
      const curl = await sh(plain, 'curl -sS --max-time 5 https://registry.test/');
      assert.notEqual(curl.exitCode, 0);
      assert.match(curl.stderr, /Could not resolve host|Failed to connect/);
    } finally {
      await plain.remove();
    }
  });

  test('through the engine server: sandbox/configure with egress settings gives new boxes the gateway; a bad value is refused naming its key', async () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'as-egress-'));
    // Not `*.pem`: that name is on the secrets deny-list and would not reach the box.
    writeFileSync(path.join(folder, 'test-ca.txt'), internet.caPem);
    const { process: server, connection } = await startEngineServer({ box: { image: TEST_IMAGES.net, memoryMiB: 256, idleTimeoutMinutes: 0 } });
    try {
      const egress = internet.settings(['registry.test']);
      await assert.rejects(
        connection.sendRequest(ConfigureRequest.type, {
          engine: {},
          box: { image: TEST_IMAGES.net, caches: false },
          egress: { ...egress, allowedHosts: ['https://registry.test/'] },
        }),
        (error: { data?: { reason?: string; setting?: string } }) =>
          error.data?.reason === 'invalid-setting' && error.data.setting === 'agentSandbox.allowedHosts',
      );
      await assert.rejects(
        connection.sendRequest(ConfigureRequest.type, { engine: {}, box: { image: TEST_IMAGES.net, runtime: 'runsc', caches: false }, egress }),
        (error: { data?: { setting?: string } }) => error.data?.setting === 'agentSandbox.network',
      );
      await connection.sendRequest(ConfigureRequest.type, {
        engine: {},
        box: { image: TEST_IMAGES.net, memoryMiB: 256, idleTimeoutMinutes: 0, caches: false },
        egress,
      });
      assert.deepEqual(
        await connection.sendRequest(EgressAttemptsRequest.type, { folder }),
        { network: 'none', attempts: [] },
        'no box yet: nothing, and no box is made',
      );
      const info = await connection.sendRequest(EnsureBoxRequest.type, { folder });
      const allowed = await connection.sendRequest(ExecRequest.type, {
        folder,
        runId: 'run-a',
        command: 'curl -sS --fail --cacert test-ca.txt https://registry.test/via-server',
      });
      assert.equal(allowed.exitCode, 0, allowed.stderr);
      assert.equal((JSON.parse(allowed.stdout) as { url: string }).url, '/via-server');
      // The run's recorded policy says what the box could reach (the history and the terminal show it).
      assert.equal(allowed.policy.network, 'allowlist');
      assert.deepEqual(allowed.policy.allowedHosts, ['registry.test']);
      const denied = await connection.sendRequest(ExecRequest.type, { folder, runId: 'run-b', command: 'curl -sS http://api.test/' });
      assert.match(denied.stdout, /api\.test:80 is not allowed/);
      // Each run's proxy variables carry its id, so the attempts are told apart by run.
      let all = await connection.sendRequest(EgressAttemptsRequest.type, { folder });
      for (let i = 0; i < 50 && all.attempts.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        all = await connection.sendRequest(EgressAttemptsRequest.type, { folder });
      }
      assert.equal(all.network, 'allowlist');
      assert.deepEqual(
        all.attempts.map((a) => [a.runId, a.host, a.port, a.decision]),
        [
          ['run-a', 'registry.test', 443, 'allowed'],
          ['run-b', 'api.test', 80, 'denied'],
        ],
      );
      const onlyB = await connection.sendRequest(EgressAttemptsRequest.type, { folder, runId: 'run-b' });
      assert.deepEqual(
        onlyB.attempts.map((a) => a.host),
        ['api.test'],
      );
      const boxName = info.volumeName.replace(/-workspace$/, '');
      const egressContainers = await engine.call('listing', (d) =>
        d.listContainers({ all: true, filters: { label: [`dev.agent-sandbox.box=${boxName}`] } }),
      );
      assert.deepEqual(egressContainers.map((c) => c.Labels['dev.agent-sandbox.role']).sort(), ['gateway', 'relay']);
      await connection.sendRequest(ResetRequest.type, {});
      const afterReset = await engine.call('listing', (d) =>
        d.listContainers({ all: true, filters: { label: [`dev.agent-sandbox.box=${boxName}`] } }),
      );
      assert.deepEqual(afterReset, [], 'reset removes the gateway and relay with the box');
    } finally {
      await connection.sendRequest(ResetRequest.type, {}).catch(() => undefined);
      connection.dispose();
      server.kill();
      rmSync(folder, { recursive: true, force: true });
    }
  });

  test('through the engine server: a run\'s attempts make its egress summary; an offline run (network "none") is refused everything, and the next run is allowed again', async () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'as-egress-offline-'));
    writeFileSync(path.join(folder, 'test-ca.txt'), internet.caPem);
    const { process: server, connection } = await startEngineServer({ box: { image: TEST_IMAGES.net, memoryMiB: 256, idleTimeoutMinutes: 0 } });
    try {
      const egress = internet.settings(['registry.test']);
      await connection.sendRequest(ConfigureRequest.type, {
        engine: {},
        box: { image: TEST_IMAGES.net, memoryMiB: 256, idleTimeoutMinutes: 0, caches: false },
        egress,
      });
      const curl = 'curl -sS --fail --max-time 10 --cacert test-ca.txt https://registry.test/offline-test';
      const allAttempts = async (n: number) => {
        let all = await connection.sendRequest(EgressAttemptsRequest.type, { folder });
        for (let i = 0; i < 50 && all.attempts.length < n; i++) {
          await new Promise((r) => setTimeout(r, 100));
          all = await connection.sendRequest(EgressAttemptsRequest.type, { folder });
        }
        return all.attempts;
      };

      const firstStart = Date.now();
      const first = await connection.sendRequest(ExecRequest.type, {
        folder,
        runId: 'run-online-1',
        command: `${curl} && curl -sS --max-time 10 https://other.test/ ; true`,
      });
      assert.equal(first.exitCode, 0, first.stderr);
      assert.match(first.stdout, /"url":"\/offline-test"/);
      const afterFirst = await allAttempts(2);
      const summary = runEgress(afterFirst, { id: 'run-online-1', startedAt: firstStart - 1000, endedAt: Date.now() + 1000 });
      assert.equal(egressLine(summary), 'contacted registry.test ×1 · denied other.test ×1');

      // Offline: its own proxy variables are empty, and neither the relay nor a forged run id gets it out.
      const offline = await connection.sendRequest(ExecRequest.type, {
        folder,
        runId: 'run-offline',
        network: 'none',
        command: [
          'echo "proxy=[$HTTPS_PROXY]"',
          `${curl} --proxy http://127.0.0.1:3128 >/dev/null 2>&1; echo "direct=$?"`,
          // The proxy user an earlier run's variables carried (`run-` + its id): a claim to be that run.
          `${curl} --proxy http://run-run-online-1@127.0.0.1:3128 >/dev/null 2>&1; echo "forged=$?"`,
          rawConnect('registry.test:443'),
        ].join('; '),
      });
      assert.match(offline.stdout, /^proxy=\[\]$/m);
      assert.match(offline.stdout, /^direct=[1-9]/m);
      assert.match(offline.stdout, /^forged=[1-9]/m);
      assert.match(offline.stdout, /HTTP\/1\.1 403 Forbidden[\s\S]*offline run \(network: "none"\) runs: run-offline/);
      assert.equal(offline.policy.network, 'none');
      assert.equal(offline.policy.offline, true);
      assert.equal(offline.policy.allowedHosts, undefined);

      // The next run is allowed again: the gateway forwards once the offline run has ended.
      const next = await connection.sendRequest(ExecRequest.type, { folder, runId: 'run-online-2', command: curl });
      assert.equal(next.exitCode, 0, next.stderr);
      assert.equal(next.policy.network, 'allowlist');

      const attempts = await allAttempts(6);
      assert.deepEqual(
        attempts.slice(2).map((a) => [a.runId ?? '(none)', a.host, a.decision, a.reason]),
        [
          ['(none)', 'registry.test', 'denied', 'offline-run'],
          ['run-online-1', 'registry.test', 'denied', 'offline-run'],
          ['(none)', 'registry.test', 'denied', 'offline-run'],
          ['run-online-2', 'registry.test', 'allowed', 'allowlisted'],
        ],
      );
    } finally {
      await connection.sendRequest(ResetRequest.type, {}).catch(() => undefined);
      connection.dispose();
      server.kill();
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
