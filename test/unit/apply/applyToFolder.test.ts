import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ChangeEntry } from '../../../src/shared/protocol';
import { planApply } from '../../../src/core/apply/applyPlan';
import type { ApplyPlan } from '../../../src/shared/protocol';
import { applyToFolder } from '../../../src/core/apply/applyToFolder';
import { hashStamped, stampOf } from '../../../src/core/apply/fileStamp';
import { computeChangeSet } from '../../../src/core/changes/changeSet';
import type { ManifestEntry } from '../../../src/core/workspace/manifest';
import { SandboxError } from '../../../src/core/errors';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { scanWorkspace } from '../../../src/core/workspace/workspaceScan';
import { sha256 } from '../../../src/core/util/hash';
import { makeTempDir, removeDir, writeTree } from '../../builders/trees';

suite('applyToFolder', () => {
  let root: string;
  let outside: string;

  setup(async () => {
    root = await makeTempDir('apply');
    outside = await makeTempDir('apply-outside');
  });

  teardown(async () => {
    await removeDir(root);
    await removeDir(outside);
  });

  test('applies a planned change set to disk: writes, renames, deletes, symlinks, modes, directories', async () => {
    await writeTree(root, { 'src/a.ts': 'a', 'old.ts': 'o', 'gone/x': 'x', 'script.sh': 's' });
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const baseline = await scanWorkspace(root, filter);
    const contents: Record<string, string> = { 'src/a.ts': 'A!', 'new/deep/file.ts': 'new' };
    const changes: ChangeEntry[] = [
      { path: 'src/a.ts', kind: 'modified', type: 'file', hash: sha256('A!'), mode: 0o644, binary: false, flags: [] },
      { path: 'new/deep/file.ts', kind: 'added', type: 'file', hash: sha256('new'), mode: 0o600, binary: false, flags: [] },
      { path: 'moved/old.ts', kind: 'renamed', fromPath: 'old.ts', type: 'file', hash: sha256('o'), mode: 0o644, binary: false, flags: [] },
      { path: 'gone', kind: 'deleted', type: 'directory', binary: false, flags: [] },
      { path: 'gone/x', kind: 'deleted', type: 'file', binary: false, flags: [] },
      { path: 'script.sh', kind: 'mode', type: 'file', mode: 0o755, binary: false, flags: ['newly-executable'] },
      { path: 'link', kind: 'added', type: 'symlink', linkTarget: 'src/a.ts', binary: false, flags: [] },
      { path: 'empty', kind: 'added', type: 'directory', mode: 0o700, binary: false, flags: [] },
    ];
    const plan = planApply({ baseline, changes, current: baseline, approveFlagged: ['script.sh'] });
    const applied = await applyToFolder(root, plan, (p) => Buffer.from(contents[p]));
    assert.deepEqual(applied.sort(), ['empty', 'gone', 'gone/x', 'link', 'moved/old.ts', 'new/deep/file.ts', 'script.sh', 'src/a.ts']);

    assert.equal(await fs.readFile(path.join(root, 'src/a.ts'), 'utf8'), 'A!');
    assert.equal(await fs.readFile(path.join(root, 'new/deep/file.ts'), 'utf8'), 'new');
    assert.equal((await fs.stat(path.join(root, 'new/deep/file.ts'))).mode & 0o777, 0o600);
    assert.equal(await fs.readFile(path.join(root, 'moved/old.ts'), 'utf8'), 'o');
    await assert.rejects(fs.lstat(path.join(root, 'old.ts')), { code: 'ENOENT' });
    await assert.rejects(fs.lstat(path.join(root, 'gone')), { code: 'ENOENT' });
    assert.equal((await fs.stat(path.join(root, 'script.sh'))).mode & 0o777, 0o755);
    assert.equal(await fs.readlink(path.join(root, 'link')), 'src/a.ts');
    assert.equal((await fs.stat(path.join(root, 'empty'))).mode & 0o777, 0o700);
    const leftovers = (await fs.readdir(root, { recursive: true })).filter((name) => String(name).includes('agent-sandbox'));
    assert.deepEqual(leftovers, [], 'no temp files remain');
  });

  test('refuses to write through a symlinked parent and writes nothing outside', async () => {
    await fs.symlink(outside, path.join(root, 'escape'));
    const plan: ApplyPlan = { operations: [{ kind: 'write', path: 'escape/pwned.txt', hash: sha256('x'), mode: 0o644 }], conflicts: [], skipped: [] };
    await assert.rejects(
      applyToFolder(root, plan, () => Buffer.from('x')),
      (e) => SandboxError.is(e, 'path-outside-workspace'),
    );
    assert.deepEqual(await fs.readdir(outside), []);

    for (const kind of ['mkdir', 'symlink', 'delete', 'chmod'] as const) {
      const other: ApplyPlan = { operations: [{ kind, path: 'escape/x', linkTarget: 'y', mode: 0o600 }], conflicts: [], skipped: [] };
      await assert.rejects(
        applyToFolder(root, other, () => Buffer.alloc(0)),
        (e) => SandboxError.is(e, 'path-outside-workspace'),
        kind,
      );
    }
    const traversal: ApplyPlan = { operations: [{ kind: 'write', path: '../x', hash: sha256('x') }], conflicts: [], skipped: [] };
    await assert.rejects(
      applyToFolder(root, traversal, () => Buffer.from('x')),
      (e) => SandboxError.is(e, 'path-outside-workspace'),
    );
    assert.deepEqual(await fs.readdir(outside), []);
  });

  test('a link to a directory that the box replaced by a real directory with files applies, without writing through the link', async () => {
    await writeTree(root, { 'real/keep.txt': 'host', 'unrelated.txt': 'u' });
    await writeTree(outside, { 'keep.txt': 'outside' });
    await fs.symlink('real', path.join(root, 'link'));
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const baseline = await scanWorkspace(root, filter);
    const changes: ChangeEntry[] = [
      { path: 'link', kind: 'modified', type: 'directory', mode: 0o755, binary: false, flags: [] },
      { path: 'link/f.txt', kind: 'added', type: 'file', hash: sha256('box f'), mode: 0o644, binary: false, flags: [] },
      { path: 'link/sub/g.txt', kind: 'added', type: 'file', hash: sha256('box g'), mode: 0o644, binary: false, flags: [] },
      { path: 'unrelated.txt', kind: 'modified', type: 'file', hash: sha256('U'), mode: 0o644, binary: false, flags: [] },
    ];
    const plan = planApply({ baseline, changes, current: baseline });
    assert.deepEqual(plan.conflicts, []);
    const contents: Record<string, string> = { 'link/f.txt': 'box f', 'link/sub/g.txt': 'box g', 'unrelated.txt': 'U' };
    const applied = await applyToFolder(root, plan, (p) => Buffer.from(contents[p]));
    assert.deepEqual(applied.sort(), ['link', 'link/f.txt', 'link/sub/g.txt', 'unrelated.txt']);
    assert.ok((await fs.lstat(path.join(root, 'link'))).isDirectory(), 'the link is now a real directory');
    assert.equal(await fs.readFile(path.join(root, 'link/f.txt'), 'utf8'), 'box f');
    assert.equal(await fs.readFile(path.join(root, 'link/sub/g.txt'), 'utf8'), 'box g');
    assert.deepEqual(await fs.readdir(path.join(root, 'real')), ['keep.txt'], 'nothing was written through the old link');
    assert.equal(await fs.readFile(path.join(root, 'unrelated.txt'), 'utf8'), 'U');

    // A link that the plan does not delete is still never written through.
    await fs.symlink(outside, path.join(root, 'other'));
    const through: ApplyPlan = {
      operations: [{ kind: 'write', path: 'other/keep.txt', hash: sha256('x'), mode: 0o644 }],
      conflicts: [],
      skipped: [],
    };
    await assert.rejects(
      applyToFolder(root, through, () => Buffer.from('x')),
      (e) => SandboxError.is(e, 'path-outside-workspace'),
    );
    assert.equal(await fs.readFile(path.join(outside, 'keep.txt'), 'utf8'), 'outside');
  });

  test('a box link that leaves the workspace through a link on the host is refused by the plan and by apply', async () => {
    await writeTree(root, { 'a.txt': 'a' });
    await writeTree(outside, { 'secret.txt': 'host secret' });
    await fs.symlink(outside, path.join(root, 'hostlink'));
    await fs.mkdir(path.join(root, 'sub'));
    await fs.symlink('../hostlink', path.join(root, 'sub', 'up'));
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const obstacles = new Map<string, string>();
    const baseline = await scanWorkspace(root, filter, { onSkipped: (p) => obstacles.set(p, 'a symbolic link out of the folder') });
    assert.ok(!baseline.has('hostlink'), 'the scan leaves the escaping link out, so the box never sees it');
    const link = (p: string, linkTarget: string): ChangeEntry => ({ path: p, kind: 'added', type: 'symlink', linkTarget, binary: false, flags: [] });
    const changes = [link('x', 'hostlink/secret.txt'), link('y', 'sub/up/secret.txt'), link('ok', 'a.txt')];
    const plan = planApply({ baseline, changes, current: baseline, obstacles });
    assert.deepEqual(
      plan.skipped.map((s) => s.path),
      ['x', 'y'],
    );
    assert.match(plan.skipped[0].reason, /^symlink-outside: .*refused/);
    assert.deepEqual(
      plan.operations.map((op) => `${op.kind} ${op.path}`),
      ['symlink ok'],
    );

    // Apply resolves on disk too, whatever plan it is given.
    for (const [p, target] of [
      ['x', 'hostlink/secret.txt'],
      ['y', 'sub/up/secret.txt'],
    ]) {
      const unplanned: ApplyPlan = { operations: [{ kind: 'symlink', path: p, linkTarget: target }], conflicts: [], skipped: [] };
      await assert.rejects(
        applyToFolder(root, unplanned, () => Buffer.alloc(0)),
        (e) => SandboxError.is(e, 'path-outside-workspace'),
        p,
      );
      assert.equal(await fs.lstat(path.join(root, p)).catch(() => undefined), undefined);
    }
    await applyToFolder(root, plan, () => Buffer.alloc(0));
    assert.equal(await fs.readlink(path.join(root, 'ok')), 'a.txt');
  });

  test('mode: new directories keep their own mode (700, 500), and no mode is changed through a hard link', async () => {
    await writeTree(root, { 'a.txt': 'a', 'linked.txt': 'k', 'other.txt': 'o' });
    await writeTree(outside, { 'victim.txt': 'outside file' });
    await fs.chmod(path.join(outside, 'victim.txt'), 0o600);
    await fs.rm(path.join(root, 'linked.txt'));
    await fs.link(path.join(outside, 'victim.txt'), path.join(root, 'linked.txt'));
    await fs.chmod(path.join(root, 'other.txt'), 0o600);
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const baseline = await scanWorkspace(root, filter);
    const boxTree = new Map(baseline);
    const add = (entry: ManifestEntry) => boxTree.set(entry.path, entry);
    add({ path: 'private', type: 'directory', mode: 0o700, size: 0 });
    add({ path: 'private/notes.txt', type: 'file', mode: 0o600, size: 1, hash: sha256('n') });
    add({ path: 'sealed', type: 'directory', mode: 0o500, size: 0 });
    add({ path: 'sealed/r.txt', type: 'file', mode: 0o400, size: 1, hash: sha256('r') });
    add({ path: 'plain', type: 'directory', mode: 0o755, size: 0 });
    add({ path: 'plain/p.txt', type: 'file', mode: 0o644, size: 1, hash: sha256('p') });
    add({ ...baseline.get('linked.txt')!, mode: 0o666 });
    add({ ...baseline.get('other.txt')!, mode: 0o644 });
    const contents = new Map([
      ['private/notes.txt', Buffer.from('n')],
      ['sealed/r.txt', Buffer.from('r')],
      ['plain/p.txt', Buffer.from('p')],
    ]);
    const changeSet = computeChangeSet(root, baseline, { entries: boxTree, contents, refused: [], ignored: [] });
    assert.deepEqual(
      changeSet.changes.map((c) => `${c.kind} ${c.path}`),
      ['mode linked.txt', 'mode other.txt', 'added plain/p.txt', 'added private', 'added private/notes.txt', 'added sealed', 'added sealed/r.txt'],
      'a new 755 directory is implied by its content; any other mode is carried',
    );
    assert.deepEqual(changeSet.changes.find((c) => c.path === 'linked.txt')!.flags, ['others-writable']);

    // What the session tells the planner: the hard-link count of the files it touches.
    const current = new Map(baseline);
    current.set('linked.txt', { ...baseline.get('linked.txt')!, links: 2 });
    const plan = planApply({ baseline, changes: changeSet.changes, current, approveFlagged: ['linked.txt'] });
    assert.deepEqual(
      plan.conflicts.map((c) => c.path),
      ['linked.txt'],
    );
    assert.match(plan.conflicts[0].reason, /2 hard links/);
    await applyToFolder(root, plan, (p) => contents.get(p)!);
    const modeOf = async (p: string) => (await fs.lstat(path.join(root, p))).mode & 0o7777;
    assert.equal(await modeOf('private'), 0o700);
    assert.equal(await modeOf('sealed'), 0o500);
    assert.equal(await modeOf('plain'), 0o755);
    assert.equal(await modeOf('sealed/r.txt'), 0o400);
    assert.equal(await modeOf('other.txt'), 0o644);
    assert.equal((await fs.stat(path.join(outside, 'victim.txt'))).mode & 0o777, 0o600);

    // Apply refuses it on disk too, before anything else of the plan is applied.
    await fs.chmod(path.join(root, 'other.txt'), 0o600);
    const unplanned: ApplyPlan = {
      operations: [
        { kind: 'chmod', path: 'other.txt', mode: 0o644 },
        { kind: 'chmod', path: 'linked.txt', mode: 0o666 },
      ],
      conflicts: [],
      skipped: [],
    };
    await assert.rejects(
      applyToFolder(root, unplanned, () => Buffer.alloc(0)),
      (e) => SandboxError.is(e, 'path-outside-workspace') && /hard links/.test((e as Error).message),
    );
    assert.equal((await fs.stat(path.join(outside, 'victim.txt'))).mode & 0o777, 0o600);
    assert.equal(await modeOf('other.txt'), 0o600, 'nothing of the plan was applied');
    await fs.chmod(path.join(root, 'sealed'), 0o700);
  });

  test('replaces a symlink at the target instead of writing through it', async () => {
    await writeTree(outside, { 'victim.txt': 'untouched' });
    await fs.symlink(path.join(outside, 'victim.txt'), path.join(root, 'file.txt'));
    const plan: ApplyPlan = { operations: [{ kind: 'write', path: 'file.txt', hash: sha256('new'), mode: 0o644 }], conflicts: [], skipped: [] };
    await applyToFolder(root, plan, () => Buffer.from('new'));
    assert.equal(await fs.readFile(path.join(outside, 'victim.txt'), 'utf8'), 'untouched');
    assert.ok((await fs.lstat(path.join(root, 'file.txt'))).isFile());
    assert.equal(await fs.readFile(path.join(root, 'file.txt'), 'utf8'), 'new');

    const victimMode = (await fs.stat(path.join(outside, 'victim.txt'))).mode;
    await fs.symlink(path.join(outside, 'victim.txt'), path.join(root, 'chmod-me'));
    const chmod: ApplyPlan = { operations: [{ kind: 'chmod', path: 'chmod-me', mode: 0o777 }], conflicts: [], skipped: [] };
    await assert.rejects(applyToFolder(root, chmod, () => Buffer.alloc(0)));
    assert.equal((await fs.stat(path.join(outside, 'victim.txt'))).mode, victimMode);
  });

  test('atomic: content with the wrong hash stops the apply before anything is written', async () => {
    await writeTree(root, { 'a.txt': 'original' });
    const plan: ApplyPlan = {
      operations: [
        { kind: 'write', path: 'b.txt', hash: sha256('b') },
        { kind: 'write', path: 'a.txt', hash: sha256('reviewed') },
      ],
      conflicts: [],
      skipped: [],
    };
    await assert.rejects(
      applyToFolder(root, plan, (p) => Buffer.from(p === 'b.txt' ? 'b' : 'tampered')),
      (e) => SandboxError.is(e, 'internal') && /not the reviewed one/.test((e as Error).message),
    );
    assert.equal(await fs.readFile(path.join(root, 'a.txt'), 'utf8'), 'original');
    assert.deepEqual(await fs.readdir(root), ['a.txt'], 'b.txt (staged before a.txt) is not written either, and no temp file is left');
  });

  test('a file edited after the plan with its mtime put back (touch -r) is not overwritten, deleted, moved or chmodded', async () => {
    await writeTree(root, { 'a.txt': 'aaaa', 'd.txt': 'dddd', 'r.txt': 'rrrr', 'm.sh': 'mmmm', 'other.txt': 'o' });
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const baseline = await scanWorkspace(root, filter);
    const changes: ChangeEntry[] = [
      { path: 'a.txt', kind: 'modified', type: 'file', hash: sha256('box!'), mode: 0o644, binary: false, flags: [] },
      { path: 'd.txt', kind: 'deleted', type: 'file', binary: false, flags: [] },
      { path: 'moved/r.txt', kind: 'renamed', fromPath: 'r.txt', type: 'file', hash: sha256('rrrr'), mode: 0o644, binary: false, flags: [] },
      { path: 'm.sh', kind: 'mode', type: 'file', mode: 0o600, binary: false, flags: [] },
      { path: 'new.txt', kind: 'added', type: 'file', hash: sha256('new'), mode: 0o644, binary: false, flags: [] },
    ];
    const plan = planApply({ baseline, changes, current: baseline });
    assert.deepEqual(plan.conflicts, []);
    const sameSizeEdit = async (relPath: string, content: string) => {
      const absolute = path.join(root, relPath);
      execFileSync('cp', ['-p', absolute, path.join(outside, 'ref')]);
      await fs.writeFile(absolute, content);
      execFileSync('touch', ['-r', path.join(outside, 'ref'), absolute]);
    };
    const contents = (p: string) => Buffer.from(p === 'a.txt' ? 'box!' : 'new');
    for (const [relPath, edit] of [
      ['a.txt', 'AAAA'],
      ['d.txt', 'DDDD'],
      ['r.txt', 'RRRR'],
      ['m.sh', 'MMMM'],
    ]) {
      await writeTree(root, { 'a.txt': 'aaaa', 'd.txt': 'dddd', 'r.txt': 'rrrr', 'm.sh': 'mmmm' });
      await sameSizeEdit(relPath, edit);
      await assert.rejects(
        applyToFolder(root, plan, contents),
        (e) => SandboxError.is(e, 'workspace-changed') && (e as Error).message.includes(`"${relPath}"`),
      );
      assert.equal(await fs.readFile(path.join(root, relPath), 'utf8'), edit, `${relPath}: the developer's edit stays`);
      assert.deepEqual((await fs.readdir(root)).sort(), ['a.txt', 'd.txt', 'm.sh', 'other.txt', 'r.txt'], `${relPath}: nothing else was applied`);
      assert.equal((await fs.stat(path.join(root, 'm.sh'))).mode & 0o777, 0o644);
    }
    // Unchanged files: the same plan applies.
    await writeTree(root, { 'a.txt': 'aaaa', 'd.txt': 'dddd', 'r.txt': 'rrrr', 'm.sh': 'mmmm' });
    await applyToFolder(root, plan, contents);
    assert.equal(await fs.readFile(path.join(root, 'a.txt'), 'utf8'), 'box!');
    assert.equal(await fs.readFile(path.join(root, 'moved/r.txt'), 'utf8'), 'rrrr');
    assert.equal((await fs.stat(path.join(root, 'm.sh'))).mode & 0o777, 0o600);
  });

  test('all contents are staged before the workspace changes: a later failing read leaves every path as it was', async () => {
    await writeTree(root, { 'a.txt': 'original', 'gone.txt': 'still here', 'sub/c.txt': 'c' });
    const plan: ApplyPlan = {
      operations: [
        { kind: 'delete', path: 'gone.txt', type: 'file' },
        { kind: 'mkdir', path: 'new', implied: true },
        { kind: 'write', path: 'a.txt', hash: sha256('A') },
        { kind: 'write', path: 'new/deep/b.txt', hash: sha256('B') },
        { kind: 'write', path: 'sub/c.txt', hash: sha256('C') },
      ],
      conflicts: [],
      skipped: [],
    };
    let reads = 0;
    await assert.rejects(
      applyToFolder(root, plan, (p) => {
        reads++;
        return p === 'sub/c.txt' ? Promise.reject(new Error('box went away')) : Buffer.from(p === 'a.txt' ? 'A' : 'B');
      }),
      /box went away/,
    );
    assert.equal(reads, 3, 'the failing read came after two contents were staged');
    assert.equal(await fs.readFile(path.join(root, 'a.txt'), 'utf8'), 'original');
    assert.equal(await fs.readFile(path.join(root, 'gone.txt'), 'utf8'), 'still here');
    assert.equal(await fs.readFile(path.join(root, 'sub/c.txt'), 'utf8'), 'c');
    const all = (await fs.readdir(root, { recursive: true })).map(String).sort();
    assert.deepEqual(all, ['a.txt', 'gone.txt', 'sub', path.join('sub', 'c.txt')], 'no directory made, no temp file left');

    // The same plan with every content readable: staged files land in directories made after staging.
    assert.deepEqual(await applyToFolder(root, plan, (p) => Buffer.from(p === 'a.txt' ? 'A' : p === 'sub/c.txt' ? 'C' : 'B')), [
      'gone.txt',
      'a.txt',
      'new/deep/b.txt',
      'sub/c.txt',
    ]);
    assert.equal(await fs.readFile(path.join(root, 'new/deep/b.txt'), 'utf8'), 'B');
    assert.equal(await fs.readFile(path.join(root, 'sub/c.txt'), 'utf8'), 'C');
    const leftovers = (await fs.readdir(root, { recursive: true })).filter((name) => String(name).includes('agent-sandbox'));
    assert.deepEqual(leftovers, [], 'no temp files remain');
  });

  test('a file that becomes a directory gets its new content staged beside it, then written inside it', async () => {
    await writeTree(root, { x: 'was a file' });
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const baseline = await scanWorkspace(root, filter);
    const changes: ChangeEntry[] = [
      { path: 'x', kind: 'modified', type: 'directory', mode: 0o755, binary: false, flags: [] },
      { path: 'x/y.txt', kind: 'added', type: 'file', hash: sha256('inside'), mode: 0o644, binary: false, flags: [] },
    ];
    const plan = planApply({ baseline, changes, current: baseline });
    assert.deepEqual((await applyToFolder(root, plan, () => Buffer.from('inside'))).sort(), ['x', 'x/y.txt']);
    assert.equal(await fs.readFile(path.join(root, 'x/y.txt'), 'utf8'), 'inside');
    assert.deepEqual((await fs.readdir(root)).sort(), ['x']);
  });

  test('atomic: a failing content read leaves the target untouched', async () => {
    await writeTree(root, { 'a.txt': 'original' });
    const plan: ApplyPlan = { operations: [{ kind: 'write', path: 'a.txt', hash: sha256('x') }], conflicts: [], skipped: [] };
    await assert.rejects(
      applyToFolder(root, plan, () => Promise.reject(new Error('box went away'))),
      /box went away/,
    );
    assert.equal(await fs.readFile(path.join(root, 'a.txt'), 'utf8'), 'original');
    assert.deepEqual(await fs.readdir(root), ['a.txt']);
  });

  test('a directory delete leaves a directory the developer still has content in', async () => {
    await writeTree(root, { 'd/kept.txt': 'mine' });
    const plan: ApplyPlan = { operations: [{ kind: 'delete', path: 'd', type: 'directory' }], conflicts: [], skipped: [] };
    assert.deepEqual(await applyToFolder(root, plan, () => Buffer.alloc(0)), []);
    assert.equal(await fs.readFile(path.join(root, 'd/kept.txt'), 'utf8'), 'mine');
  });
  test('a hash from planning stands for the file only while its stamp is unchanged: a same-size edit with mtime put back is hashed again and kept', async () => {
    await writeTree(root, { 'a.txt': 'aaaa', 'b.txt': 'bbbb' });
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const baseline = await scanWorkspace(root, filter);
    const changes: ChangeEntry[] = [{ path: 'a.txt', kind: 'modified', type: 'file', hash: sha256('box!'), mode: 0o644, binary: false, flags: [] }];
    const plan = planApply({ baseline, changes, current: baseline });
    const planned = await hashStamped(path.join(root, 'a.txt'));
    assert.ok(typeof planned === 'object');
    assert.equal(planned.hash, sha256('aaaa'));
    // The developer edits a.txt after planning, keeping its size and putting its mtime back.
    execFileSync('cp', ['-p', path.join(root, 'a.txt'), path.join(outside, 'ref')]);
    await fs.writeFile(path.join(root, 'a.txt'), 'AAAA');
    execFileSync('touch', ['-r', path.join(outside, 'ref'), path.join(root, 'a.txt')]);
    await assert.rejects(
      applyToFolder(root, plan, () => Buffer.from('box!'), { hashed: new Map([['a.txt', planned]]) }),
      (e) =>
        SandboxError.is(e, 'workspace-changed') &&
        /"a\.txt"/.test((e as Error).message) &&
        /Nothing in the workspace was changed/.test((e as Error).message),
    );
    assert.equal(await fs.readFile(path.join(root, 'a.txt'), 'utf8'), 'AAAA', "the developer's edit stays");

    // Control: the planning hash is what the check uses while the stamp holds (a hash claimed for the file's
    // current stamp is believed, so the file is not read again), which is why a moved stamp must void it.
    const claimed = { ...planned, hash: sha256('aaaa'), stamp: stampOf(await fs.lstat(path.join(root, 'a.txt'))) };
    assert.deepEqual(await applyToFolder(root, plan, () => Buffer.from('box!'), { hashed: new Map([['a.txt', claimed]]) }), ['a.txt']);
    assert.equal(await fs.readFile(path.join(root, 'a.txt'), 'utf8'), 'box!');
  });

  test('writes renamed into place a few at a time: each is checked right before its rename, and a conflict names how many were applied', async () => {
    const count = 60;
    const names = Array.from({ length: count }, (_, i) => `d${i % 6}/w${String(i).padStart(3, '0')}.txt`);
    await writeTree(root, Object.fromEntries(names.map((n) => [n, `old ${n}`])));
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const baseline = await scanWorkspace(root, filter);
    const changes: ChangeEntry[] = names.map((n) => ({
      path: n,
      kind: 'modified',
      type: 'file',
      hash: sha256(`new ${n}`),
      mode: 0o644,
      binary: false,
      flags: [],
    }));
    const plan = planApply({ baseline, changes, current: baseline });
    assert.equal(plan.operations.filter((op) => op.kind === 'write').length, count);
    // The last file is edited by the developer while the others are staged: after the plan and after its own
    // hash was checked, before any rename.
    const late = names[count - 1];
    let edited = false;
    const contents = (p: string) => {
      if (p === names[count - 2] && !edited) {
        edited = true;
        writeFileSync(path.join(root, late), 'the developer was here');
      }
      return Buffer.from(`new ${p}`);
    };
    const error = await applyToFolder(root, plan, contents).then(
      () => assert.fail('the apply must stop at the edited file'),
      (e: unknown) => e,
    );
    assert.ok(SandboxError.is(error, 'workspace-changed'), String(error));
    assert.match((error as Error).message, new RegExp(`"${late.replace('.', '\\.')}"`));
    assert.equal(await fs.readFile(path.join(root, late), 'utf8'), 'the developer was here', "the developer's edit stays");
    const now = await Promise.all(names.map((n) => fs.readFile(path.join(root, n), 'utf8')));
    const written = names.filter((n, i) => now[i] === `new ${n}`);
    names.forEach((n, i) => assert.ok(now[i] === `new ${n}` || now[i] === `old ${n}` || n === late, `${n} is whole: ${now[i]}`));
    assert.match((error as Error).message, new RegExp(`${written.length} change\\(s\\) were applied before that`), 'the count is what was written');
    const leftovers = (await fs.readdir(root, { recursive: true })).filter((name) => String(name).includes('agent-sandbox'));
    assert.deepEqual(leftovers, [], 'no temp files remain');
  });

  test('a write that fails at its rename (a directory in the way) stops the writes: none starts after it, none is half-written, no temp file is left', async () => {
    const count = 200;
    const names = Array.from({ length: count }, (_, i) => `f${String(i).padStart(3, '0')}.txt`);
    await writeTree(root, Object.fromEntries(names.slice(1).map((n) => [n, `old ${n}`])));
    const plan: ApplyPlan = {
      operations: names.map((n) => ({ kind: 'write' as const, path: n, hash: sha256(`new ${n}`) })),
      conflicts: [],
      skipped: [],
    };
    // The first file's name became a directory after the plan: its staged content cannot be renamed there.
    await fs.mkdir(path.join(root, names[0]));
    await assert.rejects(
      applyToFolder(root, plan, (p) => Buffer.from(`new ${p}`)),
      (e) => SandboxError.is(e, 'internal') && /a directory is in the way/.test((e as Error).message),
    );
    assert.ok((await fs.lstat(path.join(root, names[0]))).isDirectory());
    const now = await Promise.all(names.slice(1).map((n) => fs.readFile(path.join(root, n), 'utf8')));
    names.slice(1).forEach((n, i) => assert.ok(now[i] === `new ${n}` || now[i] === `old ${n}`, `${n} is whole: ${now[i]}`));
    assert.equal(now[now.length - 1], `old ${names[count - 1]}`, 'no write started after the failure (the last is far behind the ones in flight)');
    const leftovers = (await fs.readdir(root, { recursive: true })).filter((name) => String(name).includes('agent-sandbox'));
    assert.deepEqual(leftovers, [], 'no temp files remain');
  });
});
