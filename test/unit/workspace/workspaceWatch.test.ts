import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanWorkspace } from '../../../src/core/workspace/workspaceScan';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { WorkspaceWatch } from '../../../src/core/workspace/workspaceWatch';

suite('WorkspaceWatch: knowing nothing changed without a rescan (real file events)', () => {
  let root: string;
  let watch: WorkspaceWatch;
  let filter: SyncFilter;

  const write = (rel: string, content = rel) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
  };
  /** A full scan as the session makes it, with the watch's hook. */
  const scan = async (w = watch, extraHook?: (rel: string) => void) => {
    const hooks = await w.beginScan();
    let manifest;
    try {
      manifest = await scanWorkspace(root, filter, { beforeListing: (rel, identity) => (hooks.beforeListing(rel, identity), extraHook?.(rel)) });
    } finally {
      w.endScan(manifest);
    }
  };
  /** File events arrive asynchronously; a change is visible once one has come. */
  const becomesChanged = async (w = watch) => {
    for (let i = 0; i < 100; i++) {
      if (!(await w.unchanged())) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return false;
  };

  setup(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-watch-'));
    for (const rel of ['a.txt', 'src/b.ts', 'src/deep/c.ts', 'docs/d.md', 'node_modules/pkg/index.js']) write(rel);
    filter = await SyncFilter.create(root, { exclude: ['node_modules/**'], useGitignore: false });
    watch = new WorkspaceWatch(root);
  });

  teardown(() => {
    watch.dispose();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('before any scan nothing is known; after a clean scan the tree is unchanged, and reading it changes nothing', async () => {
    assert.equal(await watch.unchanged(), false);
    await scan();
    assert.equal(watch.watchedDirectories, 4, 'root, src, src/deep, docs (node_modules is excluded)');
    assert.equal(await watch.unchanged(), true);
    await scan();
    fs.readFileSync(path.join(root, 'src/deep/c.ts'));
    fs.statSync(path.join(root, 'docs/d.md'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await watch.unchanged(), true);
  });

  const changes: [string, () => void][] = [
    ['a file edited in a nested directory', () => fs.appendFileSync(path.join(root, 'src/deep/c.ts'), 'more')],
    ['a file added at the root', () => write('new.txt')],
    ['a file deleted', () => fs.rmSync(path.join(root, 'docs/d.md'))],
    ['a file renamed', () => fs.renameSync(path.join(root, 'src/b.ts'), path.join(root, 'src/b2.ts'))],
    ['a mode changed', () => fs.chmodSync(path.join(root, 'a.txt'), 0o755)],
    ['a directory created with a file in it', () => write('fresh/dir/e.txt')],
    ['a directory removed', () => fs.rmSync(path.join(root, 'src/deep'), { recursive: true })],
    ['a symlink created', () => fs.symlinkSync('a.txt', path.join(root, 'docs/link'))],
  ];
  for (const [what, change] of changes) {
    test(`${what} means rescan; after the rescan it is unchanged again`, async () => {
      await scan();
      assert.equal(await watch.unchanged(), true);
      change();
      assert.equal(await becomesChanged(), true, `${what} was not noticed`);
      await scan();
      if (what === 'a directory removed') {
        // Its watcher was closed: unread events may have gone with it, so the next catch-up scans in full once.
        assert.equal(await watch.changedDirectories(), undefined);
        await scan();
      }
      assert.equal(await watch.unchanged(), true);
    });
  }

  test('a change inside a new directory after the rescan is noticed (the new directory is watched)', async () => {
    await scan();
    write('fresh/e.txt');
    assert.equal(await becomesChanged(), true);
    await scan();
    fs.appendFileSync(path.join(root, 'fresh/e.txt'), 'again');
    assert.equal(await becomesChanged(), true);
  });

  test('a change made while the scan runs leaves the scan unclean', async () => {
    await scan(watch, (rel) => {
      // The root is listed (and watched) first; this write lands in it mid-scan.
      if (rel === 'src') fs.appendFileSync(path.join(root, 'a.txt'), 'mid-scan');
    });
    assert.equal(await watch.unchanged(), false);
  });

  test('changes in excluded directories are not watched: they are never sent to the box', async () => {
    await scan();
    write('node_modules/pkg/other.js');
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(await watch.unchanged(), true);
  });

  test('too many directories to watch: it gives up for good and every catch-up rescans', async () => {
    const small = new WorkspaceWatch(root, { maxDirectories: 2 });
    try {
      await scan(small);
      assert.equal(await small.unchanged(), false);
      await scan(small);
      assert.equal(await small.unchanged(), false);
      assert.equal(small.watchedDirectories, 0, 'no watcher is left open');
    } finally {
      small.dispose();
    }
  });

  test('an incomplete scan, invalidate() and dispose() each mean rescan', async () => {
    await scan();
    await watch.beginScan();
    watch.endScan(undefined);
    assert.equal(await watch.unchanged(), false);
    await scan();
    watch.invalidate();
    assert.equal(await watch.unchanged(), false);
    await scan();
    watch.dispose();
    assert.equal(await watch.unchanged(), false);
    assert.equal(watch.watchedDirectories, 0);
  });
});
