import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ResponseMessage } from 'vscode-languageserver-protocol/node';
import * as protocol from '../../src/shared/protocol';
import { startRawEngineServer, type RawEngineServer } from '../builders/engineServer';
import { requestNamespaces } from '../protocolMessages';

const IMAGE = 'agent-sandbox-test/busybox';

/** The response is `-32602 invalid params` naming `field` (`''`: the params themselves). */
function assertInvalid(response: ResponseMessage, field: string, what: string): void {
  assert.ok(response.error, `${what}: expected an error, got ${JSON.stringify(response.result)}`);
  assert.equal(response.error.code, -32602, `${what}: ${response.error.message}`);
  const data = response.error.data as protocol.ErrorData;
  assert.equal(data.reason, 'invalid-params', what);
  assert.equal(data.field, field, `${what}: ${response.error.message}`);
  if (field) assert.ok(response.error.message.includes(`"${field}"`), `${what}: the message names the field: ${response.error.message}`);
}

suite('engine server over stdio: params are checked at the boundary (JSON-RPC, real engine)', () => {
  let server: RawEngineServer;
  let folder: string;

  suiteSetup(async () => {
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-params-'));
    writeFileSync(path.join(folder, 'a.txt'), 'a\n');
    server = await startRawEngineServer({ box: { image: IMAGE, memoryMiB: 128, idleTimeoutMinutes: 0 } });
  });

  suiteTeardown(async () => {
    try {
      await server?.request(protocol.ResetRequest.method, {});
    } finally {
      server?.dispose();
      if (folder) rmSync(folder, { recursive: true, force: true });
    }
  });

  test('every request that takes params answers null params with -32602, not an internal error', async () => {
    for (const message of requestNamespaces()) {
      const response = await server.request(message.method, null);
      // Requests without params (checkEngine, followImageTag, listCaches): their schema takes null as none.
      if (message.params?.check(null, '') === undefined) {
        assert.equal(response.error, undefined, `${message.method} takes no params; null is none: ${response.error?.message}`);
        continue;
      }
      assertInvalid(response, '', `${message.method} with null`);
    }
  });

  test('every request with a required field answers {} with -32602 naming it', async () => {
    const required: Record<string, string> = {
      [protocol.ConfigureRequest.method]: 'engine',
      [protocol.EnsureBoxRequest.method]: 'folder',
      [protocol.ExecRequest.method]: 'folder',
      [protocol.CancelRunRequest.method]: 'runId',
      [protocol.CollectRequest.method]: 'folder',
      [protocol.ReadProposalRequest.method]: 'folder',
      [protocol.ReadBaseRequest.method]: 'folder',
      [protocol.ApplyRequest.method]: 'folder',
      [protocol.PlanApplyRequest.method]: 'folder',
      [protocol.MarkAppliedRequest.method]: 'folder',
      [protocol.PendingChangesRequest.method]: 'folder',
      [protocol.EgressAttemptsRequest.method]: 'folder',
      [protocol.AdvanceBaselineRequest.method]: 'folder',
      [protocol.DiscardRequest.method]: 'folder',
      [protocol.FileOpRequest.method]: 'op',
      [protocol.TerminalOpenRequest.method]: 'folder',
      [protocol.TerminalCloseRequest.method]: 'terminalId',
      [protocol.SetModelKeysRequest.method]: 'sealed',
      [protocol.McpListenRequest.method]: 'folder',
    };
    // Requests whose fields are all optional: {} is valid params.
    const allOptional = new Set<string>([
      protocol.CheckEngineRequest.method,
      protocol.FollowImageTagRequest.method,
      protocol.ListCachesRequest.method,
      // {} clears every cache on the engine: valid, and not sent here.
      protocol.ClearCachesRequest.method,
      protocol.PullImageRequest.method,
      protocol.ResetRequest.method,
    ]);
    for (const message of requestNamespaces()) {
      if (allOptional.has(message.method)) continue;
      assert.ok(required[message.method], `${message.method}: add its first required field to this test`);
      assertInvalid(await server.request(message.method, {}), required[message.method], `${message.method} with {}`);
    }
  });

  test('no-params and all-optional requests accept {} and null where the protocol allows it', async () => {
    const check = await server.request(protocol.CheckEngineRequest.method, {});
    assert.equal(check.error, undefined, check.error?.message);
    assert.equal((check.result as protocol.EngineReport).image.reference, IMAGE);
    const none = await server.request(protocol.CheckEngineRequest.method, undefined);
    assert.equal(none.error, undefined, none.error?.message);
    const reset = await server.request(protocol.ResetRequest.method, {});
    assert.equal(reset.error, undefined, reset.error?.message);
    assertInvalid(await server.request(protocol.CheckEngineRequest.method, [1, 2]), '', 'checkEngine with positional params');
  });

  test('wrong types are -32602 naming the field, and nothing runs', async () => {
    const cases: [string, unknown, string][] = [
      [protocol.PlanApplyRequest.method, { folder, approveFlagged: true }, 'approveFlagged'],
      [protocol.ApplyRequest.method, { folder, approveFlagged: true }, 'approveFlagged'],
      [protocol.ApplyRequest.method, { folder, paths: ['a.txt', 7] }, 'paths[1]'],
      [protocol.PlanApplyRequest.method, { folder, dirtyEditors: [{ path: 'a.txt' }] }, 'dirtyEditors[0].hash'],
      [protocol.ResetRequest.method, { discardPending: 'yes' }, 'discardPending'],
      [protocol.ResetRequest.method, { folder: 5 }, 'folder'],
      [protocol.CollectRequest.method, { folder: ['x'] }, 'folder'],
      [protocol.ExecRequest.method, { folder, command: 5 }, 'command'],
      [protocol.ExecRequest.method, { folder, command: 'touch ran', timeoutSeconds: -1 }, 'timeoutSeconds'],
      [protocol.ExecRequest.method, { folder, command: 'touch ran', cwd: null }, 'cwd'],
      [protocol.FileOpRequest.method, { folder, op: 'rm', path: 'a.txt' }, 'op'],
      [protocol.FileOpRequest.method, { folder, op: 'write', path: 'a.txt' }, 'content'],
      [protocol.ConfigureRequest.method, { engine: { dockerHost: 1 }, box: {} }, 'engine.dockerHost'],
      [protocol.ConfigureRequest.method, { engine: {}, box: 'big' }, 'box'],
      [protocol.TerminalOpenRequest.method, { folder, terminalId: 't', cols: '80', rows: 24 }, 'cols'],
      [protocol.PullImageRequest.method, { image: 42 }, 'image'],
      [protocol.SetModelKeysRequest.method, { sealed: { publicKey: 'k', nonce: 'n', ciphertext: 5, tag: 't' } }, 'sealed.ciphertext'],
    ];
    for (const [method, params, field] of cases) {
      assertInvalid(await server.request(method, params), field, `${method} ${JSON.stringify(params)}`);
    }
    // None of them reached the service: no box was created for the folder, so nothing ran.
    const pending = await server.request(protocol.PendingChangesRequest.method, { folder });
    assert.deepEqual((pending.result as protocol.ChangeSet).changes, []);
    const collect = await server.request(protocol.CollectRequest.method, { folder });
    assert.equal((collect.error?.data as protocol.ErrorData | undefined)?.reason, 'no-box', 'no request above created a box');
  });

  test('valid params still work after refused ones, and a bad setting keeps its own reason', async () => {
    const run = await server.request(protocol.ExecRequest.method, { folder, command: 'cat a.txt' });
    assert.equal(run.error, undefined, run.error?.message);
    assert.equal((run.result as protocol.ExecResult).stdout, 'a\n');
    const setting = await server.request(protocol.ConfigureRequest.method, { engine: {}, box: { memoryMiB: 'lots' } });
    assert.equal((setting.error?.data as protocol.ErrorData | undefined)?.reason, 'invalid-setting');
    assert.equal((setting.error?.data as protocol.ErrorData | undefined)?.setting, 'agentSandbox.memoryMiB');
  });
});
