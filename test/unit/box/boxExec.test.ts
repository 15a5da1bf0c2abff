import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { KILL_TREE_SCRIPT, OOM_COUNT_SCRIPT, resolveBoxCwd } from '../../../src/core/box/boxExec';
import { truncationMarker } from '../../../src/core/box/boxRun';
import { SandboxError } from '../../../src/core/errors';

suite('unit: box exec helpers', () => {
  test('cwd resolves inside /workspace', () => {
    assert.equal(resolveBoxCwd(undefined), '/workspace');
    assert.equal(resolveBoxCwd(''), '/workspace');
    assert.equal(resolveBoxCwd('.'), '/workspace');
    assert.equal(resolveBoxCwd('src/app'), '/workspace/src/app');
    assert.equal(resolveBoxCwd('src\\app'), '/workspace/src/app');
    assert.equal(resolveBoxCwd('a/../b'), '/workspace/b');
    assert.equal(resolveBoxCwd('/workspace/x'), '/workspace/x');
  });

  test('cwd outside /workspace is refused', () => {
    for (const cwd of ['..', '../x', '/etc', '/workspace/..', '/workspacex', 'a/../../b', 'x\0y']) {
      assert.throws(
        () => resolveBoxCwd(cwd),
        (error: unknown) => SandboxError.is(error, 'path-outside-workspace'),
        cwd,
      );
    }
  });

  test('the truncation marker is a visible line naming the limit', () => {
    assert.equal(truncationMarker(1024 * 1024), '\n[agent-sandbox: output truncated after 1024 KiB]\n');
    assert.equal(truncationMarker(1500), '\n[agent-sandbox: output truncated after 1500 bytes]\n');
  });

  test('the in-box scripts are valid POSIX shell', () => {
    // The box runs them with its own /bin/sh; here `sh -n` (syntax check only) guards against typos.
    for (const script of [KILL_TREE_SCRIPT, OOM_COUNT_SCRIPT]) {
      const result = spawnSync('sh', ['-n', '-c', script], { encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
    }
  });
});
