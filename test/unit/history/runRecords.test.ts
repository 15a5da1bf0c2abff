import * as assert from 'node:assert/strict';
import type { ChangeEntry, ExecResult } from '../../../src/shared/protocol';
import { REDACTED, redactSecrets } from '../../../src/core/history/redaction';
import { changedByRun, endedRecord, fileChange, recordDecision, startedRecord } from '../../../src/core/history/runRecords';
import { decisionSummary, filterRuns, outcomeGroup } from '../../../src/webview/history/runFilter';
import { change } from '../../builders/entries';

const secret = 'tok-1234567890';
const redact = (text: string) => redactSecrets(text, [secret]);

function result(extra: Partial<ExecResult> = {}): ExecResult {
  return {
    runId: 'r1',
    outcome: 'exited',
    exitCode: 0,
    stdout: `hello ${secret}\n`,
    stderr: '',
    truncated: false,
    durationMs: 1234,
    image: { reference: 'agent-sandbox-test/node', id: 'sha256:abc' },
    policy: { network: 'none', user: '1000:1000', memoryMiB: 512, cpus: 1, pidsLimit: 128, runtime: 'runc', envNames: ['MY_TOKEN'] },
    caughtUp: [],
    conflicts: [],
    ...extra,
  };
}

const entry = (path: string, extra: Partial<ChangeEntry> = {}) => change(path, 'modified', { hash: `h-${path}`, ...extra });

suite('History records from run events', () => {
  const start = { runId: 'r1', folder: '/ws', source: 'command' as const, command: `curl -H "x: ${secret}" localhost`, startedAt: 1000 };

  test('a started run is recorded as running, with the command redacted', () => {
    const record = startedRecord(start, redact);
    assert.equal(record.outcome, 'running');
    assert.equal(record.command, `curl -H "x: ${REDACTED}" localhost`);
    assert.deepEqual(record.files, []);
  });

  test('an ended run gets outcome, exit code, output (redacted), image, runtime and policy', () => {
    const record = endedRecord(startedRecord(start, redact), { endedAt: 3000, result: result() }, redact);
    assert.equal(record.outcome, 'exited');
    assert.equal(record.exitCode, 0);
    assert.equal(record.durationMs, 1234);
    assert.equal(record.endedAt, 3000);
    assert.equal(record.output?.stdout, `hello ${REDACTED}\n`);
    assert.deepEqual(record.image, { reference: 'agent-sandbox-test/node', id: 'sha256:abc' });
    assert.equal(record.runtime, 'runc');
    assert.deepEqual(record.policy?.envNames, ['MY_TOKEN']);
  });

  test('timeouts and OOM keep their outcome; errors before the run map by reason', () => {
    assert.equal(
      endedRecord(startedRecord(start, redact), { endedAt: 2, result: result({ outcome: 'timeout', exitCode: null }) }, redact).outcome,
      'timeout',
    );
    assert.equal(endedRecord(startedRecord(start, redact), { endedAt: 2, result: result({ outcome: 'oom', exitCode: 137 }) }, redact).outcome, 'oom');
    const cancelled = endedRecord(startedRecord(start, redact), { endedAt: 2, error: { reason: 'cancelled', message: 'stopped' } }, redact);
    assert.deepEqual([cancelled.outcome, cancelled.exitCode, cancelled.error?.reason], ['cancelled', null, 'cancelled']);
    const failed = endedRecord(
      startedRecord(start, redact),
      { endedAt: 2, error: { reason: 'engine-unreachable', message: `no engine ${secret}` } },
      redact,
    );
    assert.equal(failed.outcome, 'engine-error');
    assert.equal(failed.error?.message, `no engine ${REDACTED}`);
  });

  test('output beyond the cap is cut and marked truncated', () => {
    const record = endedRecord(startedRecord(start, redact), { endedAt: 2, result: result({ stdout: 'x'.repeat(10_000) }) }, redact, 1000);
    assert.ok(record.output!.truncated);
    assert.ok(Buffer.byteLength(record.output!.stdout) < 1100);
  });

  test('a run lists only what it changed, not what earlier runs left pending', () => {
    const before = new Map([
      ['a.txt', entry('a.txt')],
      ['b.txt', entry('b.txt')],
    ]);
    const after = [entry('a.txt'), entry('b.txt', { hash: 'changed' }), entry('c.txt', { kind: 'added' })];
    assert.deepEqual(
      changedByRun(before, after).map((e) => e.path),
      ['b.txt', 'c.txt'],
    );
  });

  test('a decision lands on the newest run that changed the path, once per path', () => {
    const older = {
      ...startedRecord({ ...start, runId: 'old', startedAt: 1 }, redact),
      files: [fileChange(entry('a.txt')), fileChange(entry('b.txt'))],
    };
    const newer = {
      ...startedRecord({ ...start, runId: 'new', startedAt: 2 }, redact),
      files: [fileChange(entry('a.txt'), { added: 1, removed: 0 })],
    };
    const other = { ...startedRecord({ ...start, runId: 'elsewhere', folder: '/other', startedAt: 3 }, redact), files: [fileChange(entry('a.txt'))] };
    const changed = recordDecision([other, newer, older], { folder: '/ws', paths: ['a.txt', 'b.txt', 'z.txt'], decision: 'accepted', at: 99 });
    const byId = Object.fromEntries(changed.map((r) => [r.id, r]));
    assert.deepEqual(Object.keys(byId).sort(), ['new', 'old']);
    assert.deepEqual(byId.new.files[0].decisions, [{ decision: 'accepted', at: 99 }]);
    assert.deepEqual(byId.old.files.find((f) => f.path === 'b.txt')?.decisions, [{ decision: 'accepted', at: 99 }]);
    assert.deepEqual(byId.old.files.find((f) => f.path === 'a.txt')?.decisions, [], 'the older run of a.txt is not the one decided');
    assert.deepEqual(newer.files[0].decisions, [], 'the stored records are not mutated');
  });

  test('the panel filter narrows by outcome group, source and every word of the text', () => {
    const ok = endedRecord(startedRecord({ ...start, runId: 'ok', command: 'npm test' }, redact), { endedAt: 2, result: result() }, redact);
    const bad = endedRecord(
      startedRecord({ ...start, runId: 'bad', command: 'npm run lint', source: 'tool' }, redact),
      { endedAt: 2, result: result({ exitCode: 2, stdout: 'lint error in src/a.ts' }) },
      redact,
    );
    assert.deepEqual([outcomeGroup(ok), outcomeGroup(bad)], ['succeeded', 'failed']);
    const all = [ok, bad];
    assert.deepEqual(
      filterRuns(all, { text: '', outcome: 'failed', source: 'all' }).map((r) => r.id),
      ['bad'],
    );
    assert.deepEqual(
      filterRuns(all, { text: '', outcome: 'all', source: 'command' }).map((r) => r.id),
      ['ok'],
    );
    assert.deepEqual(
      filterRuns(all, { text: 'NPM src/a.ts', outcome: 'all', source: 'all' }).map((r) => r.id),
      ['bad'],
    );
    assert.deepEqual(filterRuns(all, { text: 'npm', outcome: 'all', source: 'all' }).length, 2);
  });

  test('the panel words every hunk decided and a merge by hand, not only the last decision', () => {
    const file = { ...fileChange(entry('two.txt')), decisions: [] as { decision: 'accepted' | 'rejected' | 'merged'; at: number; hunk?: string }[] };
    assert.deepEqual(decisionSummary(file), { text: 'pending', className: 'pending' });
    file.decisions = [
      { decision: 'accepted', at: 1, hunk: '@@ -1,1 +1,1 @@' },
      { decision: 'rejected', at: 2, hunk: '@@ -9,1 +9,1 @@' },
    ];
    assert.deepEqual(decisionSummary(file), { text: 'hunks: 1 accepted, 1 rejected', className: 'partial', at: 2 });
    file.decisions = [
      { decision: 'rejected', at: 1 },
      { decision: 'accepted', at: 5, hunk: '@@ -1,1 +1,1 @@' },
    ];
    assert.deepEqual(decisionSummary(file), { text: 'hunks: 1 accepted', className: 'accepted', at: 5 }, 'hunks after a whole-file decision');
    file.decisions = [{ decision: 'merged', at: 7 }];
    assert.deepEqual(decisionSummary(file), { text: 'merged by hand', className: 'merged', at: 7 });
  });
});
