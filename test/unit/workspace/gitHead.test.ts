import * as assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { readGitHead } from '../../../src/core/workspace/gitHead';
import { hostGit, makeTempDir, removeDir, writeTree } from '../../builders/trees';

const git = hostGit;

suite('gitHead: HEAD branch, commit and remotes read from the repository files', () => {
  let root: string;
  setup(async () => {
    root = await makeTempDir('githead');
    git(root, 'init', '-q', '-b', 'feature/x');
    for (let i = 0; i < 30; i++) {
      await writeTree(root, { 'a.txt': `version ${i}\n`.repeat(50) });
      git(root, 'add', '-A');
      git(root, 'commit', '-q', '-m', `Commit number ${i}\n\nA long body that repeats so that delta compression has something to share. `.repeat(3));
    }
    git(root, 'remote', 'add', 'origin', 'https://alice:ghp_SECRETSECRET@github.com/o/r.git');
    git(root, 'remote', 'add', 'mirror', 'ssh://git@host/r.git');
  });
  teardown(async () => removeDir(root));

  const expected = (info: ReturnType<typeof readGitHead>): void => {
    assert.equal(info?.branch, 'feature/x');
    assert.equal(info?.commit?.authorName, 'Ada Lovelace');
    assert.equal(info?.commit?.authorEmail, 'ada@example.com');
    assert.equal(info?.commit?.authorDate, '1700000000 +0100');
    assert.equal(info?.commit?.message, git(root, 'log', '-1', '--format=%B').replace(/\n$/, ''));
    assert.deepEqual(info?.remotes, [
      { name: 'origin', url: 'https://github.com/o/r.git' },
      { name: 'mirror', url: 'ssh://git@host/r.git' },
    ]);
  };

  test('loose objects and a loose ref', () => {
    expected(readGitHead(root));
  });

  test('packed objects (deltas included) and packed refs', () => {
    git(root, 'repack', '-adf', '--depth=50', '--window=250', '-q');
    git(root, 'pack-refs', '--all');
    git(root, 'prune');
    expected(readGitHead(root));
    // Older commits are stored as deltas against newer ones (git verify-pack shows depth 1 and more).
    git(root, 'checkout', '-q', '--detach', 'HEAD~5');
    const packDir = path.join(root, '.git', 'objects', 'pack');
    const index = path.join(
      packDir,
      readdirSync(packDir).find((n) => n.endsWith('.idx'))!,
    );
    const head = git(root, 'rev-parse', 'HEAD').trim();
    assert.match(
      git(root, 'verify-pack', '-v', index),
      new RegExp(`^${head} commit \\d+ \\d+ \\d+ [1-9]\\d* [0-9a-f]{40}$`, 'm'),
      'HEAD~5 is a delta',
    );
    assert.equal(readGitHead(root)?.commit?.message, git(root, 'log', '-1', '--format=%B').replace(/\n$/, ''));
    assert.match(readGitHead(root)?.commit?.message ?? '', /^Commit number 24/);
  });

  test('a worktree: .git is a gitdir file, refs and objects in the common dir', async () => {
    const worktree = path.join(root, 'wt');
    git(root, 'worktree', 'add', '-q', '-b', 'other', worktree);
    const info = readGitHead(worktree);
    assert.equal(info?.branch, 'other');
    assert.match(info?.commit?.message ?? '', /^Commit number 29/);
    assert.equal(info?.remotes.length, 2);
  });

  test('no .git, a detached HEAD, an unborn branch', async () => {
    assert.equal(readGitHead(path.join(root, 'nowhere')), undefined);
    git(root, 'checkout', '-q', '--detach');
    const detached = readGitHead(root);
    assert.equal(detached?.branch, undefined);
    assert.match(detached?.commit?.message ?? '', /^Commit number 29/);
    const empty = await makeTempDir('githead-empty');
    try {
      git(empty, 'init', '-q', '-b', 'trunk');
      assert.deepEqual(readGitHead(empty), { branch: 'trunk', remotes: [] });
    } finally {
      await removeDir(empty);
    }
  });
});
