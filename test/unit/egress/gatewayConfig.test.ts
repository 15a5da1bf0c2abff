import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SandboxError } from '../../../src/core/errors';
import { parseAttemptLine, type EgressAttempt } from '../../../src/core/egress/egressAttempt';
import {
  boxProxyEnv,
  DEFAULT_EGRESS_SETTINGS,
  gatewayCreateOptions,
  GATEWAY_PROGRAM_PATH,
  relayCreateOptions,
  runProxyEnv,
  validateEgressSettings,
} from '../../../src/core/egress/gatewayConfig';
import { runIdFromProxyAuthorization } from '../../../src/gateway/gatewayServer';

function rejects(partial: Record<string, unknown>, key: string, message: RegExp, runtime = ''): void {
  assert.throws(
    () => validateEgressSettings(partial as never, runtime),
    (error: unknown) => {
      assert.ok(SandboxError.is(error, 'invalid-setting'), String(error));
      assert.equal(error.options.setting, `agentSandbox.${key}`);
      assert.match(error.message, message);
      return true;
    },
  );
}

suite('unit: egress settings and container options', () => {
  test('defaults: network none, nothing allowed, the box image, the bridge network', () => {
    const { settings, rules } = validateEgressSettings(undefined);
    assert.deepEqual(settings, {
      network: 'none',
      allowedHosts: [],
      networkPresets: [],
      gatewayImage: '',
      gatewayNetwork: 'bridge',
      gatewayDns: [],
      gatewayCaFile: '',
    });
    assert.deepEqual(settings, DEFAULT_EGRESS_SETTINGS);
    assert.deepEqual(rules, []);
  });

  test('an allowlist with presets validates to its rules', () => {
    const { settings, rules } = validateEgressSettings({
      network: 'allowlist',
      allowedHosts: ['example.com:8443'],
      networkPresets: ['pypi'],
      gatewayImage: ' node:22-bookworm-slim ',
    });
    assert.equal(settings.gatewayImage, 'node:22-bookworm-slim');
    assert.deepEqual(
      rules.map((r) => `${r.host}:${r.port}`),
      ['example.com:8443', 'pypi.org:443', 'files.pythonhosted.org:443'],
    );
  });

  test('bad values name their setting', () => {
    rejects({ network: 'open' }, 'network', /use "none" \(no network\) or "allowlist"/);
    rejects({ allowedHosts: ['http://x.example'] }, 'allowedHosts', /is a URL/);
    rejects({ networkPresets: ['everything'] }, 'networkPresets', /is not a preset/);
    rejects({ gatewayImage: 'Not An Image' }, 'gatewayImage', /not an image reference/);
    rejects({ gatewayNetwork: 'host' }, 'gatewayNetwork', /not "host" or "none"/);
    rejects({ gatewayNetwork: 'container:abc' }, 'gatewayNetwork', /is not valid/);
    rejects({ gatewayDns: ['dns.example'] }, 'gatewayDns', /resolver IP addresses/);
    rejects({ gatewayDns: '1.1.1.1' }, 'gatewayDns', /resolver IP addresses/);
    assert.deepEqual(validateEgressSettings({ gatewayDns: ['1.1.1.1', '2606:4700:4700::1111'] }).settings.gatewayDns, [
      '1.1.1.1',
      '2606:4700:4700::1111',
    ]);
    rejects({ network: 'allowlist' }, 'network', /not supported with agentSandbox.runtime "runsc"/, 'runsc');
    // "none" with a runtime is fine: nothing of the gateway exists then.
    assert.equal(validateEgressSettings({ network: 'none' }, 'runsc').settings.network, 'none');
  });

  test('the box gets every spelling of the proxy variables, pointing at its own loopback; loopback stays direct', () => {
    assert.deepEqual(boxProxyEnv(), [
      'HTTP_PROXY=http://127.0.0.1:3128',
      'HTTPS_PROXY=http://127.0.0.1:3128',
      'http_proxy=http://127.0.0.1:3128',
      'https_proxy=http://127.0.0.1:3128',
      'NO_PROXY=localhost,127.0.0.1,::1',
      'no_proxy=localhost,127.0.0.1,::1',
      'NODE_USE_ENV_PROXY=1',
    ]);
  });

  test("a run's proxy variables carry its id as the proxy user name; ids the gateway would not accept get none", () => {
    assert.deepEqual(runProxyEnv('run-7'), [
      'HTTP_PROXY=http://run-run-7@127.0.0.1:3128',
      'HTTPS_PROXY=http://run-run-7@127.0.0.1:3128',
      'http_proxy=http://run-run-7@127.0.0.1:3128',
      'https_proxy=http://run-run-7@127.0.0.1:3128',
    ]);
    assert.deepEqual(runProxyEnv('a b'), []);
    assert.deepEqual(runProxyEnv('x'.repeat(61)), []);
    assert.deepEqual(runProxyEnv(undefined), []);
    // The gateway reads back exactly that id.
    const user = new URL(runProxyEnv('r.1_z-2')[0]!.split('=')[1]!).username;
    assert.equal(runIdFromProxyAuthorization(`Basic ${Buffer.from(`${user}:`).toString('base64')}`), 'r.1_z-2');
  });

  test('gateway and relay are hardened: non-root, read-only root, no capabilities, no-new-privileges, limits, init; only the gateway has a network', () => {
    const gateway = gatewayCreateOptions({
      name: 'g',
      image: 'img',
      network: 'bridge',
      volumeName: 'v',
      labels: { a: 'b' },
      config: { rules: [], maxConnections: 1, connectTimeoutMs: 1, idleTimeoutMs: 1 },
    });
    const relay = relayCreateOptions({ name: 'r', image: 'img', boxContainerId: 'box123', volumeName: 'v', labels: { a: 'b' } });
    for (const options of [gateway, relay]) {
      const host = options.HostConfig!;
      assert.equal(options.User, '65532:65532');
      assert.equal(host.ReadonlyRootfs, true);
      assert.deepEqual(host.CapDrop, ['ALL']);
      assert.equal(host.CapAdd, undefined);
      assert.deepEqual(host.SecurityOpt, ['no-new-privileges']);
      assert.equal(host.Privileged, false);
      assert.equal(host.Init, true);
      assert.ok(host.PidsLimit! > 0 && host.PidsLimit! <= 128);
      assert.ok(host.Memory! > 0 && host.Memory === host.MemorySwap);
      assert.ok(host.NanoCpus! > 0);
      assert.equal(host.Binds, undefined);
      assert.equal(options.Labels!.a, 'b');
    }
    assert.equal(gateway.HostConfig!.NetworkMode, 'bridge');
    assert.deepEqual(gateway.Cmd, ['node', GATEWAY_PROGRAM_PATH, 'gateway']);
    assert.equal(gateway.HostConfig!.Mounts![0]!.ReadOnly, undefined);
    assert.equal(relay.HostConfig!.NetworkMode, 'container:box123');
    assert.deepEqual(relay.Cmd, ['node', GATEWAY_PROGRAM_PATH, 'relay']);
    assert.equal(relay.HostConfig!.Mounts![0]!.ReadOnly, true);
    assert.ok(!relay.Env!.some((e) => e.startsWith('AGENT_SANDBOX_GATEWAY=')), 'the relay has no rules');
  });

  test('agentSandbox.gatewayCaFile: a PEM file is read at validation; a relative, missing or certificate-less path names the setting', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-ca-'));
    try {
      const pem = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
      fs.writeFileSync(path.join(dir, 'ca.pem'), pem);
      fs.writeFileSync(path.join(dir, 'empty.pem'), 'nothing here');
      const validated = validateEgressSettings({ gatewayCaFile: ` ${path.join(dir, 'ca.pem')} ` });
      assert.equal(validated.settings.gatewayCaFile, path.join(dir, 'ca.pem'));
      assert.equal(validated.extraCaPem, pem);
      assert.equal(validateEgressSettings({ gatewayCaFile: '' }).extraCaPem, undefined);
      rejects({ gatewayCaFile: 'ca.pem' }, 'gatewayCaFile', /not an absolute path/);
      rejects({ gatewayCaFile: path.join(dir, 'missing.pem') }, 'gatewayCaFile', /cannot read .*ENOENT/);
      rejects({ gatewayCaFile: path.join(dir, 'empty.pem') }, 'gatewayCaFile', /holds no PEM certificate/);
      rejects({ gatewayCaFile: 7 }, 'gatewayCaFile', /path of a PEM file/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('only the gateway reads stdin (its keys arrive there, never in its environment); the relay has no stdin', () => {
    const common = { image: 'img', volumeName: 'vol', labels: {} };
    const gateway = gatewayCreateOptions({
      ...common,
      name: 'g',
      network: 'bridge',
      config: { rules: [], maxConnections: 1, connectTimeoutMs: 1, idleTimeoutMs: 1 },
    });
    const relay = relayCreateOptions({ ...common, name: 'r', boxContainerId: 'box' });
    assert.deepEqual([gateway.OpenStdin, gateway.AttachStdin, gateway.StdinOnce], [true, true, false]);
    assert.deepEqual([relay.OpenStdin, relay.AttachStdin], [false, false]);
    assert.ok(!JSON.stringify(gateway.Env).includes('providerKeys'));
  });

  test('attempt lines parse only when well-formed', () => {
    const attempt: EgressAttempt = {
      seq: 1,
      kind: 'connect',
      method: 'CONNECT',
      host: 'example.com',
      port: 443,
      decision: 'allowed',
      reason: 'allowlisted',
      detail: 'allowed by "example.com"',
      address: '203.0.113.9',
      bytesUp: 10,
      bytesDown: 20,
      start: '2026-01-01T00:00:00.000Z',
      end: '2026-01-01T00:00:01.000Z',
    };
    assert.deepEqual(parseAttemptLine(JSON.stringify({ type: 'attempt', attempt })), attempt);
    assert.equal(parseAttemptLine(JSON.stringify({ type: 'ready' })), undefined);
    assert.equal(parseAttemptLine('not json'), undefined);
    assert.equal(parseAttemptLine(JSON.stringify({ type: 'attempt', attempt: { ...attempt, reason: 'because' } })), undefined);
    assert.equal(parseAttemptLine(JSON.stringify({ type: 'attempt', attempt: { ...attempt, bytesUp: -1 } })), undefined);
    assert.equal(parseAttemptLine(JSON.stringify({ type: 'attempt', attempt: { ...attempt, decision: 'maybe' } })), undefined);
    assert.equal(parseAttemptLine(JSON.stringify({ type: 'attempt', attempt: { ...attempt, host: 'x'.repeat(301) } })), undefined);
  });
});
