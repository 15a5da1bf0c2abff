import * as assert from 'node:assert/strict';
import type { Connection } from 'vscode-languageserver/node';
import { startServer } from '../../../src/server/main';
import { ExecRequest, FileOpRequest, PlanApplyRequest, TerminalInputNotification, TerminalResizeNotification } from '../../../src/shared/protocol';
import { notificationNamespaces, requestNamespaces } from '../../protocolMessages';

type Handler = (...args: unknown[]) => unknown;

/** Just enough of a vscode-languageserver connection to see what `startServer` registers. */
function fakeConnection() {
  const requests = new Map<unknown, Handler>();
  const notifications = new Map<unknown, Handler>();
  const logged: string[] = [];
  const connection = {
    console: { log: (line: string) => logged.push(line) },
    sendNotification: () => Promise.resolve(),
    onInitialize: () => undefined,
    onShutdown: () => undefined,
    onExit: () => undefined,
    onRequest: (method: unknown, handler: Handler) => requests.set(method, handler),
    onNotification: (method: unknown, handler: Handler) => notifications.set(method, handler),
  };
  return { connection: connection as unknown as Connection, requests, notifications, logged };
}

const token = { isCancellationRequested: false, onCancellationRequested: () => ({ dispose: () => undefined }) };

suite('protocol params schemas', () => {
  test('every request in protocol.ts declares the schema of its params', () => {
    const requests = requestNamespaces();
    assert.ok(requests.length >= 19, `found only ${requests.map((r) => r.name)}`);
    for (const request of requests) {
      assert.equal(typeof request.params?.check, 'function', `${request.name} has no params schema: add \`export const params\` to its namespace`);
    }
  });

  test('the server registers every request by method behind the check: null params never reach the service', async () => {
    const { connection, requests } = fakeConnection();
    const service = startServer(connection);
    try {
      for (const request of requestNamespaces()) {
        const handler = requests.get(request.method);
        assert.ok(handler, `${request.method} has no handler registered by method name`);
        // Requests without params (checkEngine, listCaches: null is none) refuse a number. Nothing here contacts Docker.
        const bad = request.params?.check(null, '') === undefined ? 5 : null;
        await assert.rejects(
          Promise.resolve().then(() => handler(bad, token)),
          (error: { code?: number; data?: { reason?: string; field?: string } }) =>
            error.code === -32602 && error.data?.reason === 'invalid-params' && error.data.field === '',
          `${request.method} with ${bad}`,
        );
      }
    } finally {
      service.dispose();
    }
  });

  test('notifications the server receives are checked too; a bad one is logged and dropped', () => {
    const { connection, notifications, logged } = fakeConnection();
    const service = startServer(connection);
    try {
      for (const message of [TerminalInputNotification, TerminalResizeNotification]) {
        assert.equal(typeof message.params.check, 'function');
        notifications.get(message.method)!({ terminalId: 't' });
      }
      assert.equal(logged.filter((line) => line.includes('dropped sandbox/terminal')).length, 2, logged.join('\n'));
      const received = new Set(notifications.keys());
      for (const message of notificationNamespaces().filter((n) => received.has(n.method))) {
        assert.equal(typeof message.params?.check, 'function', `${message.name} is received but has no params schema`);
      }
    } finally {
      service.dispose();
    }
  });

  test('issues name the first field that does not fit, nested and in arrays', () => {
    assert.deepEqual(PlanApplyRequest.params.check({ folder: '/w', approveFlagged: true }, ''), {
      field: 'approveFlagged',
      expected: 'an array of strings',
      got: 'boolean true',
    });
    assert.equal(PlanApplyRequest.params.check({ folder: '/w', dirtyEditors: [{ path: 'a', hash: 3 }] }, '')?.field, 'dirtyEditors[0].hash');
    assert.equal(ExecRequest.params.check({ folder: '/w' }, '')?.field, 'command');
    assert.equal(ExecRequest.params.check({ folder: '/w', command: 'x', cwd: null }, '')?.got, 'null', 'null is not an absent optional field');
    assert.equal(ExecRequest.params.check({ folder: '/w', command: 'x', futureField: 1 }, ''), undefined, 'unknown fields are ignored, as in LSP');
    assert.equal(FileOpRequest.params.check({ folder: '/w', op: 'edit', path: 'a', oldString: 'x' }, '')?.field, 'newString');
    assert.match(FileOpRequest.params.check({ folder: '/w', op: 'chmod', path: 'a' }, '')?.expected ?? '', /"read" or "write"/);
    assert.equal(FileOpRequest.params.check({ folder: '/w', op: 'patch', patch: '--- a\n' }, ''), undefined);
  });
});
