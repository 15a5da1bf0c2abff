import * as assert from 'node:assert/strict';
import { createTwoFilesPatch } from 'diff';
import { SandboxError } from '../../../src/core/errors';
import { applyFilePatches, parseUnifiedPatch } from '../../../src/core/session/unifiedPatch';

/** An in-memory tree the patch reads from; the test checks it is never written by a failing apply. */
function reader(files: Record<string, string>) {
  return async (path: string) => files[path];
}

async function rejectsWith(promise: Promise<unknown> | (() => unknown), reason: string, pattern: RegExp) {
  const run = typeof promise === 'function' ? async () => promise() : () => promise;
  await assert.rejects(run, (error: unknown) => {
    assert.ok(SandboxError.is(error), `expected a SandboxError, got ${String(error)}`);
    assert.equal(error.reason, reason, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

const app = 'line 1\nline 2\nline 3\nline 4\nline 5\n';

suite('unified patch: parse and apply in memory', () => {
  test('git-style two-file patch: modify one file, create another', async () => {
    const patch = [
      'diff --git a/src/app.js b/src/app.js',
      'index 1111111..2222222 100644',
      '--- a/src/app.js',
      '+++ b/src/app.js',
      '@@ -1,3 +1,3 @@',
      ' line 1',
      '-line 2',
      '+line two',
      ' line 3',
      'diff --git a/docs/new.md b/docs/new.md',
      'new file mode 100644',
      '--- /dev/null',
      '+++ b/docs/new.md',
      '@@ -0,0 +1,2 @@',
      '+# New',
      '+text',
      '',
    ].join('\n');
    const files = parseUnifiedPatch(patch);
    assert.deepEqual(
      files.map((f) => [f.kind, f.oldPath, f.newPath]),
      [
        ['modify', 'src/app.js', 'src/app.js'],
        ['add', undefined, 'docs/new.md'],
      ],
    );
    const result = await applyFilePatches(files, reader({ 'src/app.js': app }));
    assert.deepEqual(Object.fromEntries(result), {
      'src/app.js': 'line 1\nline two\nline 3\nline 4\nline 5\n',
      'docs/new.md': '# New\ntext\n',
    });
  });

  test('plain diff -u paths (no a/ b/ prefixes), deletion and rename', async () => {
    const modify = createTwoFilesPatch('notes.txt', 'notes.txt', 'a\nb\n', 'a\nB\n');
    const remove = createTwoFilesPatch('old.txt', '/dev/null', 'gone\n', '');
    const rename = createTwoFilesPatch('from.txt', 'to.txt', 'x\ny\n', 'x\nY\n');
    const files = parseUnifiedPatch(modify + remove + rename);
    assert.deepEqual(
      files.map((f) => f.kind),
      ['modify', 'delete', 'rename'],
    );
    const result = await applyFilePatches(files, reader({ 'notes.txt': 'a\nb\n', 'old.txt': 'gone\n', 'from.txt': 'x\ny\n' }));
    assert.deepEqual(Object.fromEntries(result), { 'notes.txt': 'a\nB\n', 'old.txt': null, 'from.txt': null, 'to.txt': 'x\nY\n' });
  });

  test('two sections on the same file apply in order', async () => {
    const first = createTwoFilesPatch('a/f.txt', 'b/f.txt', app, app.replace('line 1', 'one'));
    const second = createTwoFilesPatch('a/f.txt', 'b/f.txt', app.replace('line 1', 'one'), app.replace('line 1', 'one').replace('line 5', 'five'));
    const result = await applyFilePatches(parseUnifiedPatch(first + second), reader({ 'f.txt': app }));
    assert.equal(result.get('f.txt'), 'one\nline 2\nline 3\nline 4\nfive\n');
  });

  test('malformed patches are refused with patch-malformed', async () => {
    await rejectsWith(() => parseUnifiedPatch(''), 'patch-malformed', /empty/);
    await rejectsWith(() => parseUnifiedPatch('please change line 2 to "two"\n'), 'patch-malformed', /No file sections/);
    await rejectsWith(() => parseUnifiedPatch('--- a/x\n+++ b/x\n'), 'patch-malformed', /no "@@" hunks/);
    // The hunk header promises 3 old lines; the body has 1.
    await rejectsWith(() => parseUnifiedPatch('--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n-line 2\n+two\n'), 'patch-malformed', /could not be parsed/);
    await rejectsWith(() => parseUnifiedPatch('--- a/x\n+++ b/x\n@@ -1,1 +1,1 @@\n*line\n'), 'patch-malformed', /could not be parsed/);
  });

  test('a patch that does not fit changes nothing and names the file and hunk', async () => {
    const files: Record<string, string> = { 'a.txt': 'alpha\n', 'b.txt': 'beta\n' };
    const good = createTwoFilesPatch('a/a.txt', 'b/a.txt', 'alpha\n', 'ALPHA\n');
    const stale = createTwoFilesPatch('a/b.txt', 'b/b.txt', 'not what the file holds\n', 'x\n');
    await rejectsWith(applyFilePatches(parseUnifiedPatch(good + stale), reader(files)), 'edit-no-match', /does not apply to b\.txt: hunk 1 of 1/);
    assert.deepEqual(files, { 'a.txt': 'alpha\n', 'b.txt': 'beta\n' });
  });

  test('missing files, creating over an existing file, incomplete deletes', async () => {
    const modifyMissing = createTwoFilesPatch('a/nope.txt', 'b/nope.txt', 'a\n', 'b\n');
    await rejectsWith(applyFilePatches(parseUnifiedPatch(modifyMissing), reader({})), 'not-found', /nope\.txt, which does not exist/);
    const createExisting = createTwoFilesPatch('/dev/null', 'b/here.txt', '', 'new\n');
    await rejectsWith(applyFilePatches(parseUnifiedPatch(createExisting), reader({ 'here.txt': 'old\n' })), 'edit-no-match', /already exists/);
    const partialDelete = '--- a/two.txt\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-one\n';
    await rejectsWith(
      applyFilePatches(parseUnifiedPatch(partialDelete), reader({ 'two.txt': 'one\ntwo\n' })),
      'edit-no-match',
      /does not apply|does not remove all/,
    );
  });
});
