import * as assert from 'node:assert/strict';
import { startedRecord } from '../../../src/core/history/runRecords';
import { SOURCE_FILTERS, filterRuns, sourceLabel } from '../../../src/webview/history/runFilter';

suite('MCP: runs of MCP clients in the history panel', () => {
  const keep = (text: string) => text;
  const mcp = startedRecord({ runId: 'm', folder: '/w', source: 'mcp', agent: 'claude-code', command: 'write a.txt', startedAt: 1 }, keep);
  const tool = startedRecord(
    { runId: 't', folder: '/w', source: 'tool', agent: 'agentSandbox_writeFile', command: 'write a.txt', startedAt: 2 },
    keep,
  );

  test("they are labelled with the client's name and have a filter of their own", () => {
    assert.equal(sourceLabel(mcp), 'MCP · claude-code');
    assert.ok(SOURCE_FILTERS.some((f) => f.value === 'mcp' && f.label === 'MCP clients'));
    assert.deepEqual(
      filterRuns([mcp, tool], { text: '', outcome: 'all', source: 'mcp' }).map((r) => r.id),
      ['m'],
    );
    assert.deepEqual(
      filterRuns([mcp, tool], { text: 'claude', outcome: 'all', source: 'all' }).map((r) => r.id),
      ['m'],
    );
  });
});
