import * as assert from 'node:assert/strict';
import { Box } from '../../src/core/box/box';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { SandboxError } from '../../src/core/errors';
import { runFileOp, type FileOpTarget } from '../../src/core/session/fileOps';
import { connectTestEngine, removeEverythingOwnedBy, shOk, testOwnerId, testSettings } from './engineHarness';

/** Every file under /workspace as `mode uid path` plus its content, to compare the box before and after. */
async function boxState(box: Box): Promise<string> {
  return shOk(box, 'cd /workspace && find . -type f | sort | while read -r f; do stat -c "%a %u %n" "$f"; cat "$f"; done');
}

suite('engine: the patch file operation in a real box', function () {
  this.timeout(120_000);
  const ownerId = testOwnerId('patch');
  let engine: DockerEngine | undefined;
  let box: Box;
  let target: FileOpTarget;

  suiteSetup(async () => {
    engine = await connectTestEngine();
    box = await Box.create(engine, testSettings(), { folder: '/tmp/agent-sandbox-patch', ownerId });
    // The session's catch-up is not under test here: the box is the whole truth.
    target = { box, catchUp: async () => undefined };
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
  });

  setup(async () => {
    await shOk(
      box,
      [
        'cd /workspace && rm -rf ./* && mkdir -p src',
        "printf 'one\\ntwo\\nthree\\n' > src/a.txt",
        "printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod 755 run.sh",
        "printf 'old name\\n' > from.txt",
        "printf 'bye\\n' > gone.txt",
      ].join(' && '),
    );
  });

  test('one patch modifies, creates (in a new directory), renames and deletes; modes are kept', async () => {
    const patch = [
      '--- a/run.sh',
      '+++ b/run.sh',
      '@@ -1,2 +1,2 @@',
      ' #!/bin/sh',
      '-echo hi',
      '+echo hello',
      '--- /dev/null',
      '+++ b/deep/new/file.txt',
      '@@ -0,0 +1 @@',
      '+fresh',
      '--- a/from.txt',
      '+++ b/to.txt',
      '@@ -1 +1 @@',
      '-old name',
      '+new name',
      '--- a/gone.txt',
      '+++ /dev/null',
      '@@ -1 +0,0 @@',
      '-bye',
      '',
    ].join('\n');
    const result = await runFileOp(target, { folder: '/tmp/agent-sandbox-patch', op: 'patch', patch });
    assert.deepEqual(result.patched, [
      { path: 'run.sh', kind: 'modified' },
      { path: 'deep/new/file.txt', kind: 'added' },
      { path: 'to.txt', kind: 'renamed', fromPath: 'from.txt' },
      { path: 'gone.txt', kind: 'deleted' },
    ]);
    assert.equal(
      await boxState(box),
      [
        '644 1000 ./deep/new/file.txt',
        'fresh',
        '755 1000 ./run.sh',
        '#!/bin/sh',
        'echo hello',
        '644 1000 ./src/a.txt',
        'one',
        'two',
        'three',
        '644 1000 ./to.txt',
        'new name',
        '',
      ].join('\n'),
    );
    assert.equal((await shOk(box, 'stat -c %u /workspace/deep /workspace/deep/new')).trim(), '1000\n1000');
  });

  test('a patch whose second file does not fit changes nothing, not even the first file', async () => {
    const before = await boxState(box);
    const patch = [
      '--- a/src/a.txt',
      '+++ b/src/a.txt',
      '@@ -2 +2 @@',
      '-two',
      '+TWO',
      '--- a/run.sh',
      '+++ b/run.sh',
      '@@ -2 +2 @@',
      '-echo bonjour',
      '+echo x',
      '',
    ].join('\n');
    await assert.rejects(runFileOp(target, { folder: '/tmp/agent-sandbox-patch', op: 'patch', patch }), (error: unknown) => {
      assert.ok(SandboxError.is(error, 'edit-no-match'), String(error));
      assert.match(error.message, /does not apply to run\.sh: hunk 1 of 1/);
      return true;
    });
    assert.equal(await boxState(box), before);
  });

  test('malformed patches, missing targets and paths outside the workspace change nothing', async () => {
    const before = await boxState(box);
    const cases: [string, string][] = [
      ['not a patch at all\n', 'patch-malformed'],
      ['--- a/src/a.txt\n+++ b/src/a.txt\n@@ -1,2 +1,2 @@\n-one\n', 'patch-malformed'],
      ['--- a/missing.txt\n+++ b/missing.txt\n@@ -1 +1 @@\n-a\n+b\n', 'not-found'],
      ['--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-root\n+x\n', 'path-outside-workspace'],
      ['--- /dev/null\n+++ b/src/a.txt\n@@ -0,0 +1 @@\n+again\n', 'edit-no-match'],
    ];
    for (const [patch, reason] of cases) {
      await assert.rejects(runFileOp(target, { folder: '/tmp/agent-sandbox-patch', op: 'patch', patch }), (error: unknown) => {
        assert.ok(SandboxError.is(error, reason as SandboxError['reason']), `${JSON.stringify(patch)}: ${String(error)}`);
        return true;
      });
    }
    assert.equal(await boxState(box), before);
  });
});
