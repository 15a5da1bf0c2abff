import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { hostPath } from '../../../src/core/workspace/hostPath';

suite('hostPath: workspace-relative to host paths', () => {
  const root = path.join(path.sep, 'work', 'ws');

  test("'' is the root; segments are joined with the host's separator", () => {
    assert.equal(hostPath(root, ''), root);
    assert.equal(hostPath(root, 'src/a b/c.txt'), path.join(root, 'src', 'a b', 'c.txt'));
  });

  test('a trailing or doubled slash adds no empty segment', () => {
    assert.equal(hostPath(root, 'src/'), path.join(root, 'src'));
    assert.equal(hostPath(root, 'src//x'), path.join(root, 'src', 'x'));
  });
});
