import * as assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SandboxError } from '../../../src/core/errors';
import type { ManifestEntry } from '../../../src/core/workspace/manifest';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { scanWorkspace, sha256 } from '../../../src/core/workspace/workspaceScan';
import { packWorkspace, WHOLE_FILE_LIMIT } from '../../../src/core/workspace/workspaceTar';
import { makeTempDir, readTar, removeDir, writeTree } from './treeFixtures';

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
      'empty': null,
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
      assert.deepEqual(entries.map((e) => e.header.name), ['b.txt']);
      assert.deepEqual(skipped, ['a.txt']);
      assert.ok(!entries.some((e) => e.content.toString().includes('HOST SECRET')));
    } finally {
      await removeDir(outside);
    }
  });

  test('a large file that grows while packing still yields a valid tar with the size in its header', async () => {
    const size = WHOLE_FILE_LIMIT + 1024;
    await writeTree(root, { 'big.bin': Buffer.alloc(size, 7), 'z.txt': 'after' });
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const manifest = await scanWorkspace(root, filter);
    const sent: ManifestEntry[] = [];
    const stream = packWorkspace(root, manifest.values(), { uid: 1000, gid: 1000, onEntry: (e) => sent.push(e) });
    await fs.appendFile(path.join(root, 'big.bin'), Buffer.alloc(4096, 9));
    const entries = await readTar(stream);
    assert.deepEqual(entries.map((e) => e.header.name), ['big.bin', 'z.txt']);
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
