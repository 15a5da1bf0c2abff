import * as assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ProtocolConnection } from 'vscode-languageserver-protocol/node';
import {
  AdvanceBaselineRequest,
  ApplyRequest,
  CollectRequest,
  ExecRequest,
  PendingChangesRequest,
  ReadProposalRequest,
  ResetRequest,
} from '../../src/shared/protocol';
import { serverJs, startEngineServer } from '../builders/engineServer';

interface Server {
  process: ChildProcess;
  connection: ProtocolConnection;
}

function startServer(storagePath: string): Promise<Server> {
  return startEngineServer({ storagePath, box: { image: 'agent-sandbox-test/busybox', idleTimeoutMinutes: 0 } });
}

function boxesOf(folder: string): string[] {
  const r = spawnSync('docker', ['ps', '-aq', '--filter', `label=dev.agent-sandbox.folder=${folder}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

suite('pending reviews survive a server restart (real engine)', () => {
  let folder: string;
  let storage: string;
  let server: Server | undefined;

  suiteSetup(() => {
    if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run "npm run build" first`);
    const ping = spawnSync('docker', ['version'], { encoding: 'utf8' });
    if (ping.status !== 0) throw new Error(`No Docker engine answers: ${ping.stderr}`);
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-review-'));
    storage = mkdtempSync(path.join(os.tmpdir(), 'as-storage-'));
    mkdirSync(path.join(folder, 'src'));
    writeFileSync(path.join(folder, 'src', 'a.txt'), 'one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\n');
    writeFileSync(path.join(folder, 'gone.txt'), 'bye\n');
  });

  suiteTeardown(async () => {
    if (server) {
      await server.connection.sendRequest(ResetRequest.type, {}).catch(() => undefined);
      server.connection.dispose();
      server.process.kill();
    }
    for (const id of boxesOf(folder)) spawnSync('docker', ['rm', '-f', id]);
    rmSync(folder, { recursive: true, force: true });
    rmSync(storage, { recursive: true, force: true });
  });

  test('a killed server leaves its review on disk; the next server lists it, shows it and applies it', async () => {
    const first = await startServer(storage);
    const run = await first.connection.sendRequest(ExecRequest.type, {
      folder,
      command: "sed -i 's/two/TWO/; s/seven/SEVEN/' src/a.txt && echo fresh > new.txt && rm gone.txt",
    });
    assert.equal(run.exitCode, 0, run.stderr);
    const collected = await first.connection.sendRequest(CollectRequest.type, { folder });
    assert.equal(collected.changes.length, 3);
    first.process.kill('SIGKILL');
    first.connection.dispose();

    server = await startServer(storage);
    const pending = await server.connection.sendRequest(PendingChangesRequest.type, { folder });
    assert.deepEqual(pending.changes, collected.changes, 'the same pending changes come back');
    const proposal = await server.connection.sendRequest(ReadProposalRequest.type, { folder, path: 'new.txt' });
    assert.equal(Buffer.from(proposal.base64, 'base64').toString(), 'fresh\n');

    // One "hunk" of a.txt is taken into the workspace by hand; the rest stays pending against the new baseline.
    writeFileSync(path.join(folder, 'src', 'a.txt'), 'one\nTWO\nthree\nfour\nfive\nsix\nseven\neight\n');
    const advanced = await server.connection.sendRequest(AdvanceBaselineRequest.type, { folder, paths: ['src/a.txt'] });
    const a = advanced.changes.find((c) => c.path === 'src/a.txt');
    assert.equal(a?.kind, 'modified', 'the other hunk is still pending');
    assert.ok(boxesOf(folder).length >= 1, 'a new box holds the restored changes');

    const applied = await server.connection.sendRequest(ApplyRequest.type, { folder });
    assert.deepEqual(applied.conflicts, []);
    assert.deepEqual([...applied.applied].sort(), ['gone.txt', 'new.txt', 'src/a.txt']);
    assert.equal(readFileSync(path.join(folder, 'src', 'a.txt'), 'utf8'), 'one\nTWO\nthree\nfour\nfive\nsix\nSEVEN\neight\n');
    assert.equal(readFileSync(path.join(folder, 'new.txt'), 'utf8'), 'fresh\n');
    assert.equal(existsSync(path.join(folder, 'gone.txt')), false);
    const after = await server.connection.sendRequest(PendingChangesRequest.type, { folder });
    assert.deepEqual(after.changes, []);
  });

  test('a restored review still detects what the developer changed meanwhile', async () => {
    assert.ok(server);
    await server.connection.sendRequest(ExecRequest.type, { folder, command: 'echo box > new.txt' });
    await server.connection.sendRequest(CollectRequest.type, { folder });
    server.process.kill('SIGKILL');
    server.connection.dispose();
    writeFileSync(path.join(folder, 'new.txt'), 'developer\n');
    server = await startServer(storage);
    const applied = await server.connection.sendRequest(ApplyRequest.type, { folder });
    assert.deepEqual(applied.conflicts, ['new.txt']);
    assert.equal(readFileSync(path.join(folder, 'new.txt'), 'utf8'), 'developer\n');
  });
});
