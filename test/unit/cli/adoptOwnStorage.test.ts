import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { adoptOwnStorage } from '../../../src/cli/adoptOwnStorage';
import { CliHistoryRecorder, openHistory } from '../../../src/cli/cliHistory';
import { folderStorage, ownFolderStorage } from '../../../src/cli/folderStorage';
import { ReviewStore, reviewDirName, type PendingReview } from '../../../src/core/review/reviewStore';
import type { ChangeSet } from '../../../src/shared/protocol';
import { ImageStore } from '../../../src/core/docker/imageStore';
import { CacheLastUse } from '../../../src/core/cache/cacheLastUse';

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A pending review of `folder` adding `file` with `content`. */
function reviewOf(folder: string, file: string, content: string): PendingReview {
  const changeSet: ChangeSet = {
    folder,
    changes: [{ path: file, kind: 'added', type: 'file', mode: 0o644, size: content.length, hash: sha(content), binary: false, flags: [] }],
    refused: [],
    ignoredCount: 0,
  };
  return {
    changeSet,
    baseline: new Map(),
    boxEntries: new Map([[file, { path: file, type: 'file', mode: 0o644, size: content.length, hash: sha(content) }]]),
    contents: new Map([[file, Buffer.from(content)]]),
    baseContents: new Map(),
  };
}

suite('Command line: the extension brings in what the command line kept for a folder VS Code never opened', () => {
  let home: string;
  let env: Record<string, string>;
  let workspaceStorage: string;
  const folder = '/projects/never-opened';

  setup(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'as-adopt-'));
    env = { XDG_STATE_HOME: path.join(home, 'state') };
    workspaceStorage = path.join(home, 'workspaceStorage', 'abc', 'agent-sandbox.agent-sandbox');
  });
  teardown(() => rmSync(home, { recursive: true, force: true }));

  /** What `agent-sandbox run` leaves in its own storage: the review and the run's history records. */
  async function leftByTheCommandLine(file: string, content: string): Promise<string> {
    const storage = await folderStorage(folder, env, home);
    assert.equal(storage.kind, 'own');
    assert.equal(storage.dir, ownFolderStorage(folder, env, home));
    await new ReviewStore(path.join(storage.dir, 'reviews')).save(folder, reviewOf(folder, file, content));
    const history = await openHistory(storage.dir);
    const recorder = new CliHistoryRecorder(history);
    await recorder.start(
      { runId: `run-${file}`, folder, source: 'mcp', agent: 'claude-code', command: `write ${file}`, startedAt: Date.now() - 2_000 },
      undefined,
    );
    await recorder.end({ runId: `run-${file}`, endedAt: Date.now() - 1_000 });
    history.dispose();
    return storage.dir;
  }

  test("the review moves into the workspace storage and loads there with its content; the history records join the workspace's; nothing is left behind", async () => {
    const own = await leftByTheCommandLine('from-cli.txt', 'made by the command line\n');
    // The workspace's history has a record of its own, torn at the end (a crash mid-write).
    const workspaceHistory = await openHistory(workspaceStorage);
    await new CliHistoryRecorder(workspaceHistory).start(
      { runId: 'window-run', folder, source: 'command', command: 'make', startedAt: Date.now() - 3_000 },
      undefined,
    );
    workspaceHistory.dispose();
    appendFileSync(path.join(workspaceStorage, 'history', 'history.jsonl'), '{"id":"torn');

    // Control: the workspace storage knows nothing of the review before.
    assert.equal(await new ReviewStore(path.join(workspaceStorage, 'reviews')).load(folder), undefined);
    const adopted = adoptOwnStorage(folder, workspaceStorage, env, home);
    assert.deepEqual(adopted, { from: own, review: true, reviewLeft: false, historyLines: 2 });

    const loaded = await new ReviewStore(path.join(workspaceStorage, 'reviews')).load(folder);
    assert.ok(loaded, 'the review loads from the workspace storage');
    assert.deepEqual(
      loaded.changeSet.changes.map((c) => [c.path, c.kind]),
      [['from-cli.txt', 'added']],
    );
    assert.equal(loaded.contents.get('from-cli.txt')?.toString(), 'made by the command line\n');
    const history = await openHistory(workspaceStorage);
    const records = history.records();
    history.dispose();
    assert.deepEqual(records.map((r) => [r.id, r.source, r.agent, r.command]).sort(), [
      ['run-from-cli.txt', 'mcp', 'claude-code', 'write from-cli.txt'],
      ['window-run', 'command', undefined, 'make'],
    ]);
    assert.ok(!existsSync(own), `the command line's storage is gone: ${existsSync(own) ? readdirSync(own).join(', ') : ''}`);
    // A second activation finds nothing more to bring.
    assert.equal(adoptOwnStorage(folder, workspaceStorage, env, home), undefined);
  });

  test("the engine server's image pins, reports and cache times come along (the workspace's own pin wins), and nothing is left behind", async () => {
    const own = await leftByTheCommandLine('from-cli.txt', 'x\n');
    const cliImages = new ImageStore(path.join(own, 'images'));
    await cliImages.setPin('node:22', 'sha256:cli-node');
    await cliImages.setPin('busybox', 'sha256:cli-busybox');
    mkdirSync(path.join(own, 'images', 'reports'), { recursive: true });
    writeFileSync(path.join(own, 'images', 'reports', 'r1.json'), '{"id":"sha256:cli-node"}');
    const cliTimes = new CacheLastUse();
    cliTimes.setDir(own);
    await cliTimes.mark(['agent-sandbox-cache-npm-a'], 2_000);
    await cliTimes.mark(['agent-sandbox-cache-pip-a'], 5_000);
    const windowImages = new ImageStore(path.join(workspaceStorage, 'images'));
    await windowImages.setPin('node:22', 'sha256:window-node');
    const windowTimes = new CacheLastUse();
    windowTimes.setDir(workspaceStorage);
    await windowTimes.mark(['agent-sandbox-cache-npm-a'], 3_000);
    await windowTimes.mark(['agent-sandbox-cache-pip-a'], 1_000);

    adoptOwnStorage(folder, workspaceStorage, env, home);

    const images = new ImageStore(path.join(workspaceStorage, 'images'));
    assert.equal(await images.pinned('node:22'), 'sha256:window-node');
    assert.equal(await images.pinned('busybox'), 'sha256:cli-busybox');
    assert.ok(existsSync(path.join(workspaceStorage, 'images', 'reports', 'r1.json')));
    const times = new CacheLastUse();
    times.setDir(workspaceStorage);
    assert.deepEqual([...(await times.all())].sort(), [
      ['agent-sandbox-cache-npm-a', 3_000],
      ['agent-sandbox-cache-pip-a', 5_000],
    ]);
    assert.ok(!existsSync(own), `the command line's storage is gone: ${existsSync(own) ? readdirSync(own).join(', ') : ''}`);
  });

  test("the persisted data keeps its checks: a blob altered in the command line's storage is not loaded after the move", async () => {
    const own = await leftByTheCommandLine('from-cli.txt', 'genuine\n');
    writeFileSync(path.join(own, 'reviews', reviewDirName(folder), 'blobs', sha('genuine\n')), 'tampered\n');
    adoptOwnStorage(folder, workspaceStorage, env, home);
    const loaded = await new ReviewStore(path.join(workspaceStorage, 'reviews')).load(folder);
    assert.ok(loaded);
    assert.equal(loaded.contents.has('from-cli.txt'), false, 'content whose hash does not match is dropped');
  });

  test("a workspace that has pending changes of its own keeps them; the command line's review stays where it is (and is said so)", async () => {
    const own = await leftByTheCommandLine('from-cli.txt', 'cli\n');
    await new ReviewStore(path.join(workspaceStorage, 'reviews')).save(folder, reviewOf(folder, 'from-window.txt', 'window\n'));
    const adopted = adoptOwnStorage(folder, workspaceStorage, env, home);
    assert.deepEqual(adopted, { from: own, review: false, reviewLeft: true, historyLines: 2 });
    assert.deepEqual(
      (await new ReviewStore(path.join(workspaceStorage, 'reviews')).load(folder))?.changeSet.changes.map((c) => c.path),
      ['from-window.txt'],
    );
    assert.deepEqual(
      (await new ReviewStore(path.join(own, 'reviews')).load(folder))?.changeSet.changes.map((c) => c.path),
      ['from-cli.txt'],
    );
  });

  test('a folder the command line never touched: nothing to bring, nothing created', () => {
    assert.equal(adoptOwnStorage('/projects/other', workspaceStorage, env, home), undefined);
    assert.ok(!existsSync(workspaceStorage));
  });
});
