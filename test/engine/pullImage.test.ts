import * as assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import type { ProtocolConnection } from 'vscode-languageserver-protocol/node';
import { CheckEngineRequest, ConfigureRequest, ProgressNotification, PullImageRequest, type ErrorData } from '../../src/shared/protocol';
import { startEngineServer, stopEngineServer } from '../builders/engineServer';
import { startFakeRegistry, type FakeRegistry } from '../fakeRegistry';

suite('pulling an image (engine server over stdio, real engine, a fake registry on 127.0.0.1)', () => {
  let server: ChildProcess;
  let connection: ProtocolConnection;
  let registry: FakeRegistry;
  const progress: ProgressNotification.Params[] = [];

  suiteSetup(async () => {
    registry = await startFakeRegistry();
    ({ process: server, connection } = await startEngineServer({
      box: { image: 'agent-sandbox-test/busybox', idleTimeoutMinutes: 0 },
      beforeListen: (c) => c.onNotification(ProgressNotification.type, (p: ProgressNotification.Params) => void progress.push(p)),
    }));
  });

  suiteTeardown(async () => {
    try {
      await stopEngineServer({ process: server, connection });
    } finally {
      await registry?.close();
      if (registry) spawnSync('docker', ['image', 'rm', registry.reference]);
    }
  });

  test('a pull that fails in the middle of the stream is an engine-error naming the cause, never "pulled"; its progress showed sizes', async () => {
    await assert.rejects(
      connection.sendRequest(PullImageRequest.type, { image: registry.reference, progressToken: 'broken-pull' }),
      (error: { message: string; data?: ErrorData }) => {
        assert.equal(error.data?.reason, 'engine-error', error.message);
        assert.match(
          error.message,
          new RegExp(`Pulling image ${registry.reference.replace(/[.]/g, '\\.')} failed: filesystem layer verification failed`),
        );
        return true;
      },
    );
    assert.ok(
      registry.requests.some((r) => r.startsWith('GET /v2/agent-sandbox-test/broken/blobs/')),
      `the engine fetched the blob: ${registry.requests}`,
    );
    const ours = progress.filter((p) => p.token === 'broken-pull');
    assert.ok(ours.length > 0, 'progress was reported');
    const sized = ours.filter((p) => p.total !== undefined);
    assert.ok(sized.length > 0, `download progress with sizes: ${JSON.stringify(ours)}`);
    for (const p of sized) {
      assert.equal(p.total, registry.layerSize);
      assert.ok(p.done !== undefined && p.done >= 0 && p.done <= p.total!, JSON.stringify(p));
      assert.match(p.message, /^(Downloading|Extracting layers): [\d.]+ (B|KiB|MiB) of 4\.0 MiB \(\d{1,3}%\)$/);
    }
    // The image is not there: the failure was real, and a check says so.
    await connection.sendRequest(ConfigureRequest.type, { engine: {}, box: { image: registry.reference, idleTimeoutMinutes: 0, caches: false } });
    const report = await connection.sendRequest(CheckEngineRequest.type);
    assert.equal(report.image.present, false);
  });
});
