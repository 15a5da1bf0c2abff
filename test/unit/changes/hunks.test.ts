import * as assert from 'node:assert/strict';
import { acceptHunk, computeHunks, rejectHunk, splitLines } from '../../../src/core/changes/hunks';

suite('hunks', () => {
  const base = 'a\nb\nc\nd\ne\nf\ng\n';
  const proposal = 'a\nB\nc\nd\ne\nf\nG\nh\n';

  test('splitLines keeps terminators and a last line without one', () => {
    assert.deepEqual(splitLines('x\ny'), ['x\n', 'y']);
    assert.deepEqual(splitLines('x\r\ny\n'), ['x\r\n', 'y\n']);
    assert.deepEqual(splitLines(''), []);
  });

  test('two separate edits are two hunks with base and proposal positions', () => {
    const hunks = computeHunks(base, proposal);
    assert.equal(hunks.length, 2);
    assert.deepEqual(
      hunks.map((h) => [h.baseStart, h.baseCount, h.proposalStart, h.proposalCount, h.header]),
      [
        [1, 1, 1, 1, '@@ -2,1 +2,1 @@'],
        [6, 1, 6, 2, '@@ -7,1 +7,2 @@'],
      ],
    );
  });

  test('accepting every hunk in turn reaches the proposal; rejecting every hunk reaches the base', () => {
    const [first, second] = computeHunks(base, proposal);
    const half = acceptHunk(base, proposal, first);
    assert.equal(half, 'a\nB\nc\nd\ne\nf\ng\n');
    const [rest] = computeHunks(half, proposal);
    assert.equal(acceptHunk(half, proposal, rest), proposal);
    const partly = rejectHunk(base, proposal, second);
    assert.equal(partly, 'a\nB\nc\nd\ne\nf\ng\n');
    assert.equal(rejectHunk(base, partly, computeHunks(base, partly)[0]), base);
  });

  test('pure insertions and deletions, at the start and the end, without a final newline', () => {
    const from = 'one\ntwo';
    const to = 'zero\none\n';
    const hunks = computeHunks(from, to);
    let text = from;
    for (const hunk of [...hunks].reverse()) text = acceptHunk(text, to, hunk);
    assert.equal(text, to);
    let back = to;
    for (const hunk of [...hunks].reverse()) back = rejectHunk(from, back, hunk);
    assert.equal(back, from);
  });

  test('identical texts have no hunks', () => {
    assert.deepEqual(computeHunks(base, base), []);
  });
});
