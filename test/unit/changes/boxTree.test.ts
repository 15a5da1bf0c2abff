import * as assert from 'node:assert/strict';
import type { RefusedReason } from '../../../src/shared/protocol';
import { BoxTreeBuilder, readBoxTree } from '../../../src/core/changes/boxTree';
import { SandboxError } from '../../../src/core/errors';
import type { Manifest } from '../../../src/core/workspace/manifest';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { sha256 } from '../../../src/core/util/hash';
import { tarStream } from '../../builders/trees';
import type { TarEntrySpec } from '../../builders/trees';

const W = 'workspace/';

async function read(entries: TarEntrySpec[], baseline: Manifest = new Map(), exclude: string[] = []) {
  const filter = await SyncFilter.create('/nonexistent', { exclude, useGitignore: false });
  return readBoxTree(tarStream(entries), { prefix: 'workspace/', baseline, filter });
}

async function refusedReasons(entries: TarEntrySpec[]): Promise<[string, RefusedReason][]> {
  const tree = await read([{ name: W, type: 'directory' }, ...entries]);
  return tree.refused.map((r) => [r.path, r.reason]);
}

suite('boxTree', () => {
  test('reads files, directories and symlinks under the prefix; keeps content only when new or changed', async () => {
    const baseline: Manifest = new Map([
      ['same.txt', { path: 'same.txt', type: 'file', mode: 0o644, size: 4, hash: sha256('same') }],
      ['changed.txt', { path: 'changed.txt', type: 'file', mode: 0o644, size: 3, hash: sha256('old') }],
    ]);
    const tree = await read(
      [
        { name: W, type: 'directory' },
        { name: `${W}same.txt`, type: 'file', content: 'same' },
        { name: `${W}changed.txt`, type: 'file', content: 'new', mode: 0o755 },
        { name: `${W}added.txt`, type: 'file', content: 'added' },
        { name: `${W}dir/`, type: 'directory', mode: 0o700 },
        { name: `${W}dir/link`, type: 'symlink', linkname: '../same.txt' },
      ],
      baseline,
    );
    assert.deepEqual([...tree.entries.keys()], ['added.txt', 'changed.txt', 'dir', 'dir/link', 'same.txt']);
    assert.deepEqual([...tree.contents.keys()].sort(), ['added.txt', 'changed.txt']);
    assert.equal(tree.contents.get('changed.txt')!.toString(), 'new');
    assert.equal(tree.entries.get('changed.txt')!.mode, 0o755);
    assert.equal(tree.entries.get('same.txt')!.hash, sha256('same'));
    assert.equal(tree.entries.get('dir')!.type, 'directory');
    assert.equal(tree.entries.get('dir')!.mode, 0o700);
    assert.equal(tree.entries.get('dir/link')!.linkTarget, '../same.txt');
    assert.deepEqual(tree.refused, []);
  });

  test('handles pax long names', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(150)}.txt`;
    const tree = await read([{ name: `${W}${long}`, type: 'file', content: 'long' }]);
    assert.deepEqual([...tree.entries.keys()], [long]);
    assert.equal(tree.contents.get(long)!.toString(), 'long');
  });

  test('refuses an absolute path', async () => {
    assert.deepEqual(await refusedReasons([{ name: '/etc/passwd', type: 'file', content: 'root::0:0' }]), [['/etc/passwd', 'absolute-path']]);
  });

  test('refuses parent traversal', async () => {
    assert.deepEqual(await refusedReasons([{ name: `${W}../x`, type: 'file', content: 'x' }]), [['../x', 'parent-traversal']]);
    assert.deepEqual(await refusedReasons([{ name: '../x', type: 'file', content: 'x' }]), [['../x', 'parent-traversal']]);
  });

  test('refuses a symlink with an absolute target or one resolving outside, also through another link', async () => {
    assert.deepEqual(
      await refusedReasons([
        { name: `${W}abs`, type: 'symlink', linkname: '/etc/passwd' },
        { name: `${W}rel`, type: 'symlink', linkname: '../../etc/passwd' },
        { name: `${W}sub/`, type: 'directory' },
        { name: `${W}sub/up`, type: 'symlink', linkname: '..' },
        { name: `${W}sub/sneaky`, type: 'symlink', linkname: 'up/../outside' },
        { name: `${W}ok`, type: 'symlink', linkname: 'sub/up' },
      ]),
      [
        ['abs', 'symlink-outside'],
        ['rel', 'symlink-outside'],
        ['sub/sneaky', 'symlink-outside'],
      ],
    );
  });

  test('refuses a hard link', async () => {
    assert.deepEqual(
      await refusedReasons([
        { name: `${W}a`, type: 'file', content: 'a' },
        { name: `${W}b`, type: 'link', linkname: `${W}a` },
      ]),
      [['b', 'hard-link']],
    );
  });

  test('refuses character and block devices', async () => {
    assert.deepEqual(
      await refusedReasons([
        { name: `${W}null`, type: 'character-device', devmajor: 1, devminor: 3 },
        { name: `${W}sda`, type: 'block-device', devmajor: 8, devminor: 0 },
      ]),
      [
        ['null', 'device'],
        ['sda', 'device'],
      ],
    );
  });

  test('refuses a fifo', async () => {
    assert.deepEqual(await refusedReasons([{ name: `${W}pipe`, type: 'fifo' }]), [['pipe', 'fifo']]);
  });

  test('refuses setuid and setgid bits on files and directories', async () => {
    assert.deepEqual(
      await refusedReasons([
        { name: `${W}suid`, type: 'file', mode: 0o4755, content: 'x' },
        { name: `${W}sgid/`, type: 'directory', mode: 0o2775 },
        { name: `${W}sticky/`, type: 'directory', mode: 0o1777 },
      ]),
      [
        ['sgid', 'setuid-setgid'],
        ['suid', 'setuid-setgid'],
      ],
    );
  });

  test('refuses invalid names and entries outside the prefix', async () => {
    assert.deepEqual(await refusedReasons([{ name: `${W}a\\b`, type: 'file', content: 'x' }]), [['a\\b', 'invalid-name']]);
    assert.deepEqual(await refusedReasons([{ name: 'etc/passwd', type: 'file', content: 'x' }]), [['etc/passwd', 'invalid-name']]);
  });

  test('refuses what lies below a symlink: a symlinked dir with a file written through it', async () => {
    const tree = await read([
      { name: W, type: 'directory' },
      { name: `${W}real/`, type: 'directory' },
      { name: `${W}d`, type: 'symlink', linkname: 'real' },
      { name: `${W}d/evil.sh`, type: 'file', content: 'rm -rf ~' },
      { name: `${W}out`, type: 'symlink', linkname: '/etc' },
      { name: `${W}out/cron.d/job`, type: 'file', content: 'x' },
    ]);
    assert.deepEqual(
      tree.refused.map((r) => [r.path, r.reason]),
      [
        ['d/evil.sh', 'type-change-under-symlink'],
        ['out', 'symlink-outside'],
        ['out/cron.d/job', 'type-change-under-symlink'],
      ],
    );
    assert.deepEqual([...tree.entries.keys()], ['d', 'real']);
    assert.equal(tree.contents.size, 0);
  });

  test('a file over maxFileBytes is refused as too-large unless it is the baseline file unchanged', async () => {
    const big = 'x'.repeat(2000);
    const baseline: Manifest = new Map([
      ['kept.bin', { path: 'kept.bin', type: 'file', mode: 0o644, size: 2000, hash: sha256(big) }],
      ['edited.bin', { path: 'edited.bin', type: 'file', mode: 0o644, size: 2000, hash: sha256(big) }],
    ]);
    const filter = await SyncFilter.create('/nonexistent', { exclude: [], useGitignore: false });
    const tree = await readBoxTree(
      tarStream([
        { name: W, type: 'directory' },
        { name: `${W}kept.bin`, type: 'file', content: big },
        { name: `${W}edited.bin`, type: 'file', content: 'y'.repeat(2000) },
        { name: `${W}new.bin`, type: 'file', content: big },
        { name: `${W}small.txt`, type: 'file', content: 'ok' },
      ]),
      { prefix: W, baseline, filter, maxFileBytes: 1000 },
    );
    assert.deepEqual(
      tree.refused.map((r) => [r.path, r.reason]),
      [
        ['edited.bin', 'too-large'],
        ['new.bin', 'too-large'],
      ],
    );
    assert.match(tree.refused[0].detail, /over the limit .*agentSandbox\.maxFileSizeMiB/);
    assert.deepEqual([...tree.entries.keys()], ['kept.bin', 'small.txt']);
    assert.deepEqual([...tree.contents.keys()], ['small.txt']);
  });

  test('a later entry replaces an earlier one, as extraction would', async () => {
    const tree = await read([
      { name: `${W}d/`, type: 'directory' },
      { name: `${W}d/x`, type: 'file', content: 'x' },
      { name: `${W}d`, type: 'symlink', linkname: '.' },
    ]);
    assert.deepEqual(
      tree.refused.map((r) => [r.path, r.reason]),
      [['d/x', 'type-change-under-symlink']],
    );
    assert.equal(tree.entries.get('d')!.type, 'symlink');
  });

  test('excluded paths are listed as ignored (topmost only), never returned as entries', async () => {
    const tree = await read(
      [
        { name: `${W}.env`, type: 'file', content: 'TOKEN=1' },
        { name: `${W}node_modules/`, type: 'directory' },
        { name: `${W}node_modules/a/index.js`, type: 'file', content: 'x' },
        { name: `${W}keep.txt`, type: 'file', content: 'k' },
      ],
      new Map(),
      ['node_modules'],
    );
    assert.deepEqual([...tree.entries.keys()], ['keep.txt']);
    assert.deepEqual(tree.ignored, ['.env', 'node_modules']);
    assert.ok(!tree.contents.has('.env'));
  });

  test('a broken tar is an engine-error; an aborted read is cancelled', async () => {
    const filter = await SyncFilter.create('/nonexistent', { exclude: [], useGitignore: false });
    const { Readable } = await import('node:stream');
    const garbage = Readable.from([Buffer.alloc(512, 0x41)]);
    await assert.rejects(readBoxTree(garbage, { prefix: W, baseline: new Map(), filter }), (e) => SandboxError.is(e, 'engine-error'));
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      readBoxTree(tarStream([{ name: `${W}a`, type: 'file', content: 'a' }]), { prefix: W, baseline: new Map(), filter, signal: controller.signal }),
      (e) => SandboxError.is(e, 'cancelled'),
    );
  });
});

suite('BoxTreeBuilder: one tree from several sources', () => {
  const filterFor = (exclude: string[] = []) => SyncFilter.create('/nonexistent', { exclude, useGitignore: false });

  test('listed directories and symlinks, adopted baseline files and single-path archives merge into one tree', async () => {
    const baseline: Manifest = new Map([
      ['src', { path: 'src', type: 'directory', mode: 0o755, size: 0 }],
      ['src/same.txt', { path: 'src/same.txt', type: 'file', mode: 0o644, size: 4, hash: sha256('same') }],
      ['src/changed.txt', { path: 'src/changed.txt', type: 'file', mode: 0o644, size: 3, hash: sha256('old') }],
    ]);
    const builder = new BoxTreeBuilder({ baseline, filter: await filterFor() });
    assert.equal(await builder.addListed({ name: 'src', type: 'directory', mode: 0o755 }), undefined);
    assert.equal(await builder.addListed({ name: 'src/same.txt', type: 'file', mode: 0o644, size: 4 }), 'src/same.txt');
    builder.adoptBaseline('src/same.txt');
    await builder.addListed({ name: 'src/link', type: 'symlink', mode: 0o777, linkname: 'same.txt' });
    await builder.addArchive(tarStream([{ name: 'changed.txt', type: 'file', content: 'new' }]), { prefix: '', under: 'src' });
    const tree = builder.finish();
    assert.deepEqual([...tree.entries.keys()], ['src', 'src/changed.txt', 'src/link', 'src/same.txt']);
    assert.equal(tree.entries.get('src/same.txt'), baseline.get('src/same.txt'));
    assert.equal(tree.contents.get('src/changed.txt')!.toString(), 'new');
    assert.equal(tree.entries.get('src/link')!.linkTarget, 'same.txt');
    assert.deepEqual(tree.refused, []);
  });

  test('listed entries get the checks tar entries get: types, setuid, names, excluded paths, size, second names of an inode', async () => {
    const baseline: Manifest = new Map([['big-same.bin', { path: 'big-same.bin', type: 'file', mode: 0o644, size: 2000, hash: sha256('x') }]]);
    const builder = new BoxTreeBuilder({ baseline, filter: await filterFor(['secret/**', '*.key']), maxFileBytes: 1000 });
    await builder.addListed({ name: 'pipe', type: 'fifo', mode: 0o644 });
    await builder.addListed({ name: 'tty', type: 'character-device', mode: 0o644 });
    assert.equal(await builder.addListed({ name: 'suid', type: 'file', mode: 0o4755, size: 1 }), undefined);
    await builder.addListed({ name: 'sgid-dir', type: 'directory', mode: 0o2755 });
    assert.equal(await builder.addListed({ name: 'a\\b', type: 'file', mode: 0o644, size: 1 }), undefined);
    assert.equal(await builder.addListed({ name: 'bad\uFFFD', type: 'file', mode: 0o644, size: 1 }), undefined);
    assert.equal(await builder.addListed({ name: 'id.key', type: 'file', mode: 0o600, size: 1 }), undefined);
    assert.equal(await builder.addListed({ name: 'big.bin', type: 'file', mode: 0o644, size: 5000 }), undefined);
    // Over the limit but the baseline's size: the caller reads it (hashed in passing, kept when unchanged).
    assert.equal(await builder.addListed({ name: 'big-same.bin', type: 'file', mode: 0o644, size: 2000 }), 'big-same.bin');
    await builder.addListed({ name: 'second', type: 'link', mode: 0o644, linkname: 'first' });
    await builder.addListed({ name: 'out', type: 'symlink', mode: 0o777, linkname: '../../etc' });
    await builder.addListed({ name: 'abs', type: 'symlink', mode: 0o777, linkname: '/etc' });
    const tree = builder.finish();
    assert.deepEqual(
      tree.refused.map((r) => [r.path, r.reason]),
      [
        ['a\\b', 'invalid-name'],
        ['abs', 'symlink-outside'],
        ['bad\uFFFD', 'invalid-name'],
        ['big.bin', 'too-large'],
        ['out', 'symlink-outside'],
        ['pipe', 'fifo'],
        ['second', 'hard-link'],
        ['sgid-dir', 'setuid-setgid'],
        ['suid', 'setuid-setgid'],
        ['tty', 'device'],
      ],
    );
    assert.deepEqual(tree.ignored, ['id.key']);
    assert.deepEqual([...tree.entries.keys()], []);
  });

  test('the whole-tree passes run once over all sources: a file fetched below a listed symlink is refused', async () => {
    const builder = new BoxTreeBuilder({ baseline: new Map(), filter: await filterFor() });
    await builder.addListed({ name: 'dir', type: 'symlink', mode: 0o777, linkname: 'real' });
    await builder.addListed({ name: 'real', type: 'directory', mode: 0o755 });
    await builder.addArchive(tarStream([{ name: 'x.txt', type: 'file', content: 'x' }]), { prefix: '', under: 'dir' });
    const tree = builder.finish();
    assert.deepEqual(
      tree.refused.map((r) => [r.path, r.reason]),
      [['dir/x.txt', 'type-change-under-symlink']],
    );
    assert.deepEqual([...tree.entries.keys()], ['dir', 'real']);
  });
});
