// The one engine wrapper against a real engine and against sockets that misbehave on purpose.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Box } from '../../src/core/box/box';
import { LABEL_OWNER } from '../../src/core/box/boxConfig';
import { DockerEngine } from '../../src/core/docker/dockerEngine';
import { SandboxError } from '../../src/core/errors';
import { connectTestEngine, removeEverythingOwnedBy, testOwnerId, testSettings, TEST_IMAGES } from './engineHarness';

suite('engine: DockerEngine', () => {
  const ownerId = testOwnerId('engine');
  let engine: DockerEngine | undefined;
  let dir: string;
  let hungServer: net.Server;
  let hungSocketPath: string;
  const hungConnections: { closed: boolean }[] = [];
  const hungSockets: net.Socket[] = [];

  suiteSetup(async () => {
    engine = await connectTestEngine();
    dir = mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-engine-test-'));
    // Accepts connections and never answers: a hung engine.
    hungSocketPath = path.join(dir, 'hung.sock');
    hungServer = net.createServer((socket) => {
      const state = { closed: false };
      hungConnections.push(state);
      hungSockets.push(socket);
      socket.on('close', () => (state.closed = true));
      // Reading is what makes the client's close visible here.
      socket.resume();
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => hungServer.listen(hungSocketPath, resolve));
  });

  suiteTeardown(async () => {
    hungSockets.forEach((socket) => socket.destroy());
    await new Promise<void>((resolve) => (hungServer ? hungServer.close(() => resolve()) : resolve()));
    rmSync(dir, { recursive: true, force: true });
    await removeEverythingOwnedBy(engine, ownerId);
  });

  test('reports the engine version and info', async () => {
    const version = await engine!.version();
    assert.match(version.Version, /^\d+\.\d+/);
    assert.match(version.ApiVersion, /^1\.\d+$/);
    const info = await engine!.info();
    assert.ok(info.Runtimes && 'runc' in info.Runtimes, 'runc is listed among runtimes');
    assert.equal(typeof info.DefaultRuntime, 'string');
  });

  test('inspectImage returns the image, or undefined when it is missing', async () => {
    const image = await engine!.inspectImage(TEST_IMAGES.busybox);
    assert.match(image?.Id ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(await engine!.inspectImage('agent-sandbox-test/never-built:nope'), undefined);
  });

  test('a socket nobody listens on gives engine-unreachable naming the address and the fix', async () => {
    const host = `unix://${path.join(dir, 'nothing-here.sock')}`;
    const bogus = new DockerEngine({ host, source: 'setting' });
    await assert.rejects(bogus.version(), (error: unknown) => {
      assert.ok(SandboxError.is(error, 'engine-unreachable'), String(error));
      assert.match(error.message, new RegExp(`Docker engine not reachable at ${host.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
      assert.match(error.message, /is Docker running\?/);
      assert.match(error.message, /agentSandbox\.dockerHost/);
      return true;
    });
  });

  test('a refused TCP port gives engine-unreachable too', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const bogus = new DockerEngine({ host: `tcp://127.0.0.1:${port}`, source: 'DOCKER_HOST' });
    await assert.rejects(bogus.info(), (error: unknown) => SandboxError.is(error, 'engine-unreachable') && /DOCKER_HOST/.test(error.message));
  });

  test('a hung engine times out, and the request is torn down', async () => {
    const hung = new DockerEngine({ host: `unix://${hungSocketPath}`, source: 'setting' });
    const before = hungConnections.length;
    const started = Date.now();
    await assert.rejects(hung.version({ timeoutMs: 300 }), (error: unknown) => SandboxError.is(error, 'timeout') && /300 ms/.test(error.message));
    assert.ok(Date.now() - started < 3000);
    assert.equal(hungConnections.length, before + 1, 'the call reached the socket');
    for (let i = 0; i < 50 && !hungConnections[before].closed; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(hungConnections[before].closed, true, 'the connection was closed, not left dangling');
  });

  test('cancellation aborts a call with cancelled', async () => {
    const hung = new DockerEngine({ host: `unix://${hungSocketPath}`, source: 'setting' }, { defaultTimeoutMs: 0 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(hung.info({ signal: controller.signal }), (error: unknown) => SandboxError.is(error, 'cancelled'));
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(engine!.version({ signal: aborted.signal }), (error: unknown) => SandboxError.is(error, 'cancelled'));
  });

  test('engine errors carry the engine message; a missing container is not-found', async () => {
    await assert.rejects(
      engine!.call('creating a container', (d) => d.createContainer({ Image: TEST_IMAGES.busybox, HostConfig: { Memory: 1024 } })),
      (error: unknown) => SandboxError.is(error, 'engine-error') && /Creating a container failed: .*[Mm]inimum memory/.test(error.message),
    );
    await assert.rejects(
      engine!.call('inspecting a container', (d) => d.getContainer('agent-sandbox-no-such-container').inspect()),
      (error: unknown) => SandboxError.is(error, 'not-found') && /No such container/i.test(error.message),
    );
  });

  test('pulling from an unreachable registry fails with the engine message', async () => {
    // Loopback only: port 1 refuses at once.
    const events: string[] = [];
    await assert.rejects(
      engine!.pullImage('127.0.0.1:1/agent-sandbox/none:latest', (message) => events.push(message)),
      (error: unknown) => SandboxError.is(error, 'engine-error') && /127\.0\.0\.1:1/.test(error.message),
    );
  });

  test('Box.create with a missing image gives image-missing and leaves nothing behind', async () => {
    await assert.rejects(
      Box.create(engine!, testSettings({ image: 'agent-sandbox-test/never-built:nope' }), { folder: '/tmp/missing-image', ownerId }),
      (error: unknown) => {
        assert.ok(SandboxError.is(error, 'image-missing'), String(error));
        assert.equal(
          error.message,
          'Image agent-sandbox-test/never-built:nope is not present locally. Pull it (Agent Sandbox: Pull Image) or set agentSandbox.image.',
        );
        assert.equal(error.options.setting, 'agentSandbox.image');
        return true;
      },
    );
    const label = [`${LABEL_OWNER}=${ownerId}`];
    assert.deepEqual(await engine!.call('list', (d) => d.listContainers({ all: true, filters: { label } })), []);
    assert.deepEqual((await engine!.call('list', (d) => d.listVolumes({ filters: { label } }))).Volumes ?? [], []);
  });

  test('a call already running is cancelled by its signal (real engine)', async () => {
    const controller = new AbortController();
    const box = await Box.create(engine!, testSettings(), { folder: '/tmp/agent-sandbox-engine-cancel', ownerId });
    try {
      const run = box.exec({ command: 'sleep 30', outputLimitBytes: 100, signal: controller.signal });
      setTimeout(() => controller.abort(), 300);
      const result = await run;
      assert.equal(result.outcome, 'cancelled');
      assert.ok(result.durationMs < 10_000);
    } finally {
      await box.remove();
    }
    assert.equal(await box.isRunning(), false);
    await assert.rejects(box.exec({ command: 'true', outputLimitBytes: 10 }), (e: unknown) => SandboxError.is(e, 'no-box'));
  });
});
