import * as assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { LISTING_EXIT } from '../../../src/core/changes/boxListing';
import { SandboxError } from '../../../src/core/errors';
import { BoxTreeReader, type BoxReadAccess } from '../../../src/core/session/boxTreeReader';
import type { Manifest } from '../../../src/core/workspace/manifest';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { file, manifest } from '../../builders/entries';
import { listingBytes } from '../../builders/listing';
import { makeTempDir, removeDir, tarStream } from '../../builders/trees';

/**
 * The box tree reader's bookkeeping without Docker: a small model of a box's /workspace answers the listing
 * (as LISTING_SCRIPT prints it) and the engine's archives (as tar streams), and counts what was asked for. The
 * reader under test is the real one; the model only stands in for the engine.
 */
interface ModelFile {
  content: string;
  inode: number;
  /** Seconds; far older than the listing's clock, so stamps are recordable. */
  ctime: number;
}

class ModelBox implements BoxReadAccess {
  readonly image = 'model';
  readonly files = new Map<string, ModelFile>();
  gnuFind = true;
  listings = 0;
  archives: string[] = [];
  private nextInode = 100;

  write(path: string, content: string): void {
    this.files.set(path, { content, inode: this.nextInode++, ctime: 1_600_000_000 + this.nextInode });
  }

  async helper(script: string, args: string[]): Promise<{ exitCode: number | null; stdout: Buffer; stderr: string }> {
    if (!script.includes('-printf')) return { exitCode: 127, stdout: Buffer.alloc(0), stderr: 'tar: not found' };
    this.listings++;
    if (!this.gnuFind) return { exitCode: LISTING_EXIT.noGnuFind, stdout: Buffer.alloc(0), stderr: '' };
    const wanted = args.length > 0 ? new Set(args.map((a) => a.slice('/workspace/'.length))) : undefined;
    const records = [...this.files]
      .filter(([path]) => !wanted || wanted.has(path))
      .map(([path, f]) => ({
        head: `f 644 ${Buffer.byteLength(f.content)} ${f.inode} 1 ${f.ctime}.0000000000 ${f.ctime}.0000000000 /workspace/${path}`,
      }));
    return { exitCode: 0, stdout: listingBytes(records), stderr: '' };
  }

  async archive(path: string): Promise<Readable> {
    this.archives.push(path);
    if (path === '/workspace') {
      return tarStream([
        { name: 'workspace/', type: 'directory' },
        ...[...this.files].map(([p, f]) => ({ name: `workspace/${p}`, content: f.content })),
      ]);
    }
    const relPath = path.slice('/workspace/'.length);
    const found = this.files.get(relPath);
    if (!found) throw new SandboxError('not-found', `${path} is not in the box`);
    return tarStream([{ name: relPath.split('/').pop()!, content: found.content }]);
  }
}

suite('BoxTreeReader: stamps and plans without Docker', () => {
  let root: string;
  let filter: SyncFilter;
  let box: ModelBox;
  let baseline: Manifest;
  let reader: BoxTreeReader;

  setup(async () => {
    root = await makeTempDir('reader');
    filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    box = new ModelBox();
    box.write('a.txt', 'alpha');
    box.write('b.txt', 'beta');
    box.write('c.txt', 'gamma');
    baseline = manifest(file('a.txt', 'alpha'), file('b.txt', 'beta'), file('c.txt', 'gamma'));
    reader = new BoxTreeReader(box, baseline, filter, { maxFileBytes: 1024 * 1024, readsWithBoxTar: false, log: () => undefined });
  });
  teardown(() => removeDir(root));

  test('after the mirror one listing proves every file: an unchanged box is read without a single archive', async () => {
    await reader.stampAfterMirror();
    const tree = await reader.read();
    assert.deepEqual(box.archives, []);
    assert.equal(reader.lastCollectInfo?.strategy, 'stamps');
    assert.equal(reader.lastCollectInfo?.fetched, 0);
    assert.equal(tree.entries.get('b.txt')?.hash, baseline.get('b.txt')?.hash);
  });

  test('a file written in the box (new inode and ctime) is the only one read, and its new content is what the tree holds', async () => {
    await reader.stampAfterMirror();
    box.write('b.txt', 'BETA, changed in the box');
    const tree = await reader.read();
    assert.deepEqual(box.archives, ['/workspace/b.txt']);
    assert.equal(tree.entries.get('b.txt')?.size, Buffer.byteLength('BETA, changed in the box'));
    assert.notEqual(tree.entries.get('b.txt')?.hash, baseline.get('b.txt')?.hash);
  });

  test('a stamp is only as good as its baseline entry: a new baseline entry (or a dropped stamp) makes the reader read the file again', async () => {
    await reader.stampAfterMirror();
    baseline.set('a.txt', file('a.txt', 'alpha'));
    reader.dropStamps(['c.txt']);
    await reader.read();
    assert.deepEqual(box.archives.sort(), ['/workspace/a.txt', '/workspace/c.txt']);
    box.archives = [];
    // Read equal to the baseline after the listing: their stamps are recorded again.
    await reader.read();
    assert.deepEqual(box.archives, []);
  });

  test('a file that equals its baseline after being read is stamped by that read (no mirror stamps needed)', async () => {
    await reader.read();
    assert.equal(reader.lastCollectInfo?.fetched, 3);
    box.archives = [];
    await reader.read();
    assert.deepEqual(box.archives, []);
  });

  test('an image without GNU find is read whole, and is not asked to list again', async () => {
    box.gnuFind = false;
    await reader.read();
    await reader.read();
    assert.equal(box.listings, 1);
    assert.deepEqual(box.archives, ['/workspace', '/workspace']);
    assert.equal(reader.lastCollectInfo?.strategy, 'full');
    assert.equal(reader.lastCollectInfo?.reason, 'no GNU find in the image');
  });

  test('catch-up: a targeted listing proves stamped files unchanged, and a file removed from the box has no entry', async () => {
    await reader.stampAfterMirror();
    box.write('a.txt', 'changed');
    const unchanged = await reader.unchangedByListing(['a.txt', 'b.txt']);
    assert.deepEqual([...unchanged], ['b.txt']);
    box.files.delete('c.txt');
    assert.equal(await reader.statInBox('c.txt'), undefined);
    assert.equal((await reader.statInBox('a.txt'))?.size, Buffer.byteLength('changed'));
  });
});
