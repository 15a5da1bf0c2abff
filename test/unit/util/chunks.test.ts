import * as assert from 'node:assert/strict';
import { chunkByBounds } from '../../../src/core/util/chunks';

suite('chunkByBounds: chunks under every bound, in order', () => {
  const bytes = { measure: (s: string) => s.length, max: 10 };

  test('items are kept in order and each chunk stays below the bound', () => {
    const chunks = [...chunkByBounds(['aaa', 'bbb', 'ccc', 'dd', 'e'], [bytes])];
    assert.deepEqual(chunks, [
      ['aaa', 'bbb', 'ccc'],
      ['dd', 'e'],
    ]);
  });

  test('the first bound that would be reached starts a new chunk', () => {
    const count = { measure: () => 1, max: 3 };
    assert.deepEqual([...chunkByBounds(['a', 'b', 'c', 'd', 'e'], [bytes, count])], [['a', 'b'], ['c', 'd'], ['e']]);
  });

  test('an item larger than a bound gets a chunk of its own, and nothing is lost', () => {
    const chunks = [...chunkByBounds(['x'.repeat(25), 'a', 'y'.repeat(12)], [bytes])];
    assert.deepEqual(chunks, [['x'.repeat(25)], ['a'], ['y'.repeat(12)]]);
  });

  test('no items, no chunks', () => {
    assert.deepEqual([...chunkByBounds([], [bytes])], []);
  });
});
