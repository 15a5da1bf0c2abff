// Plain TCP to an engine beyond loopback carries the workspace tar and the passed variables unencrypted: the
// server refuses it (`insecure-engine`, naming the address) before a byte is sent, until the user allowed it.
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as os from 'node:os';
import { assertEngineAllowed, insecureEngineAddress, isLoopbackHost } from '../../../src/core/docker/engineLocation';
import { SandboxError } from '../../../src/core/errors';
import { EngineService } from '../../../src/server/engineService';

suite('unit: unencrypted remote engines', () => {
  test('loopback names and addresses', () => {
    for (const host of ['localhost', 'LOCALHOST', 'docker.localhost', '127.0.0.1', '127.1.2.3', '[::1]', '::1', '::ffff:127.0.0.1']) {
      assert.equal(isLoopbackHost(host), true, host);
    }
    for (const host of ['10.0.0.5', '192.0.2.2', 'example.com', 'localhost.example.com', '128.0.0.1', '[fd00::2]', '0.0.0.0']) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });

  test('only plain tcp:// or http:// beyond loopback is insecure; TLS, ssh, unix sockets and loopback are not', () => {
    assert.equal(insecureEngineAddress({ host: 'tcp://10.0.0.5:2375', source: 'setting' }), '10.0.0.5:2375');
    assert.equal(insecureEngineAddress({ host: 'tcp://build-box', source: 'DOCKER_HOST' }), 'build-box:2375');
    assert.equal(insecureEngineAddress({ host: 'http://[fd00::2]:4243', source: 'setting' }), '[fd00::2]:4243');
    assert.equal(insecureEngineAddress({ host: 'tcp://10.0.0.5:2376', source: 'DOCKER_HOST', tls: { verify: true } }), undefined);
    assert.equal(insecureEngineAddress({ host: 'https://10.0.0.5:2376', source: 'setting' }), undefined);
    assert.equal(insecureEngineAddress({ host: 'tcp://127.0.0.1:2375', source: 'setting' }), undefined);
    assert.equal(insecureEngineAddress({ host: 'tcp://localhost:2375', source: 'setting' }), undefined);
    assert.equal(insecureEngineAddress({ host: 'ssh://me@10.0.0.5', source: 'setting' }), undefined);
    assert.equal(insecureEngineAddress({ host: 'unix:///var/run/docker.sock', source: 'default' }), undefined);
  });

  test('refused with the address unless allowed', () => {
    const location = { host: 'tcp://10.0.0.5:2375', source: 'setting' };
    assert.throws(
      () => assertEngineAllowed(location),
      (error: unknown) => SandboxError.is(error, 'insecure-engine') && error.options.address === '10.0.0.5:2375' && /unencrypted/.test(error.message),
    );
    assert.throws(
      () => assertEngineAllowed(location, ['10.0.0.6:2375']),
      (error: unknown) => SandboxError.is(error, 'insecure-engine'),
    );
    assert.doesNotThrow(() => assertEngineAllowed(location, ['10.0.0.5:2375']));
  });

  test('the engine server sends nothing to an unencrypted remote engine until the address is allowed', async () => {
    // 0.0.0.0 is not a loopback name for the check (a remote engine could not be told from it), yet Linux
    // delivers a connection to it over loopback: the listener below sees what would have gone out, and no
    // packet ever leaves this machine, not even if the check regressed.
    const address = '0.0.0.0';
    const connections: net.Socket[] = [];
    const listener = net.createServer((socket) => {
      connections.push(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as net.AddressInfo).port;
    const service = new EngineService({ log: () => undefined, env: {}, homeDir: os.tmpdir() });
    try {
      service.configure({ dockerHost: `tcp://${address}:${port}` }, {});
      await assert.rejects(
        service.checkEngine(),
        (error: unknown) => SandboxError.is(error, 'insecure-engine') && error.options.address === `${address}:${port}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(connections.length, 0, 'nothing was sent to the refused engine');

      // Allowed: the server does connect (this listener is no engine, so the call then fails as unreachable).
      service.configure({ dockerHost: `tcp://${address}:${port}`, allowInsecureHosts: [`${address}:${port}`] }, {});
      await assert.rejects(service.checkEngine(), (error: unknown) => SandboxError.is(error) && error.reason !== 'insecure-engine');
      assert.ok(connections.length > 0, 'the allowed engine was contacted');
    } finally {
      service.dispose();
      await new Promise((resolve) => listener.close(resolve));
    }
  });
});
