import * as assert from 'node:assert/strict';
import { forEachBounded } from '../../../src/core/util/concurrency';

const tick = (ms = 1) => new Promise<void>((resolve) => setTimeout(resolve, ms));

suite('forEachBounded', () => {
  test('visits every item once, never more than the limit at a time', async () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const seen: number[] = [];
    let inFlight = 0;
    let peak = 0;
    await forEachBounded(items, 4, async (item, index) => {
      assert.equal(item, index);
      inFlight++;
      peak = Math.max(peak, inFlight);
      await tick(item % 3);
      seen.push(item);
      inFlight--;
    });
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      items,
    );
    assert.equal(peak, 4);
  });

  test('after a failure no new item starts, running ones finish, and the first failure is thrown', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    await assert.rejects(
      forEachBounded(
        Array.from({ length: 20 }, (_, i) => i),
        3,
        async (item) => {
          started.push(item);
          if (item === 1) throw new Error('first');
          if (item === 2) {
            await tick(5);
            throw new Error('second');
          }
          await tick(10);
          finished.push(item);
        },
      ),
      /first/,
    );
    // 0, 1, 2 start together; 1 fails at once, so nothing after the first three starts.
    assert.deepEqual(started, [0, 1, 2]);
    // 0 was running when 1 failed and was still waited for.
    assert.deepEqual(finished, [0]);
  });

  test('no items, no calls; a limit below 1 still runs one at a time', async () => {
    let calls = 0;
    await forEachBounded([], 8, async () => void calls++);
    assert.equal(calls, 0);
    let inFlight = 0;
    await forEachBounded([1, 2, 3], 0, async () => {
      assert.equal(++inFlight, 1);
      await tick();
      inFlight--;
      calls++;
    });
    assert.equal(calls, 3);
  });
});
