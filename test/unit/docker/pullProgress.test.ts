import * as assert from 'node:assert/strict';
import { formatSize, percent, PullProgress } from '../../../src/core/docker/pullProgress';

const MiB = 1024 * 1024;

suite('pull progress', () => {
  test('bytes and percent sum the layers being downloaded; a finished layer counts in full', () => {
    const tracker = new PullProgress();
    assert.deepEqual(tracker.update({ status: 'Pulling from library/node', id: '22' }), { message: '22: Pulling from library/node' });
    assert.deepEqual(tracker.update({ id: 'a', status: 'Pulling fs layer' }), { message: 'a: Pulling fs layer' });
    assert.deepEqual(tracker.update({ id: 'a', status: 'Downloading', progressDetail: { current: 10 * MiB, total: 40 * MiB } }), {
      message: 'Downloading: 10.0 MiB of 40.0 MiB (25%)',
      done: 10 * MiB,
      total: 40 * MiB,
    });
    const both = tracker.update({ id: 'b', status: 'Downloading', progressDetail: { current: 0, total: 10 * MiB } });
    assert.deepEqual([both?.done, both?.total, both?.message], [10 * MiB, 50 * MiB, 'Downloading: 10.0 MiB of 50.0 MiB (20%)']);
    // "Download complete" carries no progressDetail: the layer's bytes are all in.
    const b = tracker.update({ id: 'b', status: 'Download complete' });
    assert.deepEqual([b?.done, b?.total], [20 * MiB, 50 * MiB]);
    // Extraction events report extraction bytes, which are not download bytes: they never lower or double the sum.
    const a = tracker.update({ id: 'a', status: 'Extracting', progressDetail: { current: 1, total: 99 * MiB } });
    assert.deepEqual([a?.done, a?.total, a?.message], [50 * MiB, 50 * MiB, 'Extracting layers: 50.0 MiB of 50.0 MiB (100%)']);
    assert.equal(tracker.error, undefined);
  });

  test('an error event is remembered and reported by the caller, not shown as progress', () => {
    const tracker = new PullProgress();
    tracker.update({ id: 'a', status: 'Downloading', progressDetail: { current: 1, total: 2 } });
    assert.equal(tracker.update({ error: 'short', errorDetail: { message: 'filesystem layer verification failed' } }), undefined);
    assert.equal(tracker.error, 'filesystem layer verification failed');
    tracker.update({ error: 'a later one' });
    assert.equal(tracker.error, 'filesystem layer verification failed', 'the first error is the cause');
    assert.equal(new PullProgress().update({ error: 'manifest unknown' }), undefined);
  });

  test('layers that already exist have no size and do not count; current never exceeds total', () => {
    const tracker = new PullProgress();
    assert.deepEqual(tracker.update({ id: 'x', status: 'Already exists' }), { message: 'x: Already exists' });
    const over = tracker.update({ id: 'y', status: 'Downloading', progressDetail: { current: 300, total: 200 } });
    assert.deepEqual([over?.done, over?.total], [200, 200]);
  });

  test('sizes and percentages read well and stay in range', () => {
    assert.equal(formatSize(20), '20 B');
    assert.equal(formatSize(1536), '2 KiB');
    assert.equal(formatSize(12.34 * MiB), '12.3 MiB');
    assert.equal(formatSize(3 * 1024 * MiB), '3.00 GiB');
    assert.equal(percent(999, 1000), '99%', 'not 100% before the end');
    assert.equal(percent(5, 0), '0%');
    assert.equal(percent(7, 5), '100%');
  });
});
