import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HistoryRecord } from '../../../src/core/history/historyRecord';
import { HISTORY_FILE, HistoryStore, ROTATED_HISTORY_FILE } from '../../../src/core/history/historyStore';

const DAY = 24 * 60 * 60 * 1000;

function record(id: string, startedAt: number, extra: Partial<HistoryRecord> = {}): HistoryRecord {
  return { id, folder: '/ws', source: 'command', command: `echo ${id}`, startedAt, outcome: 'running', files: [], ...extra };
}

suite('History store', () => {
  let dir: string;
  const big = { maxSizeBytes: 16 * 1024 * 1024, maxAgeMs: 0 };

  setup(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-history-'));
  });

  teardown(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const lines = (file = HISTORY_FILE) => fs.readFileSync(path.join(dir, file), 'utf8').split('\n').filter(Boolean);

  test('appends one JSON line per put and lists records newest first', async () => {
    const store = await HistoryStore.open({ dir, ...big });
    await store.put(record('a', 1000));
    await store.put(record('b', 2000));
    await store.put({ ...record('a', 1000), outcome: 'exited', exitCode: 0, endedAt: 1500 });
    assert.deepEqual(
      store.records().map((r) => r.id),
      ['b', 'a'],
    );
    assert.equal(store.get('a')?.outcome, 'exited');
    const written = lines().map((l) => JSON.parse(l) as HistoryRecord);
    assert.deepEqual(
      written.map((r) => [r.id, r.outcome]),
      [
        ['a', 'running'],
        ['b', 'running'],
        ['a', 'exited'],
      ],
      'updates are appended, never edited in place',
    );
  });

  test('a new store on the same folder reloads what was written (the last line per id wins)', async () => {
    const first = await HistoryStore.open({ dir, ...big });
    await first.put(record('a', 1000));
    await first.put({ ...record('a', 1000), outcome: 'exited', exitCode: 3, endedAt: 1200 });
    await first.put(record('b', 2000, { outcome: 'timeout', exitCode: null }));
    const second = await HistoryStore.open({ dir, ...big });
    assert.deepEqual(second.records(), first.records());
    assert.equal(second.get('a')?.exitCode, 3);
  });

  test('a run that never ended is reloaded as interrupted', async () => {
    const first = await HistoryStore.open({ dir, ...big });
    await first.put(record('a', 1000));
    const second = await HistoryStore.open({ dir, ...big });
    assert.equal(second.get('a')?.outcome, 'interrupted');
  });

  test('a torn last line (crash mid-write) is skipped, and the next record starts on a line of its own', async () => {
    const first = await HistoryStore.open({ dir, ...big });
    await first.put(record('a', 1000));
    await first.put(record('b', 2000));
    const full = JSON.stringify(record('c', 3000));
    fs.appendFileSync(path.join(dir, HISTORY_FILE), full.slice(0, full.length - 7));

    const second = await HistoryStore.open({ dir, ...big });
    assert.equal(second.skippedLines, 1);
    assert.deepEqual(
      second.records().map((r) => r.id),
      ['b', 'a'],
    );
    await second.put(record('d', 4000));

    const third = await HistoryStore.open({ dir, ...big });
    assert.deepEqual(
      third.records().map((r) => r.id),
      ['d', 'b', 'a'],
    );
    assert.equal(third.skippedLines, 1, 'only the torn line is lost');
    assert.ok(lines().at(-1)?.startsWith('{"id":"d"'), 'the new record was not glued onto the torn one');
  });

  test('lines that are not records (garbage, other JSON) are skipped, never fatal', async () => {
    fs.writeFileSync(path.join(dir, HISTORY_FILE), `not json\n{"hello":1}\n\u0000\u0000\n${JSON.stringify(record('ok', 5))}\n`);
    const store = await HistoryStore.open({ dir, ...big });
    assert.deepEqual(
      store.records().map((r) => r.id),
      ['ok'],
    );
    assert.equal(store.skippedLines, 3);
  });

  test('rotates at half the size limit; the total stays within it and the newest records survive', async () => {
    const maxSizeBytes = 8 * 1024;
    const store = await HistoryStore.open({ dir, maxSizeBytes, maxAgeMs: 0 });
    const padding = 'x'.repeat(400);
    for (let i = 0; i < 60; i++) await store.put(record(`r${i}`, 1000 + i, { command: `echo ${i} ${padding}` }));
    const current = fs.statSync(path.join(dir, HISTORY_FILE)).size;
    const rotated = fs.statSync(path.join(dir, ROTATED_HISTORY_FILE)).size;
    assert.ok(current <= maxSizeBytes / 2 && rotated <= maxSizeBytes / 2, `files are ${current} and ${rotated} bytes`);
    const ids = store.records().map((r) => r.id);
    assert.equal(ids[0], 'r59');
    assert.ok(!ids.includes('r0'), 'the oldest records were rotated out');
    assert.ok(ids.length >= 10, `kept ${ids.length}`);
    const reloaded = await HistoryStore.open({ dir, maxSizeBytes, maxAgeMs: 0 });
    assert.deepEqual(
      reloaded.records().map((r) => r.id),
      ids,
      'what is in memory is what is on disk',
    );
  });

  test('a record updated after a rotation keeps its newest version', async () => {
    const store = await HistoryStore.open({ dir, maxSizeBytes: 4096, maxAgeMs: 0 });
    await store.put(record('long', 1));
    for (let i = 0; i < 12; i++) await store.put(record(`f${i}`, 10 + i, { command: 'y'.repeat(150) }));
    await store.put({ ...record('long', 1), outcome: 'exited', exitCode: 0 });
    const reloaded = await HistoryStore.open({ dir, maxSizeBytes: 4096, maxAgeMs: 0 });
    assert.equal(reloaded.get('long')?.outcome, 'exited');
  });

  test('records older than the age limit are dropped on open and the file is compacted', async () => {
    const now = 100 * DAY;
    const first = await HistoryStore.open({ dir, ...big, now: () => now });
    await first.put(record('old', now - 40 * DAY, { outcome: 'exited', exitCode: 0 }));
    await first.put(record('new', now - 1 * DAY, { outcome: 'exited', exitCode: 0 }));
    const second = await HistoryStore.open({ dir, maxSizeBytes: big.maxSizeBytes, maxAgeMs: 30 * DAY, now: () => now });
    assert.deepEqual(
      second.records().map((r) => r.id),
      ['new'],
    );
    assert.deepEqual(
      lines().map((l) => (JSON.parse(l) as HistoryRecord).id),
      ['new'],
      'the expired record is gone from disk',
    );
  });

  test('clear empties memory and both files', async () => {
    const store = await HistoryStore.open({ dir, maxSizeBytes: 2048, maxAgeMs: 0 });
    for (let i = 0; i < 10; i++) await store.put(record(`r${i}`, i, { command: 'z'.repeat(200) }));
    assert.ok(fs.existsSync(path.join(dir, ROTATED_HISTORY_FILE)));
    await store.clear();
    assert.deepEqual(store.records(), []);
    assert.ok(!fs.existsSync(path.join(dir, ROTATED_HISTORY_FILE)));
    assert.deepEqual((await HistoryStore.open({ dir, maxSizeBytes: 2048, maxAgeMs: 0 })).records(), []);
  });

  test('concurrent puts are written in call order', async () => {
    const store = await HistoryStore.open({ dir, ...big });
    await Promise.all([
      store.put(record('a', 1)),
      store.put({ ...record('a', 1), outcome: 'oom' }),
      store.put({ ...record('a', 1), outcome: 'cancelled' }),
    ]);
    assert.equal((await HistoryStore.open({ dir, ...big })).get('a')?.outcome, 'cancelled');
  });
});
