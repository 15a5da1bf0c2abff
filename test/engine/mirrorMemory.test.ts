import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { SandboxError } from '../../src/core/errors';
import { BoxSession } from '../../src/core/session/boxSession';
import { connectTestEngine, removeEverythingOwnedBy, testOwnerId, testSettings } from './engineHarness';

/**
 * What the box's own tar writes into the in-memory /workspace is charged to the box's memory limit; the engine's
 * archive API writes from the daemon's side. A workspace large for the box's memory goes the second way.
 */
suite("engine: a tmpfs workspace large for the box's memory is mirrored without counting against it (real engine)", function () {
  this.timeout(180_000);
  let engine: DockerEngine;
  const ownerId = testOwnerId('mirror-memory');
  let folder: string;
  // 72 MiB in 24 files: over the whole of a 64 MiB box's memory limit.
  const FILES = 24;
  const content = (i: number) => Buffer.alloc(3 * 1024 * 1024, 97 + (i % 26));

  suiteSetup(async () => {
    engine = await connectTestEngine();
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-mirror-memory-'));
    for (let i = 0; i < FILES; i++) writeFileSync(path.join(folder, `f${i}.bin`), content(i));
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
    rmSync(folder, { recursive: true, force: true });
  });

  const open = (mirrorWith?: 'box-tar') => {
    const log: string[] = [];
    const opening = BoxSession.open(
      {
        engine,
        settings: testSettings({ memoryMiB: 64, workspaceSizeMiB: 256 }),
        folder,
        ownerId,
        env: [],
        log: (line) => log.push(line),
        mirrorWith,
      },
      () => undefined,
    );
    return { opening, log };
  };

  test('the default way: the archive API (the log says why), every file whole in a 64 MiB box', async () => {
    const { opening, log } = open();
    const session = await opening;
    try {
      assert.ok(
        log.some((l) => l.includes("mirroring through the engine's archive API") && l.includes('agentSandbox.memoryMiB (64)')),
        log.join('\n'),
      );
      const result = await session.exec(
        { command: 'md5sum f*.bin | cut -d" " -f1 | sort -u | wc -l; du -sm . | cut -f1', runId: 'r1' },
        () => undefined,
      );
      assert.equal(result.exitCode, 0, result.stderr);
      const [distinct, mib] = result.stdout.trim().split('\n').map(Number);
      assert.equal(distinct, 24, `every file arrived with its own content: ${result.stdout}`);
      assert.ok(mib >= 72, `${mib} MiB in /workspace`);
    } finally {
      await session.remove();
    }
  });

  test("the control: forced through the box's own tar, the same workspace is OOM-killed, and the error names the settings", async () => {
    const { opening } = open('box-tar');
    await assert.rejects(opening, (error: unknown) => {
      assert.ok(SandboxError.is(error), String(error));
      assert.match((error as Error).message, /exit 137/);
      assert.match((error as Error).message, /agentSandbox\.memoryMiB/);
      assert.match((error as Error).message, /agentSandbox\.workspaceVolume/);
      return true;
    });
  });
});
