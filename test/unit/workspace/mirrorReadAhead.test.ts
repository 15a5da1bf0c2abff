import * as assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ManifestEntry } from '../../../src/core/workspace/manifest';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { scanWorkspace } from '../../../src/core/workspace/workspaceScan';
import { sha256 } from '../../../src/core/util/hash';
import { packWorkspace } from '../../../src/core/workspace/workspaceTar';
import { makeTempDir, readTar, removeDir } from '../../builders/trees';

// The first mirror lists the tree with lstat only and lets packing read files ahead of the tar writer
// (bench/ measures why). These tests hold the read-ahead to the same contract as the one-file-at-a-time path.
suite('mirror: lstat-only scan and read-ahead packing', () => {
  let root: string;

  setup(async () => {
    root = await makeTempDir('readahead');
  });

  teardown(async () => {
    await removeDir(root);
  });

  /** 120 files in 6 folders: small ones, and a few of 3 MB so the read-ahead's byte budget is exceeded. */
  async function writeManyFiles(): Promise<Map<string, Buffer>> {
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 120; i++) {
      const rel = `d${i % 6}/f${i}.txt`;
      const content = i % 40 === 7 ? Buffer.alloc(3 * 1024 * 1024, i) : Buffer.from(`file ${i}\n`.repeat(i + 1));
      await fs.mkdir(path.join(root, path.dirname(rel)), { recursive: true });
      await fs.writeFile(path.join(root, rel), content);
      files.set(rel, content);
    }
    return files;
  }

  test('hashFiles: false lists every file with size and mtime but no hash', async () => {
    const files = await writeManyFiles();
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const listed = await scanWorkspace(root, filter, { hashFiles: false });
    const hashed = await scanWorkspace(root, filter);
    assert.deepEqual([...listed.keys()], [...hashed.keys()]);
    for (const [rel, content] of files) {
      const entry = listed.get(rel)!;
      assert.equal(entry.hash, undefined, rel);
      assert.equal(entry.size, content.length, rel);
      assert.equal(entry.mtimeMs, hashed.get(rel)!.mtimeMs, rel);
      assert.equal(hashed.get(rel)!.hash, sha256(content), rel);
    }
  });

  test('every file arrives in order with its exact bytes, and onEntry reports the hash of those bytes', async () => {
    const files = await writeManyFiles();
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const listed = await scanWorkspace(root, filter, { hashFiles: false });
    const sent: ManifestEntry[] = [];
    const entries = await readTar(packWorkspace(root, listed.values(), { uid: 1000, gid: 1000, onEntry: (e) => sent.push(e) }));
    const fileEntries = entries.filter((e) => e.header.type === 'file');
    assert.equal(fileEntries.length, files.size);
    for (const entry of fileEntries) {
      assert.deepEqual(entry.content, files.get(entry.header.name), entry.header.name);
    }
    const names = entries.map((e) => e.header.name.replace(/\/$/, ''));
    for (const [i, name] of names.entries()) {
      const parent = path.posix.dirname(name);
      if (parent !== '.') assert.ok(names.indexOf(parent) < i, `${parent} comes before ${name}`);
    }
    for (const entry of sent.filter((e) => e.type === 'file')) {
      assert.equal(entry.hash, sha256(files.get(entry.path)!), entry.path);
      assert.equal(entry.size, files.get(entry.path)!.length, entry.path);
    }
  });

  test('a file removed or swapped for a symlink after the scan is skipped with a reason, never followed', async () => {
    await writeManyFiles();
    await fs.writeFile(path.join(root, 'secret-outside.txt'), 'outside');
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const listed = await scanWorkspace(root, filter, { hashFiles: false });
    await fs.rm(path.join(root, 'd1/f1.txt'));
    await fs.rm(path.join(root, 'd2/f2.txt'));
    await fs.symlink('../secret-outside.txt', path.join(root, 'd2/f2.txt'));
    const skipped: string[] = [];
    const entries = await readTar(
      packWorkspace(root, listed.values(), { uid: 1000, gid: 1000, onSkipped: (p, reason) => skipped.push(`${p}: ${reason}`) }),
    );
    const names = entries.map((e) => e.header.name);
    assert.ok(!names.includes('d1/f1.txt'));
    assert.ok(!names.includes('d2/f2.txt'));
    assert.deepEqual(skipped.sort(), ['d1/f1.txt: cannot open: ENOENT', 'd2/f2.txt: cannot open: ELOOP']);
    assert.ok(names.includes('d3/f3.txt'), 'the rest of the tree is still sent');
  });
});
