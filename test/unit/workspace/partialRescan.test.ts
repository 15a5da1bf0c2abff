import * as assert from 'node:assert/strict';
import * as fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { scanWorkspaceTree, type WorkspaceScan } from '../../../src/core/workspace/workspaceScan';
import { inotifyQueueLimit, WorkspaceWatch } from '../../../src/core/workspace/workspaceWatch';
import { makeTempDir, removeDir, writeTree } from '../../builders/trees';

/**
 * Catch-up lists again only the directories whose watchers fired. After each fault below, the catch-up's
 * result must equal a fresh full scan of the tree as it is now; which way it went (patched or in full) is
 * asserted too, so a fallback that silently always scans in full would fail here as well.
 */
suite('WorkspaceWatch.scan: a catch-up lists only the directories that fired, and equals a full scan (real files, real file events)', () => {
  let root: string;
  let filter: SyncFilter;
  const watches: WorkspaceWatch[] = [];

  const abs = (rel: string) => path.join(root, ...rel.split('/'));
  const write = (rel: string, content = rel) => {
    fs.mkdirSync(path.dirname(abs(rel)), { recursive: true });
    fs.writeFileSync(abs(rel), content);
  };
  const newWatch = (options: { queueLimit?: number } = {}) => {
    const watch = new WorkspaceWatch(root, options);
    watches.push(watch);
    return watch;
  };

  /** One workspace's catch-ups, as the session makes them: each from the last. */
  class CatchUps {
    last: WorkspaceScan | undefined;
    constructor(readonly watch: WorkspaceWatch) {}
    async next(): Promise<{ scan: WorkspaceScan; kind: string }> {
      const result = await this.watch.scan(filter, this.last, { reuse: true });
      this.last = result.scan;
      return result;
    }
  }

  /** A fresh full scan with no watch and nothing reused. */
  const fullScan = () => scanWorkspaceTree(root, filter);
  const asArrays = (scan: WorkspaceScan) => ({
    entries: [...scan.manifest.entries()],
    skipped: [...scan.skipped].sort(),
    escaping: [...scan.escaping.keys()].sort(),
  });
  /** The next catch-up equals a full scan (entries, their order, what was left out and why), going `kind`. */
  const catchUpIsExact = async (catchUps: CatchUps, kind: 'partial' | 'full' | 'reused', what: string) => {
    const result = await catchUps.next();
    assert.deepEqual(asArrays(result.scan), asArrays(await fullScan()), `${what}: the catch-up differs from a full scan`);
    assert.equal(result.kind, kind, `${what}: the catch-up went ${result.kind}, expected ${kind}`);
  };
  /** A started session: its first catch-up is full, the next one finds nothing changed. */
  const started = async (watch = newWatch()) => {
    const catchUps = new CatchUps(watch);
    await catchUpIsExact(catchUps, 'full', 'first catch-up');
    await catchUpIsExact(catchUps, 'reused', 'nothing changed');
    return catchUps;
  };

  setup(async () => {
    root = await makeTempDir('rescan');
    await writeTree(root, {
      'a.txt': 'a',
      'src/b.ts': 'b',
      'src/deep/c.ts': 'c',
      'src/deep/deeper/d.ts': 'd',
      'docs/e.md': 'e',
      'docs/more/f.md': 'f',
      'node_modules/pkg/index.js': 'x',
      '.gitignore': '*.log\n',
      'logs/keep.txt': 'k',
      'logs/old.log': 'ignored',
    });
    filter = await SyncFilter.create(root, { exclude: ['node_modules'], useGitignore: true });
  });

  teardown(async () => {
    for (const watch of watches.splice(0)) watch.dispose();
    await removeDir(root);
  });

  test('an edit, a new file and a deletion in nested directories are patched in; the catch-up after finds nothing', async () => {
    const catchUps = await started();
    fs.appendFileSync(abs('src/deep/deeper/d.ts'), ' edited');
    write('src/deep/new.ts');
    fs.rmSync(abs('docs/more/f.md'));
    fs.chmodSync(abs('docs/e.md'), 0o600);
    await catchUpIsExact(catchUps, 'partial', 'edit, create, delete, chmod');
    await catchUpIsExact(catchUps, 'reused', 'nothing since');
  });

  test('a new directory tree with files is scanned in full and watched: a later edit inside it is patched in too', async () => {
    const catchUps = await started();
    write('src/fresh/one/x.ts');
    write('src/fresh/one/two/y.ts');
    fs.mkdirSync(abs('src/fresh/empty'));
    await catchUpIsExact(catchUps, 'partial', 'new tree');
    fs.appendFileSync(abs('src/fresh/one/two/y.ts'), ' edited');
    write('src/fresh/one/two/z.ts');
    await catchUpIsExact(catchUps, 'partial', 'edit inside the new tree');
  });

  test('a directory removed: dropped with everything below it; its closed watcher makes the next catch-up full once', async () => {
    const catchUps = await started();
    fs.rmSync(abs('src/deep'), { recursive: true });
    await catchUpIsExact(catchUps, 'partial', 'directory removed');
    await catchUpIsExact(catchUps, 'full', 'after a watcher was closed');
    write('src/after.ts');
    await catchUpIsExact(catchUps, 'partial', 'an edit after that');
  });

  test('more events than the inotify queue holds since the last scan: the catch-up scans in full (control: under the limit it patches)', async () => {
    // The kernel's limit stands in small here; the next test overflows the real queue.
    const small = await started(newWatch({ queueLimit: 40 }));
    const control = await started(newWatch({ queueLimit: 1_000_000 }));
    for (let i = 0; i < 30; i++) write(`docs/burst-${i}.md`);
    fs.appendFileSync(abs('src/b.ts'), ' edited');
    // Both watches count every event in the process (both watch the same directories): 2 × 31 ≥ 40.
    // The control first: the full scan renews every watcher of the other (its events may have been lost), and a
    // closed watcher makes every catch-up in the process full once.
    await catchUpIsExact(control, 'partial', 'under the limit');
    await catchUpIsExact(small, 'full', 'over the limit');
  });

  test('a real inotify queue overflow: the lost event would leave a patched catch-up stale; the count forces a full scan', async function () {
    this.timeout(60_000);
    const limit = inotifyQueueLimit();
    if (limit > 100_000) this.skip();
    const catchUps = await started();
    // Control: the same watch without the fallback (it never thinks the queue could have overflowed).
    const unguarded = await started(newWatch({ queueLimit: Number.MAX_SAFE_INTEGER }));
    // The event loop is blocked here: libuv reads nothing until this returns, so the kernel's queue fills up
    // with the renames' events (two each, moved from / moved to) and drops the edit of src/b.ts that comes after.
    for (let i = 0; i < limit / 2 + 500; i++) {
      fs.renameSync(abs('docs/e.md'), abs('docs/e2.md'));
      fs.renameSync(abs('docs/e2.md'), abs('docs/e.md'));
    }
    fs.appendFileSync(abs('src/b.ts'), ' edited after the overflow');
    const stale = await unguarded.next();
    assert.equal(stale.kind, 'partial');
    assert.notEqual(
      stale.scan.manifest.get('src/b.ts')?.hash,
      (await fullScan()).manifest.get('src/b.ts')?.hash,
      'control: the edit was lost with the overflow',
    );
    await catchUpIsExact(catchUps, 'full', 'after an overflow');
  });

  test('a directory replaced while watched (mv away + mkdir, rm -rf + mkdir): the new one is scanned anew, the moved one follows', async () => {
    const catchUps = await started();
    fs.renameSync(abs('src'), abs('src.old'));
    write('src/new.ts');
    write('src/deep/other.ts');
    await catchUpIsExact(catchUps, 'partial', 'mv away + mkdir');
    // The watchers on the moved inodes were replaced (closed): one full catch-up, then edits in both places.
    await catchUpIsExact(catchUps, 'full', 'after watchers were replaced');
    fs.appendFileSync(abs('src.old/deep/deeper/d.ts'), ' edited where it went');
    fs.appendFileSync(abs('src/deep/other.ts'), ' edited in the new one');
    await catchUpIsExact(catchUps, 'partial', 'edits in the moved and in the new directory');

    fs.rmSync(abs('docs'), { recursive: true });
    write('docs/more/f.md', 'another f');
    write('docs/g.md');
    await catchUpIsExact(catchUps, 'partial', 'rm -rf + recreate');
    await catchUpIsExact(catchUps, 'full', 'after watchers were closed');
    fs.appendFileSync(abs('docs/more/f.md'), ' edited');
    await catchUpIsExact(catchUps, 'partial', 'an edit in the recreated directory');
  });

  test('a file and a directory renamed across two watched directories', async () => {
    const catchUps = await started();
    fs.renameSync(abs('src/b.ts'), abs('docs/b.ts'));
    await catchUpIsExact(catchUps, 'partial', 'file renamed across directories');
    fs.renameSync(abs('src/deep'), abs('docs/more/deep'));
    await catchUpIsExact(catchUps, 'partial', 'directory renamed across directories');
    await catchUpIsExact(catchUps, 'full', 'after the old path’s watchers were closed');
    fs.appendFileSync(abs('docs/more/deep/deeper/d.ts'), ' edited at its new place');
    write('docs/more/deep/new.ts');
    await catchUpIsExact(catchUps, 'partial', 'edits in the moved directory');
  });

  test('a .gitignore edited to ignore and to un-ignore files: the same as a full scan with the session’s filter', async () => {
    const catchUps = await started();
    assert.equal((await fullScan()).manifest.has('logs/old.log'), false);
    fs.writeFileSync(abs('.gitignore'), 'keep.txt\n');
    write('logs/new.log');
    await catchUpIsExact(catchUps, 'partial', '.gitignore changed');
    fs.writeFileSync(abs('logs/.gitignore'), '*\n');
    await catchUpIsExact(catchUps, 'partial', 'nested .gitignore added');
  });

  test('a symlink swapped for a directory and back, and a link whose verdict depends on another entry', async () => {
    await writeTree(root, { 'links/target/t.txt': 't' });
    fs.symlinkSync('target', abs('links/alias'));
    // In another directory: leads out of the root only while links/hop is a link to `..`.
    fs.symlinkSync('../links/hop/../../x', abs('docs/escape'));
    const catchUps = await started();
    fs.rmSync(abs('links/alias'));
    write('links/alias/inner.txt');
    await catchUpIsExact(catchUps, 'partial', 'symlink swapped for a directory');
    fs.rmSync(abs('links/alias'), { recursive: true });
    fs.symlinkSync('../src', abs('links/alias'));
    await catchUpIsExact(catchUps, 'partial', 'directory swapped for a symlink');
    await catchUpIsExact(catchUps, 'full', 'after its watcher was closed');
    fs.symlinkSync('..', abs('links/hop'));
    await catchUpIsExact(catchUps, 'partial', 'a link that makes another one escape');
    assert.equal(catchUps.last!.escaping.has('docs/escape'), true);
    fs.rmSync(abs('links/hop'));
    fs.mkdirSync(abs('links/hop'));
    await catchUpIsExact(catchUps, 'partial', 'the escaping link is judged again');
    assert.equal(catchUps.last!.manifest.has('docs/escape'), true);
  });

  test('hard links: a new one means a full scan; a write through one name is seen under the other', async () => {
    const catchUps = await started();
    fs.linkSync(abs('src/b.ts'), abs('docs/b-link.ts'));
    await catchUpIsExact(catchUps, 'full', 'a new hard link');
    fs.appendFileSync(abs('docs/b-link.ts'), ' written through the other name');
    await catchUpIsExact(catchUps, 'partial', 'write through the other name');
    assert.equal(fs.readFileSync(abs('src/b.ts'), 'utf8'), 'b written through the other name');
  });

  test('a cancelled catch-up, invalidate() and a watcher given up each leave the next catch-up full', async () => {
    const catchUps = await started();
    write('src/x.ts');
    const cancelled = new AbortController();
    cancelled.abort();
    await assert.rejects(catchUps.watch.scan(filter, catchUps.last, { reuse: true, signal: cancelled.signal }), /cancelled/);
    await catchUpIsExact(catchUps, 'full', 'after a cancelled catch-up');
    write('src/y.ts');
    catchUps.watch.invalidate();
    await catchUpIsExact(catchUps, 'full', 'after invalidate()');
    const tooMany = new CatchUps(new WorkspaceWatch(root, { maxDirectories: 3 }));
    watches.push(tooMany.watch);
    await catchUpIsExact(tooMany, 'full', 'first catch-up');
    write('src/z.ts');
    await catchUpIsExact(tooMany, 'full', 'more directories than it may watch');
  });

  test('random edits, moves, removals and links, round after round: every catch-up equals a full scan (fixed seed)', async function () {
    this.timeout(120_000);
    const places = ['a', 'b', 'a/c', 'b/d', 'a/c/e', 'b/d/f'];
    const names = ['x', 'y', 'z', 'c', 'd'];
    const place = fc.constantFrom(...places);
    const pathArb = fc.tuple(place, fc.constantFrom(...names)).map(([dir, name]) => `${dir}/${name}`);
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), at: pathArb, content: fc.string({ maxLength: 4 }) }),
      fc.record({ kind: fc.constant('append' as const), at: pathArb }),
      fc.record({ kind: fc.constant('mkdir' as const), at: fc.oneof(place, pathArb) }),
      fc.record({ kind: fc.constant('remove' as const), at: fc.oneof(place, pathArb) }),
      fc.record({ kind: fc.constant('move' as const), at: fc.oneof(place, pathArb), to: fc.oneof(place, pathArb) }),
      fc.record({ kind: fc.constant('link' as const), at: pathArb, to: fc.constantFrom('..', 'x', '../c', '../../..', 'c/../..') }),
    );
    const apply = (o: { kind: string; at: string; to?: string; content?: string }) => {
      try {
        if (o.kind === 'write') write(o.at, o.content);
        else if (o.kind === 'append') fs.appendFileSync(abs(o.at), '+');
        else if (o.kind === 'mkdir') fs.mkdirSync(abs(o.at), { recursive: true });
        else if (o.kind === 'remove') fs.rmSync(abs(o.at), { recursive: true, force: true });
        else if (o.kind === 'move') fs.renameSync(abs(o.at), abs(o.to!));
        else fs.symlinkSync(o.to!, abs(o.at));
      } catch {
        // Not possible in the tree as it is (a missing parent, a move into itself): nothing happened.
      }
    };
    const kinds = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }), async (rounds) => {
        await removeDir(root);
        fs.mkdirSync(root);
        for (const dir of places) write(`${dir}/x`);
        const catchUps = new CatchUps(newWatch());
        await catchUps.next();
        for (const round of rounds) {
          for (const o of round) apply(o);
          const result = await catchUps.next();
          kinds.set(result.kind, (kinds.get(result.kind) ?? 0) + 1);
          assert.deepEqual(asArrays(result.scan), asArrays(await fullScan()), `after ${JSON.stringify(round)}`);
        }
        for (const watch of watches.splice(0)) watch.dispose();
      }),
      { numRuns: 25, seed: 16, endOnFailure: true },
    );
    assert.ok((kinds.get('partial') ?? 0) > 10, `most catch-ups patched: ${JSON.stringify([...kinds])}`);
  });
});
