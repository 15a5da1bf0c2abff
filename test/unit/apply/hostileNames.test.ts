// Names a hostile box can produce that collect and apply must handle without writing a different path than the
// box had (non-UTF-8 bytes decoded as U+FFFD), without failing on a legal name (255 bytes) and without creating
// a link that leaves the workspace even if a plan asks for one.
import * as assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ApplyPlan } from '../../../src/shared/protocol';
import { applyToFolder } from '../../../src/core/apply/applyToFolder';
import { readBoxTree } from '../../../src/core/changes/boxTree';
import { SandboxError } from '../../../src/core/errors';
import { checkRelative, isFaithfulName } from '../../../src/core/workspace/pathGuard';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { sha256 } from '../../../src/core/util/hash';
import { makeTempDir, removeDir, tarStream } from '../../builders/trees';

suite('hostile names (collect and apply)', () => {
  let parent: string;
  let root: string;

  setup(async () => {
    parent = await makeTempDir('hostile-names');
    root = path.join(parent, 'ws');
    await fs.mkdir(root);
  });

  teardown(async () => {
    await removeDir(parent);
  });

  test('a name decoded from non-UTF-8 bytes (holding U+FFFD) is refused as invalid-name; plain Unicode names are fine', () => {
    const lossy = Buffer.from([0x62, 0xff, 0x2e, 0x74]).toString('utf8');
    assert.equal(lossy, 'b\uFFFD.t');
    assert.equal(isFaithfulName(lossy), false);
    assert.deepEqual(checkRelative(lossy), { ok: false, reason: 'invalid-name' });
    assert.deepEqual(checkRelative(`dir/${lossy}/x`), { ok: false, reason: 'invalid-name' });
    assert.deepEqual(checkRelative('café/naïve-日本.txt'), { ok: true, path: 'café/naïve-日本.txt' });
  });

  test('collect refuses a symlink whose target was not UTF-8 as invalid-name, and keeps a Unicode target', async () => {
    const filter = await SyncFilter.create('/nonexistent', { exclude: [], useGitignore: false });
    const tree = await readBoxTree(
      tarStream([
        { name: 'workspace/', type: 'directory' },
        { name: 'workspace/bad', type: 'symlink', linkname: 't\uFFFD' },
        { name: 'workspace/good', type: 'symlink', linkname: 'café' },
      ]),
      { prefix: 'workspace/', baseline: new Map(), filter },
    );
    assert.deepEqual(
      tree.refused.map((r) => [r.path, r.reason]),
      [['bad', 'invalid-name']],
    );
    assert.deepEqual([...tree.entries.keys()], ['good']);
  });

  test('apply writes a file whose name is 255 bytes (its temp name must fit too) and leaves no temp file', async () => {
    const name = `${'é'.repeat(100)}${'n'.repeat(55)}`;
    assert.equal(Buffer.byteLength(name), 255);
    const plan: ApplyPlan = {
      operations: [
        { kind: 'write', path: `sub/${name}`, mode: 0o644, hash: sha256('long') },
        { kind: 'symlink', path: `sub/l${name.slice(1)}`, linkTarget: name },
      ],
      conflicts: [],
      skipped: [],
    };
    const applied = await applyToFolder(root, plan, () => Buffer.from('long'));
    assert.deepEqual(applied, [`sub/${name}`, `sub/l${name.slice(1)}`]);
    assert.equal(await fs.readFile(path.join(root, 'sub', name), 'utf8'), 'long');
    assert.equal(await fs.readlink(path.join(root, 'sub', `l${name.slice(1)}`)), name);
    assert.deepEqual((await fs.readdir(path.join(root, 'sub'))).sort(), [name, `l${name.slice(1)}`].sort());
  });

  test('apply refuses to create a link whose target is absolute, climbs out of the workspace or was not UTF-8, and creates nothing', async () => {
    for (const [linkPath, linkTarget] of [
      ['abs', '/etc/passwd'],
      ['up', '..'],
      ['deep/up', '../../ws-sibling'],
      ['lossy', 't\uFFFD'],
    ]) {
      const plan: ApplyPlan = { operations: [{ kind: 'symlink', path: linkPath, linkTarget }], conflicts: [], skipped: [] };
      await assert.rejects(
        applyToFolder(root, plan, () => Buffer.alloc(0)),
        (e) => SandboxError.is(e, 'path-outside-workspace'),
        `${linkPath} -> ${linkTarget}`,
      );
    }
    assert.deepEqual(await fs.readdir(root), []);
    // Control: a link that stays inside is created.
    await applyToFolder(root, { operations: [{ kind: 'symlink', path: 'deep/in', linkTarget: '../x' }], conflicts: [], skipped: [] }, () =>
      Buffer.alloc(0),
    );
    assert.equal(await fs.readlink(path.join(root, 'deep', 'in')), '../x');
  });
});
