import * as assert from 'node:assert/strict';
import type { ChangeEntry } from '../../../src/shared/protocol';
import { planApply } from '../../../src/core/apply/applyPlan';
import type { Manifest, ManifestEntry } from '../../../src/core/workspace/manifest';
import { sha256 } from '../../../src/core/workspace/workspaceScan';

function file(path: string, content: string, mode = 0o644): ManifestEntry {
  return { path, type: 'file', mode, size: content.length, hash: sha256(content) };
}
function dir(path: string, mode = 0o755): ManifestEntry {
  return { path, type: 'directory', mode, size: 0 };
}
function manifest(...entries: ManifestEntry[]): Manifest {
  return new Map(entries.map((e) => [e.path, e]));
}
function change(path: string, kind: ChangeEntry['kind'], extra: Partial<ChangeEntry> = {}): ChangeEntry {
  return { path, kind, type: 'file', binary: false, flags: [], ...extra };
}

suite('applyPlan', () => {
  const baseline = manifest(dir('src'), file('src/a.ts', 'a'), file('src/b.ts', 'b'), file('old.ts', 'o'), dir('gone'), file('gone/x', 'x'), file('script.sh', 's'));

  test('plans every kind in a safe order', () => {
    const changes: ChangeEntry[] = [
      change('src/a.ts', 'modified', { hash: sha256('A'), mode: 0o644 }),
      change('new/deep/file.ts', 'added', { hash: sha256('n'), mode: 0o600 }),
      change('moved/old.ts', 'renamed', { fromPath: 'old.ts', hash: sha256('o'), mode: 0o644 }),
      change('gone', 'deleted', { type: 'directory' }),
      change('gone/x', 'deleted'),
      change('script.sh', 'mode', { mode: 0o755, flags: [] }),
      change('link', 'added', { type: 'symlink', linkTarget: 'src/a.ts' }),
      change('empty', 'added', { type: 'directory', mode: 0o700 }),
    ];
    const plan = planApply({ baseline, changes, current: baseline });
    assert.deepEqual(plan.conflicts, []);
    assert.deepEqual(plan.skipped, []);
    assert.deepEqual(
      plan.operations.map((op) => `${op.kind} ${op.fromPath ? `${op.fromPath} -> ` : ''}${op.path}${op.implied ? ' (implied)' : ''}`),
      [
        'delete gone/x',
        'mkdir empty',
        'mkdir moved (implied)',
        'mkdir new (implied)',
        'mkdir new/deep (implied)',
        'rename old.ts -> moved/old.ts',
        'delete gone',
        'symlink link',
        'write new/deep/file.ts',
        'write src/a.ts',
        'chmod script.sh',
      ],
    );
    const write = plan.operations.find((op) => op.path === 'src/a.ts')!;
    assert.equal(write.hash, sha256('A'));
    assert.equal(plan.operations.find((op) => op.path === 'empty')!.mode, 0o700);
    assert.equal(plan.operations.find((op) => op.path === 'link')!.linkTarget, 'src/a.ts');
  });

  test('a path the developer changed since the baseline is a conflict, never an operation', () => {
    const current = manifest(
      dir('src'),
      file('src/a.ts', 'edited by the developer'),
      dir('src/b.ts'),
      file('created.ts', 'mine'),
      file('script.sh', 's', 0o600),
      dir('gone'),
      file('gone/x', 'x'),
    );
    const changes: ChangeEntry[] = [
      change('src/a.ts', 'modified', { hash: sha256('A') }),
      change('src/b.ts', 'modified', { hash: sha256('B') }),
      change('created.ts', 'added', { hash: sha256('box') }),
      change('script.sh', 'mode', { mode: 0o755 }),
      change('moved.ts', 'renamed', { fromPath: 'old.ts', hash: sha256('o') }),
      change('gone/x', 'deleted'),
    ];
    const plan = planApply({ baseline, changes, current });
    assert.deepEqual(plan.conflicts.map((c) => c.path), ['created.ts', 'moved.ts', 'script.sh', 'src/a.ts', 'src/b.ts']);
    assert.match(plan.conflicts.find((c) => c.path === 'moved.ts')!.reason, /old\.ts.*deleted/);
    assert.match(plan.conflicts.find((c) => c.path === 'src/b.ts')!.reason, /became a directory/);
    assert.deepEqual(plan.operations.map((op) => `${op.kind} ${op.path}`), ['delete gone/x']);
  });

  test('.git is always skipped; flagged changes need approval; selection narrows', () => {
    const changes: ChangeEntry[] = [
      change('.git/config', 'modified', { flags: ['git-internal'], hash: sha256('c') }),
      change('Makefile', 'added', { flags: ['host-executed'], hash: sha256('m') }),
      change('tool', 'added', { flags: ['newly-executable'], hash: sha256('t'), mode: 0o755 }),
      change('src/b.ts', 'modified', { hash: sha256('B') }),
    ];
    const unapproved = planApply({ baseline, changes, current: baseline });
    assert.deepEqual(unapproved.skipped.map((s) => s.path), ['.git/config', 'Makefile', 'tool']);
    assert.match(unapproved.skipped[0].reason, /never applied/);
    assert.match(unapproved.skipped[1].reason, /host-executed/);
    assert.deepEqual(unapproved.operations.map((op) => op.path), ['src/b.ts']);

    const approved = planApply({ baseline, changes, current: baseline, approveFlagged: ['.git/config', 'Makefile', 'tool'] });
    assert.deepEqual(approved.skipped.map((s) => s.path), ['.git/config']);
    assert.deepEqual(approved.operations.map((op) => op.path), ['Makefile', 'src/b.ts', 'tool']);

    const selected = planApply({ baseline, changes, current: baseline, selected: ['src/b.ts'] });
    assert.deepEqual(selected.operations.map((op) => op.path), ['src/b.ts']);
    assert.deepEqual(selected.skipped, []);
  });

  test('a type change deletes the old entry before creating the new one', () => {
    const base = manifest(file('x', 'file'), dir('d'), file('d/inner', 'i'));
    const changes: ChangeEntry[] = [
      change('x', 'modified', { type: 'directory', mode: 0o755 }),
      change('x/child', 'added', { hash: sha256('c') }),
      change('d', 'modified', { type: 'file', hash: sha256('now a file'), mode: 0o644 }),
      change('d/inner', 'deleted'),
    ];
    const plan = planApply({ baseline: base, changes, current: base });
    assert.deepEqual(plan.operations.map((op) => `${op.kind} ${op.path}`), ['delete d/inner', 'delete x', 'mkdir x', 'delete d', 'write d', 'write x/child']);
  });
});
