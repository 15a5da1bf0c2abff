import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { BoxSession } from '../../src/core/session/boxSession';
import { WorkspaceWatch } from '../../src/core/workspace/workspaceWatch';
import { connectTestEngine, removeEverythingOwnedBy, testOwnerId, testSettings } from './engineHarness';

/**
 * The mirror's own scan is watched, so the first run's catch-up reuses it (with the hashes of what was sent)
 * while no file event came — and rescans when one did, even one that came while the mirror was still sending.
 */
suite('engine: the first catch-up reuses the mirror scan only while the workspace is unchanged (real file events, real box)', function () {
  this.timeout(120_000);
  let engine: DockerEngine;
  const ownerId = testOwnerId('mirror-scan-reuse');
  const folders: string[] = [];
  const sessions: BoxSession[] = [];

  const folderWith = (files: Record<string, string>): string => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'as-reuse-'));
    folders.push(folder);
    for (const [relPath, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(folder, relPath)), { recursive: true });
      writeFileSync(path.join(folder, relPath), content);
    }
    return folder;
  };
  const open = async (folder: string, onProgress: (message: string) => void = () => undefined): Promise<BoxSession> => {
    const session = await BoxSession.open(
      { engine, settings: testSettings(), folder, ownerId, env: [], log: () => undefined, watch: new WorkspaceWatch(folder) },
      onProgress,
    );
    sessions.push(session);
    return session;
  };
  const run = async (session: BoxSession, command: string) => {
    const result = await session.exec({ command, runId: `r${Date.now()}` }, () => undefined);
    assert.equal(result.exitCode, 0, result.stderr);
    return result;
  };

  suiteSetup(async () => {
    engine = await connectTestEngine();
  });

  suiteTeardown(async () => {
    for (const session of sessions) await session.remove().catch(() => undefined);
    await removeEverythingOwnedBy(engine, ownerId);
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });

  // (mirrorPaths.test.ts has the case without an event, and an edit right after the mirror.)
  test('a file changed after the mirror scan, while the tar is sent, is not hidden by the reuse', async () => {
    const folder = folderWith({ 'src/a.txt': 'one\n' });
    let edited = false;
    // 'Mirroring workspace' comes after the scan has ended (and its watchers are set), as the tar goes out.
    const session = await open(folder, (message) => {
      if (message.startsWith('Mirroring workspace') && !edited) {
        edited = true;
        writeFileSync(path.join(folder, 'src', 'a.txt'), 'changed during the mirror\n');
        writeFileSync(path.join(folder, 'src', 'new.txt'), 'made during the mirror\n');
      }
    });
    assert.ok(edited, 'the edit was made during the mirror');
    const result = await run(session, 'cat src/a.txt src/new.txt');
    assert.equal(result.stdout, 'changed during the mirror\nmade during the mirror\n');
    assert.equal(session.hostScans, 1, 'the event after the scan made the first run rescan');
  });
});
