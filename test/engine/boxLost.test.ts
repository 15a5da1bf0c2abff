import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ProtocolConnection } from 'vscode-languageserver-protocol/node';
import type { ChildProcess } from 'node:child_process';
import { EnsureBoxRequest, ExecRequest, OutputNotification } from '../../src/shared/protocol';
import { startEngineServer, stopEngineServer } from '../builders/engineServer';

const IMAGE = 'agent-sandbox-test/busybox';

suite('a box lost mid-run (engine server over stdio, real engine)', () => {
  let server: ChildProcess;
  let connection: ProtocolConnection;
  let folder: string;
  const output: OutputNotification.Params[] = [];

  suiteSetup(async () => {
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-boxlost-'));
    writeFileSync(path.join(folder, 'a.txt'), 'a\n');
    ({ process: server, connection } = await startEngineServer({
      box: { image: IMAGE, memoryMiB: 128, idleTimeoutMinutes: 0 },
      beforeListen: (c) => c.onNotification(OutputNotification.type, (p: OutputNotification.Params) => void output.push(p)),
    }));
  });

  suiteTeardown(async () => {
    try {
      await stopEngineServer({ process: server, connection });
    } finally {
      if (folder) rmSync(folder, { recursive: true, force: true });
    }
  });

  /** Starts a long run, waits until it printed, lets `loseBox` act on the container, and returns the run's result. */
  async function runWhileLosingBox(runId: string, loseBox: (containerId: string) => void) {
    const box = await connection.sendRequest(EnsureBoxRequest.type, { folder });
    const run = connection.sendRequest(ExecRequest.type, { folder, command: 'echo started; sleep 60; echo never', runId });
    const deadline = Date.now() + 20_000;
    while (!output.some((o) => o.runId === runId && o.text.includes('started'))) {
      assert.ok(Date.now() < deadline, 'the run never started');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    loseBox(box.containerId);
    return { box, result: await run };
  }

  for (const [how, args] of [
    ['removed', ['rm', '-f']],
    ['stopped', ['kill']],
  ] as const) {
    test(`a box ${how} from outside mid-run is an engine-error outcome with boxLost, and the next run gets a fresh box`, async () => {
      const { box, result } = await runWhileLosingBox(`lost-${how}`, (id) => {
        const r = spawnSync('docker', [...args, id], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
      });
      assert.equal(result.outcome, 'engine-error', JSON.stringify(result));
      assert.equal(result.boxLost, true);
      assert.equal(result.exitCode, null);
      assert.match(result.error ?? '', /box was (removed|stopped)/);
      assert.match(result.error ?? '', /next run starts a fresh box/);
      assert.equal(result.stdout, 'started\n', 'the output before the loss is kept');

      const next = await connection.sendRequest(ExecRequest.type, { folder, command: 'cat a.txt' });
      assert.equal(next.outcome, 'exited', JSON.stringify(next));
      assert.equal(next.exitCode, 0, next.stderr);
      assert.equal(next.stdout, 'a\n', 'the fresh box has the workspace mirrored in');
      const fresh = await connection.sendRequest(EnsureBoxRequest.type, { folder });
      assert.notEqual(fresh.containerId, box.containerId);
      if (how === 'stopped') spawnSync('docker', ['rm', '-f', box.containerId]);
    });
  }
});
