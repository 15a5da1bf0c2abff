import * as assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SandboxError } from '../../../src/core/errors';
import {
  checkRelative,
  ensureParentDirectories,
  guardedAbsolute,
  isInside,
  symlinkStaysInside,
  toSafeRelative,
} from '../../../src/core/workspace/pathGuard';
import type { TreeLookup } from '../../../src/core/workspace/pathGuard';
import { makeTempDir, removeDir } from '../../builders/trees';

suite('pathGuard', () => {
  test('toSafeRelative normalises plain names and refuses unsafe ones with a reason', () => {
    assert.equal(toSafeRelative('a/b.txt'), 'a/b.txt');
    assert.equal(toSafeRelative('./a//b/'), 'a/b');
    assert.equal(toSafeRelative('/etc/passwd'), 'absolute-path');
    assert.equal(toSafeRelative('C:/x'), 'absolute-path');
    assert.equal(toSafeRelative('../x'), 'parent-traversal');
    assert.equal(toSafeRelative('a/../../x'), 'parent-traversal');
    assert.equal(toSafeRelative('a/../b'), 'parent-traversal');
    assert.equal(toSafeRelative(''), 'invalid-name');
    assert.equal(toSafeRelative('./'), 'invalid-name');
    assert.equal(toSafeRelative('a\0b'), 'invalid-name');
    assert.equal(toSafeRelative('a\\..\\b'), 'invalid-name');
    assert.equal(toSafeRelative('...dots'), '...dots');
  });

  test('checkRelative tells a file named like a reason apart from a refusal', () => {
    assert.deepEqual(checkRelative('fifo'), { ok: true, path: 'fifo' });
    assert.deepEqual(checkRelative('../fifo'), { ok: false, reason: 'parent-traversal' });
  });

  test('isInside is lexical containment', () => {
    assert.equal(isInside('/w', '/w'), true);
    assert.equal(isInside('/w', '/w/a/b'), true);
    assert.equal(isInside('/w', '/w/..x'), true);
    assert.equal(isInside('/w', '/w/../x'), false);
    assert.equal(isInside('/w', '/wx'), false);
  });

  test('symlinkStaysInside follows links in the tree like the kernel would', () => {
    const tree = new Map<string, { type: 'file' | 'directory' | 'symlink'; linkTarget?: string }>([
      ['sub', { type: 'directory' }],
      ['sub/up', { type: 'symlink', linkTarget: '..' }],
      ['sub/deep', { type: 'symlink', linkTarget: '../a/b' }],
      ['loop1', { type: 'symlink', linkTarget: 'loop2' }],
      ['loop2', { type: 'symlink', linkTarget: 'loop1' }],
      ['abs', { type: 'symlink', linkTarget: '/etc' }],
    ]);
    const lookup: TreeLookup = (p) => tree.get(p);
    assert.equal(symlinkStaysInside('sub/l', '../file', lookup), true);
    assert.equal(symlinkStaysInside('sub/l', '../../file', lookup), false);
    assert.equal(symlinkStaysInside('l', '/etc/passwd', lookup), false);
    // Lexically "sub/up/../x" is "sub/x", but sub/up is the root, so ".." leaves it.
    assert.equal(symlinkStaysInside('sub/l', 'up/../x', lookup), false);
    // sub/deep is a/b: "sub/deep/../.." is the root, inside, although lexically it looks like "..".
    assert.equal(symlinkStaysInside('sub/l', 'deep/../..', lookup), true);
    assert.equal(symlinkStaysInside('l', 'loop1', lookup), false);
    assert.equal(symlinkStaysInside('l', 'abs/passwd', lookup), false);
    assert.equal(symlinkStaysInside('l', 'missing/../x', lookup), true);
  });

  test('guardedAbsolute refuses a symlinked parent and a file parent; ensureParentDirectories creates real dirs', async () => {
    const root = await makeTempDir('guard');
    const outside = await makeTempDir('guard-outside');
    try {
      await fs.symlink(outside, path.join(root, 'link'));
      await fs.writeFile(path.join(root, 'file'), 'x');
      await assert.rejects(guardedAbsolute(root, 'link/x'), (e) => SandboxError.is(e, 'path-outside-workspace'));
      await assert.rejects(guardedAbsolute(root, 'file/x'), (e) => SandboxError.is(e, 'path-outside-workspace'));
      await assert.rejects(guardedAbsolute(root, '../x'), (e) => SandboxError.is(e, 'path-outside-workspace'));
      await assert.rejects(guardedAbsolute(root, './a'), (e) => SandboxError.is(e, 'path-outside-workspace'));
      assert.equal(await guardedAbsolute(root, 'new/dir/x'), path.join(root, 'new', 'dir', 'x'));
      await ensureParentDirectories(root, 'new/dir/x');
      assert.ok((await fs.lstat(path.join(root, 'new', 'dir'))).isDirectory());
      await assert.rejects(ensureParentDirectories(root, 'link/x/y'), (e) => SandboxError.is(e, 'path-outside-workspace'));
      assert.deepEqual(await fs.readdir(outside), []);
    } finally {
      await removeDir(root);
      await removeDir(outside);
    }
  });
});
