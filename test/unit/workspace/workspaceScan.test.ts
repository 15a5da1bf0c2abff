import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SandboxError } from '../../../src/core/errors';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { scanWorkspace } from '../../../src/core/workspace/workspaceScan';
import { sha256 } from '../../../src/core/util/hash';
import { makeTempDir, removeDir, writeTree } from '../../builders/trees';

suite('workspaceScan', () => {
  let root: string;
  let outside: string;

  setup(async () => {
    root = await makeTempDir('scan');
    outside = await makeTempDir('scan-outside');
    await writeTree(outside, { 'secret.txt': 'host secret' });
  });

  teardown(async () => {
    await removeDir(root);
    await removeDir(outside);
  });

  test('lists files, directories (empty ones too), .git content, hashes, modes; never follows symlinks', async () => {
    await writeTree(root, {
      'src/index.ts': 'export {};\n',
      empty: null,
      '.git/HEAD': 'ref: refs/heads/main\n',
      '.env': 'TOKEN=1',
      '.env.example': 'TOKEN=',
      'node_modules/lib/index.js': 'x',
    });
    await fs.chmod(path.join(root, 'src/index.ts'), 0o755);
    await fs.symlink('src/index.ts', path.join(root, 'inside-link'));
    await fs.symlink('../src', path.join(root, 'empty', 'up-link'));
    await fs.symlink(path.join(outside, 'secret.txt'), path.join(root, 'absolute-link'));
    await fs.symlink('../' + path.basename(outside) + '/secret.txt', path.join(root, 'relative-outside'));
    await fs.symlink(outside, path.join(root, 'dir-link'));
    // "sub/up" is the root, so "sub/sneaky -> up/../x" leaves it although it looks inside.
    await fs.mkdir(path.join(root, 'sub'));
    await fs.symlink('..', path.join(root, 'sub', 'up'));
    await fs.symlink('up/../' + path.basename(outside), path.join(root, 'sub', 'sneaky'));

    const filter = await SyncFilter.create(root, { exclude: ['node_modules'], useGitignore: false });
    const skipped: [string, string][] = [];
    let progress: [number, number] = [0, 0];
    const manifest = await scanWorkspace(root, filter, {
      onSkipped: (p, reason) => skipped.push([p, reason]),
      onProgress: (files, bytes) => (progress = [files, bytes]),
    });

    assert.deepEqual(
      [...manifest.keys()],
      ['.env.example', '.git', '.git/HEAD', 'empty', 'empty/up-link', 'inside-link', 'src', 'src/index.ts', 'sub', 'sub/up'],
    );
    const file = manifest.get('src/index.ts')!;
    assert.equal(file.type, 'file');
    assert.equal(file.mode, 0o755);
    assert.equal(file.size, 11);
    assert.equal(file.hash, sha256('export {};\n'));
    assert.equal(manifest.get('inside-link')!.type, 'symlink');
    assert.equal(manifest.get('inside-link')!.linkTarget, 'src/index.ts');
    assert.equal(manifest.get('inside-link')!.hash, undefined);
    assert.equal(manifest.get('empty')!.type, 'directory');
    assert.deepEqual(skipped.sort(), [
      ['absolute-link', 'symlink-outside'],
      ['dir-link', 'symlink-outside'],
      ['relative-outside', 'symlink-outside'],
      ['sub/sneaky', 'symlink-outside'],
    ]);
    assert.deepEqual(progress, [3, 11 + 21 + 6]);
  });

  test('does not descend into excluded directories', async () => {
    await writeTree(root, { 'build/out.js': 'x', 'keep.txt': 'k' });
    // An unreadable excluded directory proves it is never opened (reading it would report "unreadable").
    await fs.chmod(path.join(root, 'build'), 0o000);
    try {
      const filter = await SyncFilter.create(root, { exclude: ['build'], useGitignore: false });
      const skipped: string[] = [];
      const manifest = await scanWorkspace(root, filter, { onSkipped: (p) => skipped.push(p) });
      assert.deepEqual([...manifest.keys()], ['keep.txt']);
      assert.deepEqual(skipped, []);
    } finally {
      await fs.chmod(path.join(root, 'build'), 0o755);
    }
  });

  test('skips fifos and sockets-like special files', async () => {
    await writeTree(root, { 'a.txt': 'a' });
    execFileSync('mkfifo', [path.join(root, 'pipe')]);
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const skipped: [string, string][] = [];
    const manifest = await scanWorkspace(root, filter, { onSkipped: (p, r) => skipped.push([p, r]) });
    assert.deepEqual([...manifest.keys()], ['a.txt']);
    assert.deepEqual(skipped, [['pipe', 'special-file']]);
  });

  test('reuses the previous hash when size and mtime are unchanged, rehashes otherwise', async () => {
    await writeTree(root, { 'a.txt': 'aaaa', 'b.txt': 'bbbb' });
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const first = await scanWorkspace(root, filter);
    const previous = new Map(first);
    previous.set('a.txt', { ...first.get('a.txt')!, hash: 'reused-marker' });
    previous.set('b.txt', { ...first.get('b.txt')!, hash: 'stale-marker' });
    await fs.writeFile(path.join(root, 'b.txt'), 'BBBB');
    await fs.utimes(path.join(root, 'b.txt'), new Date(), new Date(Date.now() + 5000));
    const second = await scanWorkspace(root, filter, { previous });
    assert.equal(second.get('a.txt')!.hash, 'reused-marker');
    assert.equal(second.get('b.txt')!.hash, sha256('BBBB'));
  });

  test('a same-size edit whose mtime was put back (touch -r, cp -p, rsync -t) is hashed again: the stamp holds ctime and inode', async () => {
    await writeTree(root, { 'a.txt': 'aaaa', 'b.txt': 'bbbb' });
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const first = await scanWorkspace(root, filter);
    const before = await fs.lstat(path.join(root, 'a.txt'));
    execFileSync('cp', ['-p', path.join(root, 'a.txt'), path.join(outside, 'a.ref')]);
    execFileSync('cp', ['-p', path.join(root, 'b.txt'), path.join(outside, 'b.ref')]);
    // The kernel's ctime granularity: make sure the edit lands on a later tick.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await fs.writeFile(path.join(root, 'a.txt'), 'AAAA');
    execFileSync('touch', ['-r', path.join(outside, 'a.ref'), path.join(root, 'a.txt')]);
    // Replaced by rename (an editor's safe save), mtime put back too: another inode.
    const replacement = path.join(root, 'b.tmp');
    await fs.writeFile(replacement, 'BBBB');
    execFileSync('touch', ['-r', path.join(outside, 'b.ref'), replacement]);
    await fs.rename(replacement, path.join(root, 'b.txt'));
    const after = await fs.lstat(path.join(root, 'a.txt'));
    assert.equal(after.mtimeMs, before.mtimeMs, 'mtime restored');
    assert.equal(after.size, before.size);
    const second = await scanWorkspace(root, filter, { previous: first });
    assert.equal(second.get('a.txt')!.hash, sha256('AAAA'));
    assert.equal(second.get('b.txt')!.hash, sha256('BBBB'));
  });

  test('an earlier entry without ctime or inode (an older manifest) is not trusted', async () => {
    await writeTree(root, { 'a.txt': 'aaaa' });
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const first = await scanWorkspace(root, filter);
    const { ctimeMs: _ctime, ino: _ino, ...old } = first.get('a.txt')!;
    const second = await scanWorkspace(root, filter, { previous: new Map([['a.txt', { ...old, hash: 'stale-marker' }]]) });
    assert.equal(second.get('a.txt')!.hash, sha256('aaaa'));
  });

  test('stops with a cancelled error when the signal is aborted', async () => {
    await writeTree(root, { 'a.txt': 'a' });
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(scanWorkspace(root, filter, { signal: controller.signal }), (e) => SandboxError.is(e, 'cancelled'));
  });

  test('a missing root is not-found', async () => {
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    await assert.rejects(scanWorkspace(path.join(root, 'missing'), filter), (e) => SandboxError.is(e, 'not-found'));
  });
});
