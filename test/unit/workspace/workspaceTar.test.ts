import * as assert from 'node:assert/strict';
import { closeSync, promises as fs, readFileSync, renameSync } from 'node:fs';
import * as path from 'node:path';
import { SandboxError } from '../../../src/core/errors';
import type { ManifestEntry } from '../../../src/core/workspace/manifest';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { scanWorkspace } from '../../../src/core/workspace/workspaceScan';
import { sha256 } from '../../../src/core/util/hash';
import { packWorkspace, WHOLE_FILE_LIMIT } from '../../../src/core/workspace/workspaceTar';
import { WorkspaceOpener } from '../../../src/core/workspace/workspaceOpener';
import { makeTempDir, readTar, removeDir, writeTree } from '../../builders/trees';

suite('workspaceTar', () => {
  let root: string;

  setup(async () => {
    root = await makeTempDir('pack');
  });

  teardown(async () => {
    await removeDir(root);
  });

  test('round-trips through tar-stream extract: modes, owner, mtimes, symlinks, empty dirs, sanitized .git/config', async () => {
    await writeTree(root, {
      'src/main.sh': '#!/bin/sh\necho hi\n',
      'src/data.bin': Buffer.from([0, 1, 2, 255]),
      empty: null,
      '.git/config': '[remote "origin"]\n\turl = https://me:tok3n@github.com/o/r.git\n[credential]\n\thelper = store\n',
      '.git/HEAD': 'ref: refs/heads/main\n',
    });
    await fs.chmod(path.join(root, 'src/main.sh'), 0o750);
    await fs.chmod(path.join(root, 'empty'), 0o700);
    await fs.symlink('src/main.sh', path.join(root, 'run'));
    const mtime = new Date('2024-05-01T10:00:00Z');
    await fs.utimes(path.join(root, 'src/data.bin'), mtime, mtime);

    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const manifest = await scanWorkspace(root, filter);
    const sent: ManifestEntry[] = [];
    let progress: [number, number] = [0, 0];
    const entries = await readTar(
      packWorkspace(root, [...manifest.values()].reverse(), {
        uid: 1000,
        gid: 1000,
        onEntry: (e) => sent.push(e),
        onProgress: (files, bytes) => (progress = [files, bytes]),
      }),
    );

    const byName = new Map(entries.map((e) => [e.header.name.replace(/\/$/, ''), e]));
    assert.deepEqual(
      entries.map((e) => e.header.name.replace(/\/$/, '')),
      ['.git', '.git/HEAD', '.git/config', 'empty', 'run', 'src', 'src/data.bin', 'src/main.sh'],
      'parents come first even when the input order is reversed',
    );
    for (const entry of entries) {
      assert.equal(entry.header.uid, 1000);
      assert.equal(entry.header.gid, 1000);
      assert.ok(!entry.header.name.startsWith('/') && !entry.header.name.startsWith('./'));
    }
    assert.equal(byName.get('src/main.sh')!.header.mode, 0o750);
    assert.equal(byName.get('src/main.sh')!.content.toString(), '#!/bin/sh\necho hi\n');
    assert.deepEqual([...byName.get('src/data.bin')!.content], [0, 1, 2, 255]);
    assert.equal(byName.get('src/data.bin')!.header.mtime.getTime(), mtime.getTime());
    assert.equal(byName.get('empty')!.header.type, 'directory');
    assert.equal(byName.get('empty')!.header.mode, 0o700);
    assert.equal(byName.get('run')!.header.type, 'symlink');
    assert.equal(byName.get('run')!.header.linkname, 'src/main.sh');

    const config = byName.get('.git/config')!.content.toString();
    assert.equal(config, '[remote "origin"]\n\turl = https://github.com/o/r.git\n');
    const sentConfig = sent.find((e) => e.path === '.git/config')!;
    assert.equal(sentConfig.hash, sha256(config), 'the baseline records what the box got');
    assert.equal(sentConfig.size, Buffer.byteLength(config));
    assert.equal(sent.find((e) => e.path === 'src/main.sh')!.hash, manifest.get('src/main.sh')!.hash);
    assert.equal(sent.length, manifest.size);
    assert.equal(progress[0], 4);
  });

  test('a file replaced by a symlink after the scan is skipped, not followed', async () => {
    const outside = await makeTempDir('pack-outside');
    try {
      await writeTree(outside, { 'secret.txt': 'HOST SECRET' });
      await writeTree(root, { 'a.txt': 'a', 'b.txt': 'b' });
      const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
      const manifest = await scanWorkspace(root, filter);
      await fs.rm(path.join(root, 'a.txt'));
      await fs.symlink(path.join(outside, 'secret.txt'), path.join(root, 'a.txt'));
      const skipped: string[] = [];
      const entries = await readTar(packWorkspace(root, manifest.values(), { uid: 1000, gid: 1000, onSkipped: (p) => skipped.push(p) }));
      assert.deepEqual(
        entries.map((e) => e.header.name),
        ['b.txt'],
      );
      assert.deepEqual(skipped, ['a.txt']);
      assert.ok(!entries.some((e) => e.content.toString().includes('HOST SECRET')));
    } finally {
      await removeDir(outside);
    }
  });

  test('a directory replaced by a symlink out of the workspace after the scan: nothing below it is sent, not even names (issue 11)', async () => {
    const outside = await makeTempDir('pack-outside');
    try {
      // Same names outside, so every path the scan saw resolves through the link; a big file takes the async path.
      const big = 'OUTSIDE MARKER '.repeat(40_000);
      await writeTree(outside, { 'small.txt': 'OUTSIDE MARKER', 'big.txt': big, 'sub/deep.txt': 'OUTSIDE MARKER', 'sub/inner': null });
      await fs.symlink('deep.txt', path.join(outside, 'sub', 'link'));
      await writeTree(root, {
        'keep.txt': 'k',
        'dir/small.txt': 'inside',
        'dir/big.txt': 'inside '.repeat(40_000),
        'dir/sub/deep.txt': 'inside',
        'dir/sub/inner': null,
      });
      await fs.symlink('deep.txt', path.join(root, 'dir', 'sub', 'link'));
      const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
      const manifest = await scanWorkspace(root, filter);
      await fs.rename(path.join(root, 'dir'), path.join(root, 'dir.moved'));
      await fs.symlink(outside, path.join(root, 'dir'));
      const skipped: string[] = [];
      const entries = await readTar(
        packWorkspace(
          root,
          [...manifest.values()].filter((e) => !e.path.startsWith('dir.moved')),
          { uid: 1000, gid: 1000, onSkipped: (p) => skipped.push(p) },
        ),
      );
      assert.deepEqual(
        entries.map((e) => e.header.name),
        ['keep.txt'],
      );
      assert.deepEqual(skipped.sort(), ['dir', 'dir/big.txt', 'dir/small.txt', 'dir/sub', 'dir/sub/deep.txt', 'dir/sub/inner', 'dir/sub/link']);
      assert.ok(!entries.some((e) => e.content.toString().includes('OUTSIDE MARKER')));
    } finally {
      await removeDir(outside);
    }
  });

  test('a directory that could not be sent takes its entries with it, even ones readable a moment later (rename race)', async () => {
    // Larger than the read-ahead limit, so the file is opened only when its turn comes.
    const big = 'x'.repeat(WHOLE_FILE_LIMIT + 1);
    await writeTree(root, { 'keep.txt': 'k', 'dir/big.txt': big });
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const manifest = await scanWorkspace(root, filter, { hashFiles: false });
    // The directory is away when its entry is packed, and back when its file's turn comes.
    await fs.rename(path.join(root, 'dir'), path.join(root, 'dir.away'));
    const skipped: string[] = [];
    const entries = await readTar(
      packWorkspace(root, manifest.values(), {
        uid: 1000,
        gid: 1000,
        onSkipped: (p) => {
          skipped.push(p);
          if (p === 'dir') renameSync(path.join(root, 'dir.away'), path.join(root, 'dir'));
        },
      }),
    );
    // Without its directory's own entry the engine would create `dir` owned by root, unwritable in the box.
    assert.deepEqual(
      entries.map((e) => e.header.name),
      ['keep.txt'],
    );
    assert.deepEqual(skipped, ['dir', 'dir/big.txt']);
  });

  for (const mode of ['auto', 'by-path'] as const) {
    test(`WorkspaceOpener (${mode}): opens files and links through real directories, refuses a link in any component`, async () => {
      const outside = await makeTempDir('opener-outside');
      const opener = new WorkspaceOpener(root, { mode });
      try {
        await writeTree(outside, { 'f.txt': 'OUT' });
        await writeTree(root, { 'a/b/f.txt': 'IN', 'a/c/f.txt': 'IN2' });
        await fs.symlink('f.txt', path.join(root, 'a', 'b', 'l'));
        await fs.symlink(outside, path.join(root, 'a', 'x'));
        await fs.symlink(outside, path.join(root, 'top'));
        const read = (relPath: string): string => {
          const fd = opener.openFile(relPath);
          try {
            return readFileSync(fd, 'utf8');
          } finally {
            closeSync(fd);
          }
        };
        assert.equal(read('a/b/f.txt'), 'IN');
        assert.equal(read('a/c/f.txt'), 'IN2');
        assert.equal(read('a/b/f.txt'), 'IN');
        assert.equal(opener.readLink('a/b/l'), 'f.txt');
        opener.checkDirectory('a/b');
        for (const bad of ['a/x/f.txt', 'top/f.txt', 'a/b/l']) {
          assert.throws(
            () => read(bad),
            (e: NodeJS.ErrnoException) => e.code === 'ELOOP' || e.code === 'ENOTDIR',
            bad,
          );
        }
        assert.throws(
          () => opener.checkDirectory('a/x'),
          (e: NodeJS.ErrnoException) => e.code === 'ELOOP' || e.code === 'ENOTDIR',
        );
        assert.throws(() => opener.readLink('top/f.txt'));
        assert.throws(
          () => read('a/../a/b/f.txt'),
          (e: NodeJS.ErrnoException) => e.code === 'EINVAL',
        );
      } finally {
        opener.close();
        await removeDir(outside);
      }
    });
  }

  test('a large file that grows while packing still yields a valid tar with the size in its header', async () => {
    const size = WHOLE_FILE_LIMIT + 1024;
    await writeTree(root, { 'big.bin': Buffer.alloc(size, 7), 'z.txt': 'after' });
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const manifest = await scanWorkspace(root, filter);
    const sent: ManifestEntry[] = [];
    const stream = packWorkspace(root, manifest.values(), { uid: 1000, gid: 1000, onEntry: (e) => sent.push(e) });
    await fs.appendFile(path.join(root, 'big.bin'), Buffer.alloc(4096, 9));
    const entries = await readTar(stream);
    assert.deepEqual(
      entries.map((e) => e.header.name),
      ['big.bin', 'z.txt'],
    );
    const big = entries[0];
    assert.equal(big.content.length, big.header.size);
    assert.equal(sent[0].hash, sha256(big.content));
    assert.equal(entries[1].content.toString(), 'after');
  });

  test('aborting destroys the stream with a cancelled error', async () => {
    await writeTree(root, { 'a.txt': 'a' });
    const controller = new AbortController();
    const stream = packWorkspace(root, [{ path: 'a.txt', type: 'file', mode: 0o644, size: 1 }], { uid: 1000, gid: 1000, signal: controller.signal });
    controller.abort();
    await assert.rejects(readTar(stream), (e) => SandboxError.is(e, 'cancelled'));
  });
});
