import * as assert from 'node:assert/strict';
import { countLineChanges, countLines, LINE_COUNT_MAX_BYTES } from '../../../src/core/history/lineCounts';

suite('History line counts', () => {
  test('counts added and removed lines', () => {
    assert.deepEqual(countLineChanges('a\nb\nc\n', 'a\nB\nc\nd\n'), { added: 2, removed: 1 });
    assert.deepEqual(countLineChanges('', 'x\ny'), { added: 2, removed: 0 });
    assert.deepEqual(countLineChanges('x\ny\n', ''), { added: 0, removed: 2 });
    assert.deepEqual(countLineChanges('same\n', 'same\n'), { added: 0, removed: 0 });
  });

  test('files above the cap are not counted', () => {
    assert.equal(countLineChanges('a'.repeat(LINE_COUNT_MAX_BYTES + 1), 'b'), undefined);
  });

  test('countLines counts a last line without a newline', () => {
    assert.deepEqual([countLines(''), countLines('a'), countLines('a\n'), countLines('a\nb')], [0, 1, 1, 2]);
  });
});
