import * as assert from 'node:assert/strict';
import type { EgressAttempt } from '../../../src/shared/protocol';
import type { HistoryRecord } from '../../../src/core/history/historyRecord';
import { egressLine, egressSearchText, hostDetail, runEgress, summarizeAttempts } from '../../../src/core/history/egressSummary';
import { filterRuns } from '../../../src/webview/history/runFilter';

const T0 = Date.parse('2026-12-07T10:00:00.000Z');
let seq = 0;

/** One gateway record, allowed by default, `at` milliseconds after T0. */
function attempt(host: string, extra: Partial<EgressAttempt> & { at?: number } = {}): EgressAttempt {
  const { at = 1_000, ...rest } = extra;
  return {
    seq: ++seq,
    kind: 'connect',
    method: 'CONNECT',
    host,
    port: 443,
    decision: 'allowed',
    reason: 'allowlisted',
    detail: '',
    bytesUp: 100,
    bytesDown: 1000,
    start: new Date(T0 + at).toISOString(),
    end: new Date(T0 + at + 50).toISOString(),
    ...rest,
  };
}

const denied = (host: string, extra: Partial<EgressAttempt> = {}) =>
  attempt(host, { decision: 'denied', reason: 'not-allowlisted', bytesUp: 0, bytesDown: 0, ...extra });

suite('unit: egress summary of a run (history and review)', () => {
  test('attempts are summed per host and port: counts by decision, reasons once each, bytes; most attempts first', () => {
    const summary = summarizeAttempts([
      ...Array.from({ length: 12 }, () => attempt('registry.npmjs.org')),
      denied('evil.example'),
      denied('evil.example', { reason: 'offline-run' }),
      denied('evil.example'),
      attempt('api.test', { port: 80, kind: 'http', method: 'GET' }),
      attempt('broken.test', { decision: 'failed', reason: 'resolve-failed', bytesDown: 0, bytesUp: 0 }),
    ]);
    assert.deepEqual(
      summary.map((s) => [s.host, s.port, s.allowed, s.denied, s.failed, s.reasons, s.bytesUp, s.bytesDown]),
      [
        ['registry.npmjs.org', 443, 12, 0, 0, [], 1200, 12000],
        ['evil.example', 443, 0, 3, 0, ['not-allowlisted', 'offline-run'], 0, 0],
        ['api.test', 80, 1, 0, 0, [], 100, 1000],
        ['broken.test', 443, 0, 0, 1, ['resolve-failed'], 0, 0],
      ],
    );
    assert.equal(hostDetail(summary[1]!), 'evil.example: 3 denied (not in the allowlist, an offline run was running) · ↑ 0 B ↓ 0 B');
    assert.equal(hostDetail(summary[0]!), 'registry.npmjs.org: 12 allowed · ↑ 1.2 KiB ↓ 11.7 KiB');
  });

  test('a run gets the attempts that named it; attempts naming no run go apart, only those that started while it ran', () => {
    const attempts = [
      attempt('registry.npmjs.org', { runId: 'r1' }),
      denied('evil.example', { runId: 'r1' }),
      attempt('registry.npmjs.org', { runId: 'r2' }),
      attempt('sneaky.test', { at: 2_000 }),
      attempt('before.test', { at: -5_000 }),
      attempt('after.test', { at: 60_000 }),
    ];
    const egress = runEgress(attempts, { id: 'r1', startedAt: T0, endedAt: T0 + 10_000 });
    // One attempt each: equal counts are in host order.
    assert.deepEqual(
      egress?.hosts.map((s) => [s.host, s.allowed, s.denied]),
      [
        ['evil.example', 0, 1],
        ['registry.npmjs.org', 1, 0],
      ],
    );
    assert.deepEqual(
      egress?.unattributed?.map((s) => s.host),
      ['sneaky.test'],
    );
    // Nothing named it and nothing else happened while it ran: no summary at all.
    assert.equal(runEgress(attempts, { id: 'r9', startedAt: T0 + 20_000, endedAt: T0 + 30_000 }), undefined);
    assert.deepEqual(runEgress(attempts, { id: 'r2', startedAt: T0 + 20_000, endedAt: T0 + 30_000 })?.unattributed, undefined);
  });

  test('the short line says what was contacted and denied, names three hosts and counts the rest', () => {
    const line = (attempts: EgressAttempt[]) => egressLine(runEgress(attempts, { id: 'r', startedAt: T0, endedAt: T0 + 10_000 }));
    assert.equal(
      line([...Array.from({ length: 12 }, () => attempt('registry.npmjs.org', { runId: 'r' })), denied('evil.example', { runId: 'r' })]),
      'contacted registry.npmjs.org ×12 · denied evil.example ×1',
    );
    assert.equal(
      line(['a.test', 'b.test', 'b.test', 'c.test', 'd.test', 'e.test'].map((h) => attempt(h, { runId: 'r' }))),
      'contacted b.test ×2, a.test ×1, c.test ×1 and 2 more',
    );
    assert.equal(
      line([attempt('api.test', { runId: 'r', port: 8080, decision: 'failed', reason: 'connect-failed' }), attempt('x.test')]),
      'failed api.test:8080 ×1 · 1 more from the box naming no run',
    );
    assert.equal(egressLine(undefined), '');
  });

  test('the history filter finds runs by a host they contacted or were denied', () => {
    const base: Omit<HistoryRecord, 'id' | 'command'> = { folder: '/w', source: 'command', startedAt: T0, outcome: 'exited', exitCode: 0, files: [] };
    const npm: HistoryRecord = {
      ...base,
      id: 'a',
      command: 'npm ci',
      egress: runEgress([attempt('registry.npmjs.org', { runId: 'a' }), denied('evil.example', { runId: 'a' })], {
        id: 'a',
        startedAt: T0,
        endedAt: T0 + 10_000,
      }),
    };
    const tests: HistoryRecord = { ...base, id: 'b', command: 'npm test' };
    assert.deepEqual(
      filterRuns([npm, tests], { text: 'evil.example', outcome: 'all', source: 'all' }).map((r) => r.id),
      ['a'],
    );
    assert.deepEqual(
      filterRuns([npm, tests], { text: 'npmjs', outcome: 'all', source: 'all' }).map((r) => r.id),
      ['a'],
    );
    assert.deepEqual(
      filterRuns([npm, tests], { text: 'npm', outcome: 'all', source: 'all' }).map((r) => r.id),
      ['a', 'b'],
    );
    assert.equal(egressSearchText(npm.egress), 'evil.example\nregistry.npmjs.org');
  });
});
