import * as assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import type { ChangeEntry } from '../../../src/shared/protocol';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { planApply } from '../../../src/core/apply/applyPlan';
import { applyToFolder } from '../../../src/core/apply/applyToFolder';
import { computeChangeSet } from '../../../src/core/changes/changeSet';
import { isGitInternal } from '../../../src/core/changes/flags';
import { readBoxTree } from '../../../src/core/changes/boxTree';
import { SandboxError } from '../../../src/core/errors';
import { checkRelative, guardedAbsolute, touchesGitDirectory } from '../../../src/core/workspace/pathGuard';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { scanWorkspace } from '../../../src/core/workspace/workspaceScan';
import { sha256 } from '../../../src/core/util/hash';
import { makeTempDir, removeDir, tarStream, writeTree } from '../../builders/trees';
import type { TarEntrySpec } from '../../builders/trees';

/** Bugs the collect → apply fuzz (test/security/fuzz.test.ts, `npm run fuzz`) found, each pinned here. */

async function tarBytes(entries: TarEntrySpec[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of tarStream(entries)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Sets the size field of the header block at `offset` and fixes its checksum. */
function setHeaderSize(bytes: Buffer, offset: number, size: number): void {
  const block = bytes.subarray(offset, offset + 512);
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timed out'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timed out'>((resolve) => {
    timer = setTimeout(() => resolve('timed out'), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function read(bytes: Buffer) {
  const filter = await SyncFilter.create('/nonexistent', { exclude: [], useGitignore: false });
  return readBoxTree(Readable.from([bytes]), { prefix: 'workspace/', baseline: new Map(), filter });
}

function added(relPath: string): ChangeEntry {
  return { path: relPath, kind: 'added', type: 'file', mode: 0o644, hash: sha256('x'), binary: false, flags: [] };
}

suite('fuzz regressions', () => {
  test('readBoxTree finishes on a directory header that claims a size, where waiting for that body hangs forever', async () => {
    const bytes = await tarBytes([
      { name: 'workspace/', type: 'directory' },
      { name: 'workspace/d/', type: 'directory' },
      { name: 'workspace/f', type: 'file', content: 'x' },
    ]);
    setHeaderSize(bytes, 512, 513);

    // Control: reading every entry's body, as readBoxTree did, never finishes (tar-stream never ends it).
    const extract = tar.extract();
    const drainAll = (async () => {
      for await (const entry of extract) {
        for await (const _ of entry) void _;
      }
      return 'finished';
    })();
    extract.end(bytes);
    assert.equal(await within(drainAll, 500), 'timed out');

    const tree = await within(read(bytes), 5000);
    assert.notEqual(tree, 'timed out', 'readBoxTree hung on the directory that claims a size');
    assert.deepEqual([...(tree as Awaited<ReturnType<typeof read>>).entries.keys()], ['d', 'f']);
  });

  test('readBoxTree fails with engine-error on a size field tar-stream cannot decode (base-256 not starting 0x80/0xff), where waiting for that body hangs forever', async () => {
    const bytes = await tarBytes([
      { name: 'workspace/', type: 'directory' },
      { name: 'workspace/f', type: 'file', content: 'x' },
      { name: 'workspace/g', type: 'file', content: 'y' },
    ]);
    const header = bytes.subarray(512, 1024);
    header[124] = 0xf9;
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');

    // Control: tar-stream hands this entry out with size null and never ends its body.
    const extract = tar.extract();
    const drainAll = (async () => {
      for await (const entry of extract) {
        for await (const _ of entry) void _;
      }
      return 'finished';
    })();
    extract.end(bytes);
    assert.equal(await within(drainAll, 500), 'timed out');

    const outcome = await within(
      read(bytes).then(
        () => 'read',
        (error: unknown) => error,
      ),
      5000,
    );
    assert.notEqual(outcome, 'timed out', 'readBoxTree hung on the undecodable size');
    assert.ok(SandboxError.is(outcome, 'engine-error'), `expected engine-error, got ${String(outcome)}`);
  });

  test('collect refuses a drive-letter name below the prefix ("workspace/C:x"), which apply refuses to write', async () => {
    const tree = await read(
      await tarBytes([
        { name: 'workspace/', type: 'directory' },
        { name: 'workspace/C:x', type: 'file', content: 'x' },
        { name: 'workspace/sub/D:y', type: 'file', content: 'y' },
        { name: 'workspace/ok.txt', type: 'file', content: 'ok' },
      ]),
    );
    assert.deepEqual(
      tree.refused.map((r) => [r.path, r.reason]),
      [
        ['C:x', 'absolute-path'],
        ['sub/D:y', 'absolute-path'],
      ],
    );
    assert.deepEqual([...tree.entries.keys()], ['ok.txt']);
    // What collect used to accept is what apply throws on: the change could never be applied.
    assert.deepEqual(checkRelative('C:x'), { ok: false, reason: 'absolute-path' });
    const root = await makeTempDir('fuzz-regression');
    try {
      await assert.rejects(guardedAbsolute(root, 'C:x'), (error) => SandboxError.is(error, 'path-outside-workspace'));
    } finally {
      await removeDir(root);
    }
  });

  test('the apply plan skips changes under .git in every spelling a case-insensitive, NTFS or HFS+ disk reads as .git (.GIT, .git., GIT~1, ignorable code points), and only those', () => {
    const gitAliases = [
      '.GIT/hooks/pre-commit',
      '.Git/config',
      'sub/.GIT/hooks/post-checkout',
      '.git./hooks/pre-commit',
      '.git /hooks/pre-commit',
      'GIT~1/hooks/pre-commit',
      '.g\u200cit/hooks/pre-commit',
      '.git\ufeff/hooks/pre-commit',
      '.git::$INDEX_ALLOCATION/hooks/pre-commit',
    ];
    const ordinary = ['.gitignore', '.github/workflows/ci.yml', 'git/x', '.gitx/y', 'sub/.gitkeep'];
    // Control: the case-sensitive `.git` check the plan used before let every alias through.
    assert.deepEqual(
      gitAliases.filter((p) => p.split('/').includes('.git')),
      [],
    );
    const plan = planApply({ baseline: new Map(), current: new Map(), changes: [...gitAliases, ...ordinary].map(added) });
    assert.deepEqual(plan.skipped.map((s) => s.path).sort(), [...gitAliases].sort());
    assert.ok(plan.skipped.every((s) => s.reason.startsWith('git-internal')));
    assert.deepEqual(
      plan.operations
        .filter((op) => op.kind === 'write')
        .map((op) => op.path)
        .sort(),
      [...ordinary].sort(),
    );
    for (const p of gitAliases) assert.ok(touchesGitDirectory(p), p);
    for (const p of ordinary) assert.ok(!touchesGitDirectory(p), p);
    // The review shows them as .git changes too (the git-internal flag), not as ordinary files.
    for (const p of gitAliases) assert.ok(isGitInternal(p), `flagged: ${p}`);
    for (const p of ordinary) assert.ok(!isGitInternal(p), `not flagged: ${p}`);
  });

  test('a file renamed away whose old name becomes a directory applies: the directory is made after the rename, not before it', async () => {
    const root = await makeTempDir('fuzz-regression-rename');
    try {
      await writeTree(root, { loop: 'same content' });
      const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
      const baseline = await scanWorkspace(root, filter);
      // The box moved `loop` to `a` and made `loop/` a directory holding a new file (no entry for `loop/` itself).
      const tree = await readBoxTree(
        tarStream([
          { name: 'workspace/', type: 'directory' },
          { name: 'workspace/a', type: 'file', content: 'same content' },
          { name: 'workspace/loop/a', type: 'file', content: 'new' },
        ]),
        { prefix: 'workspace/', baseline, filter },
      );
      const changeSet = computeChangeSet(root, baseline, tree);
      assert.deepEqual(
        changeSet.changes.map((c) => [c.kind, c.path, c.fromPath]),
        [
          ['renamed', 'a', 'loop'],
          ['added', 'loop/a', undefined],
        ],
      );
      const plan = planApply({ baseline, changes: changeSet.changes, current: baseline });
      const kinds = plan.operations.map((op) => `${op.kind} ${op.path}`);
      assert.ok(kinds.indexOf('rename a') < kinds.indexOf('mkdir loop'), `the rename must free "loop" first: ${kinds.join(', ')}`);
      assert.deepEqual(await applyToFolder(root, plan, (p) => tree.contents.get(p)!), ['a', 'loop/a']);
      assert.equal(await fs.readFile(path.join(root, 'a'), 'utf8'), 'same content');
      assert.equal(await fs.readFile(path.join(root, 'loop', 'a'), 'utf8'), 'new');
    } finally {
      await removeDir(root);
    }
  });
});
