// The MCP endpoint is a door into the box (and its pending review): only the user who runs the engine server
// may open it. Another local user (uid 1000 here; the security tier runs as root) is refused by the operating
// system at connect; the control shows the same connect succeeding when the directory and socket are opened up.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { McpListenRequest } from '../../src/shared/protocol';
import { startEngineServer, stopEngineServer, type EngineServerProcess } from '../builders/engineServer';

const OTHER_UID = 1000;

/** Tries to connect to `socketPath` as another user; returns `connected` or the errno code. */
function connectAs(uid: number, socketPath: string): string {
  const probe = `process.setgid(${uid}); process.setuid(${uid});
    const s = require('net').connect(${JSON.stringify(socketPath)});
    s.on('connect', () => { process.stdout.write('connected'); process.exit(0); });
    s.on('error', (e) => { process.stdout.write(e.code); process.exit(0); });`;
  const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

suite('security: the MCP endpoint — only its user reaches the box through it', function () {
  this.timeout(60_000);
  let root: string;
  let server: EngineServerProcess;
  let socketPath: string;

  suiteSetup(async function () {
    if (process.getuid?.() !== 0) throw new Error('the security tier runs as root: it needs to act as another user');
    root = mkdtempSync(path.join(os.tmpdir(), 'as-mcp-sec-'));
    chmodSync(root, 0o755);
    server = await startEngineServer({
      box: { image: 'agent-sandbox-test/busybox' },
      env: { ...process.env, AGENT_SANDBOX_MCP_DIR: path.join(root, 'sockets') },
    });
    ({ socketPath } = await server.connection.sendRequest(McpListenRequest.type, { folder: path.join(root, 'work') }));
  });

  suiteTeardown(async () => {
    await stopEngineServer(server);
    rmSync(root, { recursive: true, force: true });
  });

  test('another local user cannot connect to the socket (EACCES); control: with the directory and socket opened up, the same user connects', () => {
    assert.equal(connectAs(OTHER_UID, socketPath), 'EACCES');
    chmodSync(path.dirname(socketPath), 0o755);
    chmodSync(socketPath, 0o666);
    try {
      assert.equal(connectAs(OTHER_UID, socketPath), 'connected');
    } finally {
      chmodSync(path.dirname(socketPath), 0o700);
      chmodSync(socketPath, 0o600);
    }
  });
});
