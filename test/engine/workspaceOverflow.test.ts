import * as assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ProtocolConnection } from 'vscode-languageserver-protocol/node';
import { LABEL_FOLDER } from '../../src/core/box/boxConfig';
import {
  ConfigureRequest,
  EnsureBoxRequest,
  ExecRequest,
  ProgressNotification,
  ResetRequest,
  type BoxSettings,
  type ErrorData,
} from '../../src/shared/protocol';
import { startEngineServer, stopEngineServer } from '../builders/engineServer';

// caches off as the builder sets them: configure sends the whole box again below, and another value is a change.
const BOX: Partial<BoxSettings> = { image: 'agent-sandbox-test/busybox', memoryMiB: 128, idleTimeoutMinutes: 0, workspaceSizeMiB: 16, caches: false };
const MiB = 1024 * 1024;

function boxesOf(folder: string): string[] {
  const r = spawnSync('docker', ['ps', '-aq', '--filter', `label=${LABEL_FOLDER}=${folder}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

suite('a workspace that overflows /workspace (engine server over stdio, real engine)', () => {
  let server: ChildProcess;
  let connection: ProtocolConnection;
  const folders: string[] = [];
  const progress: ProgressNotification.Params[] = [];
  let tokens = 0;

  suiteSetup(async () => {
    ({ process: server, connection } = await startEngineServer({
      box: BOX,
      beforeListen: (c) => c.onNotification(ProgressNotification.type, (p: ProgressNotification.Params) => void progress.push(p)),
    }));
  });

  suiteTeardown(async () => {
    try {
      await stopEngineServer({ process: server, connection });
    } finally {
      for (const folder of folders) rmSync(folder, { recursive: true, force: true });
    }
  });

  function newFolder(): string {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'as-overflow-'));
    folders.push(folder);
    return folder;
  }

  /** ensureBox with a fresh progress token: the error it failed with, and how many progress notifications it sent. */
  async function failingEnsureBox(folder: string): Promise<{ error: { message: string; data?: ErrorData }; progressed: number }> {
    const progressToken = `overflow-${++tokens}`;
    const error = await connection.sendRequest(EnsureBoxRequest.type, { folder, progressToken }).then(
      (info) => assert.fail(`expected workspace-full, got a box ${info.containerId}`),
      (e: { message: string; data?: ErrorData }) => e,
    );
    await delay(50); // notifications sent before the response have arrived by now
    return { error, progressed: progress.filter((p) => p.token === progressToken).length };
  }

  test('a mirror that fills /workspace fails with workspace-full naming the setting, then fails fast until a file changes', async () => {
    const folder = newFolder();
    // 12 MiB that does not compress plus 2,000 one-byte files (a 4 KiB page each on tmpfs): the byte count
    // (under 16 MiB) passes, the extraction fills the 16 MiB volume.
    writeFileSync(path.join(folder, 'big.bin'), randomBytes(12 * MiB));
    mkdirSync(path.join(folder, 'many'));
    for (let i = 0; i < 2000; i++) writeFileSync(path.join(folder, 'many', `f${i}`), 'x');

    const first = await failingEnsureBox(folder);
    assert.equal(first.error.data?.reason, 'workspace-full', first.error.message);
    assert.equal(first.error.data?.setting, 'agentSandbox.workspaceSizeMiB');
    assert.match(
      first.error.message,
      /does not fit in the box: 2001 files, 12\.0 MiB to mirror, and \/workspace holds 16 MiB \(agentSandbox\.workspaceSizeMiB\)/,
    );
    assert.ok(first.progressed > 0, 'the first attempt scanned and mirrored');
    assert.deepEqual(boxesOf(folder), [], 'the failed box was removed');

    // Later requests fail at once with the same error: no scan, no box, no mirror.
    const again = await failingEnsureBox(folder);
    assert.equal(again.error.message, first.error.message);
    assert.equal(again.error.data?.reason, 'workspace-full');
    assert.equal(again.progressed, 0, 'no second mirror was attempted');
    await assert.rejects(
      connection.sendRequest(ExecRequest.type, { folder, command: 'true' }),
      (e: { message: string }) => e.message === first.error.message,
    );
    // Settings sent again with the same values are no change.
    await connection.sendRequest(ConfigureRequest.type, { engine: {}, box: BOX });
    assert.equal((await failingEnsureBox(folder)).progressed, 0);
    assert.deepEqual(boxesOf(folder), []);

    // A file change means trying again; without the big file it fits.
    rmSync(path.join(folder, 'big.bin'));
    await delay(200);
    const run = await connection.sendRequest(ExecRequest.type, { folder, command: 'ls many | wc -l' });
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stdout.trim(), '2000');
    await connection.sendRequest(ResetRequest.type, { folder });
  });

  test('a workspace larger than /workspace fails at the scan, the box started alongside it is removed, and a settings change tries again', async () => {
    const folder = newFolder();
    writeFileSync(path.join(folder, 'huge.bin'), Buffer.alloc(20 * MiB, 1));
    const first = await failingEnsureBox(folder);
    assert.equal(first.error.data?.reason, 'workspace-full', first.error.message);
    assert.match(first.error.message, /1 files, 20\.0 MiB to mirror, and \/workspace holds 16 MiB/);
    assert.deepEqual(boxesOf(folder), [], 'no box is left for a workspace that cannot fit');
    assert.equal((await failingEnsureBox(folder)).progressed, 0);

    await connection.sendRequest(ConfigureRequest.type, { engine: {}, box: { ...BOX, workspaceSizeMiB: 64 } });
    const run = await connection.sendRequest(ExecRequest.type, { folder, command: 'wc -c < huge.bin' });
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stdout.trim(), String(20 * MiB));
    await connection.sendRequest(ConfigureRequest.type, { engine: {}, box: BOX });
  });
});
