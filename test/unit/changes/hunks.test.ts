import * as assert from 'node:assert/strict';
import { acceptHunk, computeHunks, HUNK_LIMITS, rejectHunk, splitLines, type Hunk } from '../../../src/core/changes/hunks';

/** The hunks of a pair that must split. */
function hunksOf(base: string, proposal: string): Hunk[] {
  const split = computeHunks(base, proposal);
  assert.equal(split.wholeFileOnly, undefined);
  return split.hunks!;
}

suite('hunks', () => {
  const base = 'a\nb\nc\nd\ne\nf\ng\n';
  const proposal = 'a\nB\nc\nd\ne\nf\nG\nh\n';

  test('splitLines keeps terminators and a last line without one', () => {
    assert.deepEqual(splitLines('x\ny'), ['x\n', 'y']);
    assert.deepEqual(splitLines('x\r\ny\n'), ['x\r\n', 'y\n']);
    assert.deepEqual(splitLines(''), []);
  });

  test('two separate edits are two hunks with base and proposal positions', () => {
    const hunks = hunksOf(base, proposal);
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
    const [first, second] = hunksOf(base, proposal);
    const half = acceptHunk(base, proposal, first);
    assert.equal(half, 'a\nB\nc\nd\ne\nf\ng\n');
    const [rest] = hunksOf(half, proposal);
    assert.equal(acceptHunk(half, proposal, rest), proposal);
    const partly = rejectHunk(base, proposal, second);
    assert.equal(partly, 'a\nB\nc\nd\ne\nf\ng\n');
    assert.equal(rejectHunk(base, partly, hunksOf(base, partly)[0]), base);
  });

  test('pure insertions and deletions, at the start and the end, without a final newline', () => {
    const from = 'one\ntwo';
    const to = 'zero\none\n';
    const hunks = hunksOf(from, to);
    let text = from;
    for (const hunk of [...hunks].reverse()) text = acceptHunk(text, to, hunk);
    assert.equal(text, to);
    let back = to;
    for (const hunk of [...hunks].reverse()) back = rejectHunk(from, back, hunk);
    assert.equal(back, from);
  });

  test('identical texts have no hunks', () => {
    assert.deepEqual(hunksOf(base, base), []);
  });

  test('a file over the size limit is decided whole, without diffing, and says why', () => {
    const big = 'x\n'.repeat(1.5 * HUNK_LIMITS.maxBytes);
    const split = computeHunks(big, `${big}y\n`);
    assert.equal(split.hunks, undefined);
    assert.match(split.wholeFileOnly ?? '', /over 1 MiB \(3 MiB\), too large to split into hunks/);
  });

  test('a pathological diff under the size limit gives up within its time budget instead of stalling the host', () => {
    // Every line differs: Myers' diff is quadratic here (~60k x 60k steps, minutes unbounded), yet both sides
    // stay under the size limit. The mocha timeout fails this test if the bound is missing.
    const lines = (prefix: string) => Array.from({ length: 60_000 }, (_, i) => `${prefix}${i}\n`).join('');
    const from = lines('a');
    const to = lines('b');
    assert.ok(Buffer.byteLength(to) < HUNK_LIMITS.maxBytes);
    const split = computeHunks(from, to);
    assert.equal(split.hunks, undefined);
    assert.match(split.wholeFileOnly ?? '', /too scattered to split into hunks within 250 ms/);
  });
});
