import * as assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync, lstatSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ProtocolConnection } from 'vscode-languageserver-protocol/node';
import {
  ApplyRequest,
  CheckEngineRequest,
  CollectRequest,
  ConfigureRequest,
  DiscardRequest,
  EnsureBoxRequest,
  ExecRequest,
  FileOpRequest,
  OutputNotification,
  ReadProposalRequest,
  ResetRequest,
  type ChangeSet,
} from '../../src/shared/protocol';
import { serverJs, startEngineServer } from '../builders/engineServer';

const IMAGE = 'agent-sandbox-test/node';

/** Files and their contents, walked from a folder (directories end with '/'). */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const rel = path.relative(root, full).split(path.sep).join('/');
      const st = lstatSync(full);
      if (st.isDirectory()) {
        out[`${rel}/`] = '';
        walk(full);
      } else if (st.isSymbolicLink()) {
        out[rel] = `-> ${require('node:fs').readlinkSync(full)}`;
      } else {
        out[rel] = readFileSync(full, 'utf8');
      }
    }
  };
  walk(root);
  return out;
}

function managedContainers(): string[] {
  const r = spawnSync('docker', ['ps', '-aq', '--filter', 'label=dev.agent-sandbox.managed=true'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `docker ps failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

suite('engine server over stdio (JSON-RPC, real engine)', () => {
  let server: ChildProcess;
  let connection: ProtocolConnection;
  let folder: string;
  const output: OutputNotification.Params[] = [];

  suiteSetup(async () => {
    if (!existsSync(serverJs)) throw new Error(`${serverJs} is missing: run "npm run build" first`);
    const ping = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8' });
    if (ping.status !== 0) throw new Error(`No Docker engine answers (DOCKER_HOST=${process.env.DOCKER_HOST}): ${ping.stderr}`);
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-proto-'));
    mkdirSync(path.join(folder, 'src'));
    writeFileSync(path.join(folder, 'README.md'), '# demo\n');
    writeFileSync(path.join(folder, 'src', 'app.js'), 'console.log("v1");\n');
    writeFileSync(path.join(folder, 'src', 'old-name.txt'), 'same content\n');
    writeFileSync(path.join(folder, 'doomed.txt'), 'delete me\n');
    writeFileSync(path.join(folder, '.env'), 'SECRET=hunter2\n');
    writeFileSync(path.join(folder, '.env.example'), 'SECRET=\n');
    writeFileSync(path.join(folder, 'run.sh'), '#!/bin/sh\necho hi\n');
    chmodSync(path.join(folder, 'run.sh'), 0o755);

    ({ process: server, connection } = await startEngineServer({
      box: { image: IMAGE, memoryMiB: 256, idleTimeoutMinutes: 0 },
      beforeListen: (c) =>
        c.onNotification(OutputNotification.type, (p: OutputNotification.Params) => {
          output.push(p);
        }),
    }));
  });

  suiteTeardown(async () => {
    try {
      await connection?.sendRequest(ResetRequest.type, {});
    } finally {
      connection?.dispose();
      server?.kill();
      if (folder) rmSync(folder, { recursive: true, force: true });
    }
  });

  test('a bad setting is refused with its key', async () => {
    await assert.rejects(
      connection.sendRequest(ConfigureRequest.type, { engine: {}, box: { memoryMiB: -5 } }),
      (error: { data?: { reason?: string; setting?: string } }) =>
        error.data?.reason === 'invalid-setting' && error.data.setting === 'agentSandbox.memoryMiB',
    );
  });

  test('checkEngine reports the engine and the image', async () => {
    const report = await connection.sendRequest(CheckEngineRequest.type);
    assert.match(report.version, /^\d+\.\d+/);
    assert.ok(report.runtimes.includes('runc'), `runtimes: ${report.runtimes}`);
    assert.equal(report.image.reference, IMAGE);
    assert.equal(report.image.present, true);
  });

  test('ensureBox mirrors the workspace without secrets', async () => {
    const info = await connection.sendRequest(EnsureBoxRequest.type, { folder });
    assert.ok(info.containerId);
    assert.equal(
      managedContainers().some((id) => info.containerId.startsWith(id)),
      true,
    );
    const ls = await connection.sendRequest(ExecRequest.type, { folder, command: 'ls -A /workspace; stat -c "%a %u" run.sh' });
    assert.equal(ls.exitCode, 0, ls.stderr);
    const names = ls.stdout.trim().split('\n');
    assert.ok(names.includes('.env.example'));
    assert.ok(!names.includes('.env'), 'the .env secret must not be sent');
    assert.ok(names.includes('755 1000'), `mode and owner kept: ${ls.stdout}`);
  });

  test('exec streams output and reports exit codes', async () => {
    output.length = 0;
    const result = await connection.sendRequest(ExecRequest.type, {
      folder,
      command: 'echo out; echo err >&2; exit 3',
      runId: 'streamed',
    });
    assert.equal(result.outcome, 'exited');
    assert.equal(result.exitCode, 3);
    assert.equal(result.stdout, 'out\n');
    assert.equal(result.stderr, 'err\n');
    assert.ok(output.some((o) => o.runId === 'streamed' && o.stream === 'stdout' && o.text.includes('out')));
    assert.match(result.image.id, /^sha256:/);
  });

  test('collect, apply: the folder ends up equal to the box', async () => {
    const run = await connection.sendRequest(ExecRequest.type, {
      folder,
      command: [
        'echo "console.log(\\"v2\\");" > src/app.js',
        'mkdir -p lib && echo "new file" > lib/new.txt',
        'rm doomed.txt',
        'mv src/old-name.txt src/new-name.txt',
        'chmod 644 run.sh',
        'echo "not a secret" > .env',
      ].join(' && '),
    });
    assert.equal(run.exitCode, 0, run.stderr);
    const changes: ChangeSet = await connection.sendRequest(CollectRequest.type, { folder });
    const byPath = Object.fromEntries(changes.changes.map((c) => [c.path, c]));
    assert.equal(byPath['src/app.js']?.kind, 'modified');
    assert.equal(byPath['lib/new.txt']?.kind, 'added');
    assert.equal(byPath['doomed.txt']?.kind, 'deleted');
    assert.equal(byPath['src/new-name.txt']?.kind, 'renamed');
    assert.equal(byPath['src/new-name.txt']?.fromPath, 'src/old-name.txt');
    assert.equal(byPath['run.sh']?.kind, 'mode');
    assert.equal(byPath['.env'], undefined, 'secret paths are never proposed');
    const proposal = await connection.sendRequest(ReadProposalRequest.type, { folder, path: 'src/app.js' });
    assert.equal(Buffer.from(proposal.base64, 'base64').toString(), 'console.log("v2");\n');
    // Nothing reached the workspace yet.
    assert.equal(readFileSync(path.join(folder, 'src', 'app.js'), 'utf8'), 'console.log("v1");\n');

    const result = await connection.sendRequest(ApplyRequest.type, { folder });
    assert.deepEqual(result.conflicts, []);
    const after = snapshot(folder);
    assert.equal(after['src/app.js'], 'console.log("v2");\n');
    assert.equal(after['lib/new.txt'], 'new file\n');
    assert.equal(after['doomed.txt'], undefined);
    assert.equal(after['src/old-name.txt'], undefined);
    assert.equal(after['src/new-name.txt'], 'same content\n');
    assert.equal(after['.env'], 'SECRET=hunter2\n', 'the real secret is untouched');
    assert.equal(statSync(path.join(folder, 'run.sh')).mode & 0o777, 0o644);
    const again = await connection.sendRequest(CollectRequest.type, { folder });
    assert.deepEqual(again.changes, [], 'after apply the baseline equals the box');
  });

  test('catch-up sends host edits before the next run', async () => {
    writeFileSync(path.join(folder, 'README.md'), '# edited on the host\n');
    rmSync(path.join(folder, 'lib', 'new.txt'));
    const run = await connection.sendRequest(ExecRequest.type, { folder, command: 'cat README.md; ls lib' });
    assert.equal(run.stdout, '# edited on the host\n');
    assert.deepEqual([...run.caughtUp].sort(), ['README.md', 'lib/new.txt']);
    const changes = await connection.sendRequest(CollectRequest.type, { folder });
    assert.deepEqual(changes.changes, [], 'host edits are not proposed back');
  });

  test('a file changed on both sides keeps the box version and is a conflict', async () => {
    await connection.sendRequest(ExecRequest.type, { folder, command: 'echo box > README.md' });
    await connection.sendRequest(CollectRequest.type, { folder });
    writeFileSync(path.join(folder, 'README.md'), 'host\n');
    const run = await connection.sendRequest(ExecRequest.type, { folder, command: 'cat README.md' });
    assert.equal(run.stdout, 'box\n');
    assert.deepEqual(run.conflicts, ['README.md']);
    await connection.sendRequest(CollectRequest.type, { folder });
    const result = await connection.sendRequest(ApplyRequest.type, { folder, paths: ['README.md'] });
    assert.deepEqual(result.conflicts, ['README.md']);
    assert.equal(readFileSync(path.join(folder, 'README.md'), 'utf8'), 'host\n', 'a conflict is never overwritten');
  });

  test('discard reverts the box to the workspace', async () => {
    await connection.sendRequest(ExecRequest.type, { folder, command: 'echo scratch > scratch.txt; echo changed > src/app.js' });
    const changes = await connection.sendRequest(CollectRequest.type, { folder });
    assert.ok(changes.changes.some((c) => c.path === 'scratch.txt'));
    await connection.sendRequest(DiscardRequest.type, { folder });
    const check = await connection.sendRequest(ExecRequest.type, {
      folder,
      command: 'cat src/app.js; cat README.md; test -e scratch.txt && echo present || echo absent',
    });
    assert.equal(check.stdout, 'console.log("v2");\nhost\nabsent\n');
    assert.equal(existsSync(path.join(folder, 'scratch.txt')), false);
  });

  test('file operations act in the box only', async () => {
    await connection.sendRequest(FileOpRequest.type, { folder, op: 'write', path: 'notes/todo.md', content: 'a\nb\na\n' });
    assert.equal(existsSync(path.join(folder, 'notes')), false);
    const read = await connection.sendRequest(FileOpRequest.type, { folder, op: 'read', path: 'notes/todo.md' });
    assert.equal(read.content, 'a\nb\na\n');
    await assert.rejects(
      connection.sendRequest(FileOpRequest.type, { folder, op: 'edit', path: 'notes/todo.md', oldString: 'a', newString: 'c' }),
      (e: { data?: { reason?: string } }) => e.data?.reason === 'edit-ambiguous',
    );
    await assert.rejects(
      connection.sendRequest(FileOpRequest.type, { folder, op: 'edit', path: 'notes/todo.md', oldString: 'zzz', newString: 'c' }),
      (e: { data?: { reason?: string } }) => e.data?.reason === 'edit-no-match',
    );
    const edit = await connection.sendRequest(FileOpRequest.type, { folder, op: 'edit', path: 'notes/todo.md', oldString: 'b', newString: 'B' });
    assert.equal(edit.replacements, 1);
    const list = await connection.sendRequest(FileOpRequest.type, { folder, op: 'list', path: '.' });
    assert.ok(list.entries?.includes('notes/'));
    await assert.rejects(
      connection.sendRequest(FileOpRequest.type, { folder, op: 'read', path: '../etc/passwd' }),
      (e: { data?: { reason?: string } }) => e.data?.reason === 'path-outside-workspace',
    );
    await connection.sendRequest(FileOpRequest.type, { folder, op: 'delete', path: 'notes' });
    const gone = await connection.sendRequest(FileOpRequest.type, { folder, op: 'list', path: '.' });
    assert.ok(!gone.entries?.includes('notes/'));
  });

  test('reset removes the box and its volume', async () => {
    const info = await connection.sendRequest(EnsureBoxRequest.type, { folder });
    await connection.sendRequest(ResetRequest.type, { folder });
    assert.equal(
      managedContainers().some((id) => info.containerId.startsWith(id)),
      false,
    );
    const volumes = spawnSync('docker', ['volume', 'ls', '-q'], { encoding: 'utf8' }).stdout;
    assert.ok(!volumes.split('\n').includes(info.volumeName), 'the workspace volume is removed too');
  });
});
