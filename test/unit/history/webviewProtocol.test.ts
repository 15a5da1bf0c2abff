import * as assert from 'node:assert/strict';
import { OpenDiffCommand, ReadyCommand, RecordsNotification } from '../../../src/webview/history/protocol';

suite('History webview protocol', () => {
  test('each message type recognises its own messages only', () => {
    const ready = ReadyCommand.message({});
    const diff = OpenDiffCommand.message({ runId: 'r', path: 'a.txt' });
    assert.deepEqual(diff, { method: 'history/openDiff', params: { runId: 'r', path: 'a.txt' } });
    assert.equal(ReadyCommand.is(ready), true);
    assert.equal(ReadyCommand.is(diff), false);
    assert.equal(OpenDiffCommand.is(diff), true);
    for (const junk of [undefined, null, 'history/ready', 42, {}, { method: 'history/records' }]) {
      assert.equal(ReadyCommand.is(junk), false, JSON.stringify(junk));
    }
    assert.equal(RecordsNotification.is({ method: 'history/records', params: { records: [] } }), true);
  });
});
