import * as assert from 'node:assert/strict';
import type { ChangeSet, ExecResult, FileOpRequest } from '../../../src/shared/protocol';
import { SandboxError } from '../../../src/core/errors';
import { ToolCallError, runTool, type ToolEngine, type ToolRunEnd, type ToolRunStart } from '../../../src/core/tools/toolRunner';

const empty: ChangeSet = { folder: '/w', changes: [], refused: [], ignoredCount: 0 };
const added: ChangeSet = { ...empty, changes: [{ path: 'a.txt', kind: 'added', type: 'file', binary: false, flags: [], mode: 0o644, hash: 'h' }] };

/** A fake engine behind the runner's interface: records file ops, fails as told. */
function fakeEngine(options: { fail?: unknown; content?: string } = {}): ToolEngine & { ops: FileOpRequest.Params[] } {
  const ops: FileOpRequest.Params[] = [];
  return {
    ops,
    ensureBox: async () => undefined,
    collect: async () => (ops.some((o) => o.op === 'write') ? added : empty),
    collectAfterRun: async () => empty,
    exec: async () => ({ outcome: 'exited', exitCode: 0 }) as ExecResult,
    fileOp: async (params) => {
      ops.push(params);
      if (options.fail) throw options.fail;
      return { content: options.content };
    },
  };
}

async function call(name: string, input: unknown, engine: ToolEngine, signal = new AbortController().signal) {
  const started: ToolRunStart[] = [];
  const ended: ToolRunEnd[] = [];
  const outcome = runTool({
    name,
    input,
    folder: '/w',
    runId: 'r1',
    signal,
    engine,
    onStarted: (s) => started.push(s),
    onEnded: (e) => ended.push(e),
  });
  return { outcome, started, ended };
}

suite('Tool runner: one implementation of the tools for VS Code and MCP', () => {
  test('a write runs, is recorded as "write <path>", and is followed by a collect for the review', async () => {
    const engine = fakeEngine();
    const { outcome, started, ended } = await call('agentSandbox_writeFile', { path: 'a.txt', content: 'hi' }, engine);
    const result = await outcome;
    assert.deepEqual(engine.ops, [{ folder: '/w', op: 'write', path: 'a.txt', content: 'hi' }]);
    assert.match(result.text, /^Wrote a\.txt \(2 bytes\) in the sandbox box\..*\nAll pending changes in the box: 1 added\.$/s);
    assert.deepEqual(
      started.map((s) => [s.runId, s.command]),
      [['r1', 'write a.txt']],
    );
    assert.equal(ended[0].changeSet, added);
  });

  test('bad input is an input error and nothing starts', async () => {
    const engine = fakeEngine();
    for (const [name, input, pattern] of [
      ['agentSandbox_nope', {}, /There is no tool "agentSandbox_nope"/],
      ['agentSandbox_writeFile', { path: 'a' }, /"content" is required/],
      ['agentSandbox_readFile', { path: '' }, /"path" must not be empty/],
    ] as const) {
      const { outcome, started } = await call(name, input, engine);
      await assert.rejects(outcome, (e: unknown) => ToolCallError.is(e) && e.kind === 'input' && pattern.test(e.message));
      assert.equal(started.length, 0);
    }
    assert.equal(engine.ops.length, 0);
  });

  test('engine failures become the text the model reads, with who can fix them; the run ends with the error', async () => {
    const unreachable = new SandboxError('engine-unreachable', 'Docker engine not reachable at unix:///x.sock: is it running?');
    const { outcome, ended } = await call('agentSandbox_readFile', { path: 'a.txt' }, fakeEngine({ fail: unreachable }));
    await assert.rejects(
      outcome,
      (e: unknown) =>
        ToolCallError.is(e) &&
        e.kind === 'failed' &&
        e.reason === 'engine-unreachable' &&
        /is it running\? The sandbox cannot run until the developer fixes this \(command "Agent Sandbox: Check Docker Engine"\)\.$/.test(e.message),
    );
    assert.equal(ended[0].error?.reason, 'engine-unreachable');
    // Over JSON-RPC the reason travels in `data`: the same text.
    const overWire = Object.assign(new Error('Invalid value.'), { data: { reason: 'invalid-setting', setting: 'agentSandbox.image' } });
    await assert.rejects(
      (await call('agentSandbox_readFile', { path: 'a.txt' }, fakeEngine({ fail: overWire }))).outcome,
      /Invalid value\. Ask the developer to correct the setting agentSandbox\.image\./,
    );
  });

  test('an aborted call is cancelled, not failed', async () => {
    const controller = new AbortController();
    controller.abort();
    const { outcome } = await call('agentSandbox_readFile', { path: 'a.txt' }, fakeEngine({ fail: new Error('aborted') }), controller.signal);
    await assert.rejects(outcome, (e: unknown) => ToolCallError.is(e) && e.kind === 'cancelled');
  });
});
