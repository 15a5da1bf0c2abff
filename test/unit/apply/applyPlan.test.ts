import * as assert from 'node:assert/strict';
import type { ChangeEntry } from '../../../src/shared/protocol';
import { planApply } from '../../../src/core/apply/applyPlan';
import { sha256 } from '../../../src/core/util/hash';
import { change, dir, file, manifest } from '../../builders/entries';

suite('applyPlan', () => {
  const baseline = manifest(
    dir('src'),
    file('src/a.ts', 'a'),
    file('src/b.ts', 'b'),
    file('old.ts', 'o'),
    dir('gone'),
    file('gone/x', 'x'),
    file('script.sh', 's'),
  );

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

  test('every operation that replaces, deletes, moves or chmods a baseline file carries the hash it must still have', () => {
    const changes: ChangeEntry[] = [
      change('src/a.ts', 'modified', { hash: sha256('A'), mode: 0o644 }),
      change('src/b.ts', 'deleted'),
      change('moved/old.ts', 'renamed', { fromPath: 'old.ts', hash: sha256('o'), mode: 0o644 }),
      change('script.sh', 'mode', { mode: 0o755 }),
      change('gone/x', 'modified', { type: 'directory', mode: 0o755 }),
      change('new.ts', 'added', { hash: sha256('n'), mode: 0o644 }),
    ];
    const plan = planApply({ baseline, changes, current: baseline });
    assert.deepEqual(
      plan.operations.filter((op) => !op.implied).map((op) => `${op.kind} ${op.path} ${op.baseHash ?? '-'}`),
      [
        'delete gone/x ' + sha256('x'),
        'delete src/b.ts ' + sha256('b'),
        'mkdir gone/x -',
        'rename moved/old.ts ' + sha256('o'),
        'write new.ts -',
        'write src/a.ts ' + sha256('a'),
        'chmod script.sh ' + sha256('s'),
      ],
    );
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
    assert.deepEqual(
      plan.conflicts.map((c) => c.path),
      ['created.ts', 'moved.ts', 'script.sh', 'src/a.ts', 'src/b.ts'],
    );
    assert.match(plan.conflicts.find((c) => c.path === 'moved.ts')!.reason, /old\.ts.*deleted/);
    assert.match(plan.conflicts.find((c) => c.path === 'src/b.ts')!.reason, /became a directory/);
    assert.deepEqual(
      plan.operations.map((op) => `${op.kind} ${op.path}`),
      ['delete gone/x'],
    );
  });

  test('.git is always skipped; flagged changes need approval; selection narrows', () => {
    const changes: ChangeEntry[] = [
      change('.git/config', 'modified', { flags: ['git-internal'], hash: sha256('c') }),
      change('Makefile', 'added', { flags: ['host-executed'], hash: sha256('m') }),
      change('tool', 'added', { flags: ['newly-executable'], hash: sha256('t'), mode: 0o755 }),
      change('src/b.ts', 'modified', { hash: sha256('B') }),
    ];
    const unapproved = planApply({ baseline, changes, current: baseline });
    assert.deepEqual(
      unapproved.skipped.map((s) => s.path),
      ['.git/config', 'Makefile', 'tool'],
    );
    assert.match(unapproved.skipped[0].reason, /never applied/);
    assert.match(unapproved.skipped[1].reason, /host-executed/);
    assert.deepEqual(
      unapproved.operations.map((op) => op.path),
      ['src/b.ts'],
    );

    const approved = planApply({ baseline, changes, current: baseline, approveFlagged: ['.git/config', 'Makefile', 'tool'] });
    assert.deepEqual(
      approved.skipped.map((s) => s.path),
      ['.git/config'],
    );
    assert.deepEqual(
      approved.operations.map((op) => op.path),
      ['Makefile', 'src/b.ts', 'tool'],
    );

    const selected = planApply({ baseline, changes, current: baseline, selected: ['src/b.ts'] });
    assert.deepEqual(
      selected.operations.map((op) => op.path),
      ['src/b.ts'],
    );
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
    assert.deepEqual(
      plan.operations.map((op) => `${op.kind} ${op.path}`),
      ['delete d/inner', 'delete x', 'mkdir x', 'delete d', 'write d', 'write x/child'],
    );
  });

  test('nothing is planned at or below an obstacle the scan left out, e.g. a symlink out of the folder', () => {
    const changes = [
      change('data/f', 'added', { hash: sha256('f') }),
      change('data', 'added', { type: 'directory' }),
      change('ok.txt', 'added', { hash: sha256('k') }),
    ];
    const plan = planApply({
      baseline,
      changes,
      current: baseline,
      obstacles: new Map([['data', 'a symbolic link to "/mnt/x", outside the folder']]),
    });
    assert.deepEqual(
      plan.operations.map((op) => `${op.kind} ${op.path}`),
      ['write ok.txt'],
    );
    assert.deepEqual(
      plan.conflicts.map((c) => c.path),
      ['data', 'data/f'],
    );
    assert.match(
      plan.conflicts[1].reason,
      /"data" is a symbolic link to "\/mnt\/x", outside the folder in the workspace; nothing is written at or through it/,
    );
  });

  test('nothing is written through a directory that became a symlink or a file since the sync; a type change in the box is fine', () => {
    const current = new Map(baseline);
    current.set('src', { path: 'src', type: 'symlink', mode: 0o777, size: 3, linkTarget: 'lib' });
    current.delete('src/a.ts');
    current.delete('src/b.ts');
    const plan = planApply({ baseline, changes: [change('src/new.ts', 'added', { hash: sha256('n') })], current });
    assert.deepEqual(plan.operations, []);
    assert.match(plan.conflicts[0].reason, /"src" became a symlink in the workspace since the box was synced; nothing is written through it/);

    // Control: the box itself turned the file script.sh into a directory with a file in it; the workspace still has the file.
    const typeChange = planApply({
      baseline,
      changes: [change('script.sh', 'modified', { type: 'directory', mode: 0o755 }), change('script.sh/inner', 'added', { hash: sha256('i') })],
      current: baseline,
    });
    assert.deepEqual(typeChange.conflicts, []);
    assert.deepEqual(
      typeChange.operations.map((op) => `${op.kind} ${op.path}`),
      ['delete script.sh', 'mkdir script.sh', 'write script.sh/inner'],
    );
  });

  test('on a case-insensitive disk a new name that differs only by case from an entry or another new name is a conflict', () => {
    const current = manifest(file('README.md', 'r'));
    const changes = [
      change('Readme.md', 'added', { hash: sha256('x') }),
      change('docs/A.md', 'added', { hash: sha256('a') }),
      change('docs/a.md', 'added', { hash: sha256('b') }),
    ];
    const insensitive = planApply({ baseline: current, changes, current, caseInsensitive: true });
    assert.deepEqual(
      insensitive.conflicts.map((c) => c.path),
      ['Readme.md', 'docs/a.md'],
    );
    assert.match(insensitive.conflicts[0].reason, /differs only by case, Unicode normalisation or trailing dots from "README\.md"/);
    assert.deepEqual(
      insensitive.operations.filter((op) => op.kind === 'write').map((op) => op.path),
      ['docs/A.md'],
    );
    // Control: a case-sensitive disk holds them side by side.
    const sensitive = planApply({ baseline: current, changes, current });
    assert.deepEqual(sensitive.conflicts, []);
    assert.deepEqual(
      sensitive.operations.filter((op) => op.kind === 'write').map((op) => op.path),
      ['Readme.md', 'docs/A.md', 'docs/a.md'],
    );
  });
});
