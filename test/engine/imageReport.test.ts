import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tarStream from 'tar-stream';
import type { ProtocolConnection } from 'vscode-languageserver-protocol/node';
import { spawnSync, type ChildProcess } from 'node:child_process';
import {
  CheckEngineRequest,
  CollectRequest,
  ConfigureRequest,
  EnsureBoxRequest,
  ExecRequest,
  FollowImageTagRequest,
  PullImageRequest,
  ResetRequest,
  TerminalOpenRequest,
  type ErrorData,
} from '../../src/shared/protocol';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { inspectImageReport } from '../../src/core/docker/imageReport';
import { boxLabels } from '../../src/core/box/boxConfig';
import { connectTestEngine, removeEverythingOwnedBy, TEST_IMAGES, testOwnerId } from './engineHarness';
import { startEngineServer, stopEngineServer } from '../builders/engineServer';

const NOSHELL_IMAGE = 'agent-sandbox-test/noshell';

suite('image report (real engine: the test images, read from a never-started container)', () => {
  let engine: DockerEngine;
  const ownerId = testOwnerId('image-report');
  const labels = () => boxLabels({ folder: '(image report test)', ownerId, ownerPid: process.pid, ownerHost: os.hostname() });
  const made: string[] = [];

  suiteSetup(async () => {
    engine = await connectTestEngine();
    if (!(await engine.inspectImage(NOSHELL_IMAGE))) throw new Error(`build ${NOSHELL_IMAGE} with \`bash scripts/build-test-images.sh\``);
  });
  suiteTeardown(async () => {
    for (const image of made) await engine.call('removing a test image', (d) => d.getImage(image).remove({ force: true })).catch(() => undefined);
    await removeEverythingOwnedBy(engine, ownerId);
    engine?.dispose();
  });

  const reportOf = async (image: string) => {
    const id = (await engine.inspectImage(image))!.Id;
    return inspectImageReport(engine, image, id, { labels: labels() });
  };

  test('busybox: a shell, busybox find and tar, so collect reads the whole tree; no setuid files; a local id, no digest', async () => {
    const report = await reportOf(TEST_IMAGES.busybox);
    assert.equal(report.hasShell, true);
    assert.equal(report.find, 'busybox');
    assert.equal(report.tar, 'busybox');
    assert.match(report.collectPath, /whole tree.*no GNU find/);
    assert.deepEqual(report.setuidFiles, []);
    assert.equal(report.setuidCount, 0);
    assert.deepEqual(report.repoDigests, []);
    assert.equal(report.pinnedByDigest, false);
    assert.equal(report.user, 'sandbox');
    assert.equal(report.platform, `linux/${(await engine.version()).Arch}`);
    assert.ok(report.sizeBytes > 100_000 && report.entries > 100, JSON.stringify(report));
    // Nothing of the reading is left on the engine.
    const left = await engine.call('listing', (d) => d.listContainers({ all: true, filters: { label: [`dev.agent-sandbox.owner=${ownerId}`] } }));
    assert.equal(left.length, 0);
  });

  test('node: bash as /bin/sh and GNU find (the listing collect), the one setuid file the image has', async () => {
    const report = await reportOf(TEST_IMAGES.node);
    assert.equal(report.hasShell, true);
    assert.equal(report.find, 'gnu');
    assert.equal(report.tar, 'busybox');
    assert.match(report.collectPath, /GNU find listing.*image's tar/);
    assert.deepEqual(report.setuidFiles, ['/usr/local/bin/node-setuid 4755 0:0']);
  });

  test('the shell-less image: no /bin/sh, no find, no tar, collect through the archive API', async () => {
    const report = await reportOf(NOSHELL_IMAGE);
    assert.equal(report.hasShell, false);
    assert.equal(report.find, 'none');
    assert.equal(report.tar, 'none');
    assert.match(report.collectPath, /archive API.*no \/bin\/sh/);
    assert.equal(report.setuidCount, 0);
  });

  test('an image built with exactly one setuid and one setgid file lists both with mode and owner', async () => {
    const tag = `agent-sandbox-test/report-setuid:${process.pid}`;
    const container = await engine.call('creating', (d) =>
      d.createContainer({ Image: TEST_IMAGES.busybox, Cmd: ['true'], Labels: labels(), NetworkDisabled: true }),
    );
    const pack = tarStream.pack();
    pack.entry({ name: 'usr/local/bin/escalate', mode: 0o4755, uid: 0, gid: 0 }, 'not really a program');
    pack.entry({ name: 'usr/local/bin/groupie', mode: 0o2711, uid: 0, gid: 42 }, 'nor this');
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
    await engine.call('putting', (d) => d.getContainer(container.id).putArchive(Buffer.concat(chunks), { path: '/' }));
    await engine.call('committing', (d) => d.getContainer(container.id).commit({ repo: tag.split(':')[0], tag: tag.split(':')[1] }));
    made.push(tag);
    const report = await reportOf(tag);
    assert.deepEqual([...report.setuidFiles].sort(), ['/usr/local/bin/escalate 4755 0:0', '/usr/local/bin/groupie 2711 0:42']);
    assert.equal(report.setuidCount, 2);
    // Control: the image it was built from has none, so the two come from the image's file system.
    assert.equal((await reportOf(TEST_IMAGES.busybox)).setuidCount, 0);
  });
});

suite('image pinning and shell-less boxes (engine server over stdio, real engine)', () => {
  let server: ChildProcess;
  let connection: ProtocolConnection;
  let engine: DockerEngine;
  let storage: string;
  let folder: string;
  const tagRepo = `agent-sandbox-test/pin-${randomBytes(4).toString('hex')}`;
  const tag = `${tagRepo}:v1`;
  let busyboxId: string;
  let nodeId: string;

  const retag = async (image: string) => {
    await engine.call('tagging', (d) => d.getImage(image).tag({ repo: tagRepo, tag: 'v1' }));
  };
  const configure = (box: Record<string, unknown>) =>
    connection.sendRequest(ConfigureRequest.type, { engine: {}, box: { idleTimeoutMinutes: 0, memoryMiB: 256, cpus: 1, caches: false, ...box } });

  suiteSetup(async () => {
    engine = await connectTestEngine();
    busyboxId = (await engine.inspectImage(TEST_IMAGES.busybox))!.Id;
    nodeId = (await engine.inspectImage(TEST_IMAGES.node))!.Id;
    await retag(TEST_IMAGES.busybox);
    storage = mkdtempSync(path.join(os.tmpdir(), 'image-pin-storage-'));
    folder = mkdtempSync(path.join(os.tmpdir(), 'image-pin-folder-'));
    await fs.writeFile(path.join(folder, 'a.txt'), 'a\n');
    ({ process: server, connection } = await startEngineServer({ box: { image: tag, idleTimeoutMinutes: 0 }, storagePath: storage }));
  });
  suiteTeardown(async () => {
    try {
      await stopEngineServer({ process: server, connection });
    } finally {
      await engine.call('untagging', (d) => d.getImage(tag).remove()).catch(() => undefined);
      engine?.dispose();
      rmSync(storage, { recursive: true, force: true });
      rmSync(folder, { recursive: true, force: true });
    }
  });

  test('pinned (default): a tag moved to another image is reported and not followed; Follow Image Tag moves to it', async () => {
    const first = await connection.sendRequest(EnsureBoxRequest.type, { folder });
    assert.equal(first.image.id, busyboxId);
    assert.equal(first.image.reference, tag);
    assert.equal(first.image.note, undefined);
    assert.match(first.image.summary ?? '', /busybox|find busybox/);
    await connection.sendRequest(ResetRequest.type, { folder });

    await retag(TEST_IMAGES.node);
    const second = await connection.sendRequest(EnsureBoxRequest.type, { folder });
    assert.equal(second.image.id, busyboxId, 'the box keeps the pinned image');
    assert.match(second.image.note ?? '', /now points to sha256:[0-9a-f]{12}.*pinned.*Follow Image Tag/);
    const run = await connection.sendRequest(ExecRequest.type, { folder, command: 'ls /bin/busybox' });
    assert.equal(run.exitCode, 0, 'the box runs the pinned busybox image');
    assert.equal(run.image.id, busyboxId);
    assert.match(run.image.note ?? '', /Follow Image Tag/);
    const check = await connection.sendRequest(CheckEngineRequest.type);
    assert.equal(check.image.id, nodeId);
    assert.equal(check.image.pinnedId, busyboxId);
    assert.match(check.image.note ?? '', /keeps the pinned image/);
    assert.equal(check.image.report?.id, busyboxId, 'the report is of the image a box would run');
    // The pin survives a server restart: it is stored next to the reviews.
    const stored = JSON.parse(await fs.readFile(path.join(storage, 'images', 'pins.json'), 'utf8')) as { pins: Record<string, string> };
    assert.equal(stored.pins[tag], busyboxId);

    const followed = await connection.sendRequest(FollowImageTagRequest.type);
    assert.equal(followed.image.pinnedId, nodeId);
    assert.equal(followed.image.note, undefined);
    await connection.sendRequest(ResetRequest.type, { folder });
    const third = await connection.sendRequest(EnsureBoxRequest.type, { folder });
    assert.equal(third.image.id, nodeId);
    await connection.sendRequest(ResetRequest.type, { folder });
  });

  test('unpinned (pinImageDigest false): a new box follows the tag', async () => {
    await configure({ image: tag, pinImageDigest: false });
    await retag(TEST_IMAGES.busybox);
    const box = await connection.sendRequest(EnsureBoxRequest.type, { folder });
    assert.equal(box.image.id, busyboxId);
    assert.equal(box.image.note, undefined);
    await connection.sendRequest(ResetRequest.type, { folder });
  });

  test('a box on an image without a shell starts, runs argv commands, collects, and refuses a command line or a terminal clearly', async () => {
    await configure({ image: NOSHELL_IMAGE });
    assert.equal(spawnSync('git', ['init', '-q', folder]).status, 0);
    const box = await connection.sendRequest(EnsureBoxRequest.type, { folder });
    assert.equal(box.image.hasShell, false);
    assert.equal(box.git, 'none');
    assert.match(box.gitNote ?? '', /no shell \(\/bin\/sh\) to make a fresh repository/);
    assert.match(box.image.summary ?? '', /no shell/);
    const hello = await connection.sendRequest(ExecRequest.type, { folder, command: 'hello a b', argv: ['/usr/bin/hello', 'a', 'b c'] });
    assert.equal(hello.exitCode, 0, JSON.stringify(hello));
    assert.equal(hello.stdout, 'a b c\n');
    assert.equal(hello.stderr, '');
    const write = await connection.sendRequest(ExecRequest.type, {
      folder,
      command: 'write',
      argv: ['/usr/bin/hello', '--write', 'made.txt', 'made in the box'],
    });
    assert.equal(write.exitCode, 0, JSON.stringify(write));
    const changes = await connection.sendRequest(CollectRequest.type, { folder });
    assert.deepEqual(
      changes.changes.map((c) => [c.path, c.kind]),
      [['made.txt', 'added']],
    );
    await assert.rejects(connection.sendRequest(ExecRequest.type, { folder, command: 'echo hi' }), (error: { message: string; data?: ErrorData }) => {
      assert.equal(error.data?.reason, 'no-shell', error.message);
      assert.match(error.message, /has no shell \(\/bin\/sh\).*argv form.*-dev/);
      return true;
    });
    await assert.rejects(
      connection.sendRequest(TerminalOpenRequest.type, { folder, terminalId: 'noshell-terminal', rows: 24, cols: 80 }),
      (error: { message: string; data?: ErrorData }) => {
        assert.equal(error.data?.reason, 'no-shell', error.message);
        return true;
      },
    );
    const stuck = await connection.sendRequest(ExecRequest.type, {
      folder,
      command: 'sleep',
      argv: ['/usr/bin/hello', '--sleep', '30'],
      timeoutSeconds: 1,
    });
    assert.equal(stuck.outcome, 'timeout');
    assert.match(stuck.error ?? '', /no shell \(\/bin\/sh\), so the run's process could not be killed.*Reset Sandbox/);
    // The box is still up after all that: its keep-alive needs no shell.
    const again = await connection.sendRequest(ExecRequest.type, { folder, command: 'hello', argv: ['/usr/bin/hello', 'still', 'here'] });
    assert.equal(again.stdout, 'still here\n');
    await connection.sendRequest(ResetRequest.type, { folder, discardPending: true });
  });

  test('a pull the registry refuses for want of credentials names `docker login <registry>`', async () => {
    const registry = http.createServer((_req, res) => {
      res.writeHead(401, {
        'WWW-Authenticate': 'Basic realm="agent-sandbox-test"',
        'Content-Type': 'application/json',
        'Docker-Distribution-API-Version': 'registry/2.0',
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    });
    await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
    try {
      await assert.rejects(
        connection.sendRequest(PullImageRequest.type, { image: `${host}/private/app:1` }),
        (error: { message: string; data?: ErrorData }) => {
          assert.match(error.message, new RegExp(`docker login ${host.replace(/\./g, '\\.')}`), error.message);
          return true;
        },
      );
    } finally {
      registry.close();
    }
  });
});
