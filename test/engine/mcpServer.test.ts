// The MCP server, driven by the official SDK's own client: over the engine server's private socket (as the
// extension's server serves it) and over stdio through `agent-sandbox mcp` (dist/cli.js), on a real engine.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { McpListenRequest, McpRunNotification, PendingChangesRequest } from '../../src/shared/protocol';
import { sandboxToolDefinitions } from '../../src/core/tools/toolDefinitions';
import { LineTransport } from '../../src/mcp/lineTransport';
import { connectPrivateSocket, mcpSocketPath } from '../../src/mcp/privateSocket';
import { startEngineServer, stopEngineServer, type EngineServerProcess } from '../builders/engineServer';
import { removeCachesUnder } from './cacheHarness';

const cliJs = path.resolve(__dirname, '..', '..', '..', 'dist', 'cli.js');
const IMAGE = 'agent-sandbox-test/busybox';

function textOf(result: unknown): string {
  const content = (result as CallToolResult).content;
  return content.map((part) => (part.type === 'text' ? part.text : '')).join('');
}

/** An SDK client connected to a socket through the same line framing as stdio. */
async function socketClient(socketPath: string, name: string): Promise<{ client: Client; socket: net.Socket }> {
  const socket = await connectPrivateSocket(socketPath);
  const client = new Client({ name, version: '1.2.3' });
  await client.connect(new LineTransport(socket));
  return { client, socket };
}

/** Asserts the call is refused with an MCP protocol error of `code` whose message matches. */
async function refused(call: Promise<unknown>, code: number, pattern: RegExp): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof McpError, `an McpError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  });
}

function boxesOf(folder: string): string[] {
  const r = spawnSync('docker', ['ps', '-aq', '--filter', `label=dev.agent-sandbox.folder=${folder}`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

suite('MCP server: the sandbox tools for any MCP client (real engine)', function () {
  this.timeout(120_000);
  let root: string;
  let folder: string;
  let mcpDir: string;
  let env: NodeJS.ProcessEnv;
  let server: EngineServerProcess;
  const runs: McpRunNotification.Params[] = [];

  suiteSetup(async () => {
    for (const file of [cliJs]) if (!existsSync(file)) throw new Error(`${file} is missing: run "npm run build" first`);
    root = mkdtempSync(path.join(os.tmpdir(), 'as-mcp-'));
    folder = path.join(root, 'work');
    mcpDir = path.join(root, 'sockets');
    mkdirSync(path.join(folder, 'src'), { recursive: true });
    writeFileSync(path.join(folder, 'src', 'app.txt'), 'alpha\nbeta\ngamma\n');
    writeFileSync(path.join(folder, 'old.txt'), 'old\n');
    env = { ...process.env, AGENT_SANDBOX_MCP_DIR: mcpDir, AGENT_SANDBOX_STORAGE: path.join(root, 'storage'), AGENT_SANDBOX_IMAGE: IMAGE };
    server = await startEngineServer({
      box: { image: IMAGE, idleTimeoutMinutes: 0 },
      env,
      storagePath: path.join(root, 'server-storage'),
      beforeListen: (connection) => connection.onNotification(McpRunNotification.method, (run: McpRunNotification.Params) => void runs.push(run)),
    });
  });

  suiteTeardown(async () => {
    await stopEngineServer(server);
    for (const id of boxesOf(folder)) spawnSync('docker', ['rm', '-f', id]);
    removeCachesUnder(root);
    rmSync(root, { recursive: true, force: true });
  });

  test("the socket is private: its directory 0700 and the socket 0600, both the user's", async () => {
    const { socketPath } = await server.connection.sendRequest(McpListenRequest.type, { folder });
    assert.equal(socketPath, mcpSocketPath(folder, env));
    assert.equal(statSync(mcpDir).mode & 0o777, 0o700);
    assert.equal(statSync(socketPath).mode & 0o777, 0o600);
    assert.equal(statSync(socketPath).uid, process.getuid!());
    // Asking again serves the same socket.
    assert.equal((await server.connection.sendRequest(McpListenRequest.type, { folder })).socketPath, socketPath);
  });

  test("over the socket: each tool runs in the folder's box, its changes pending in the same review, recorded with the client's name", async () => {
    const { socketPath } = await server.connection.sendRequest(McpListenRequest.type, { folder });
    const { client } = await socketClient(socketPath, 'test-agent');
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(
        tools.map((t) => [t.name, t.description, t.inputSchema]),
        sandboxToolDefinitions.map((d) => [d.name, d.modelDescription, d.inputSchema]),
      );
      assert.match(client.getInstructions() ?? '', /never say they are applied/);

      const call = async (name: string, args: Record<string, unknown>) => {
        const result = await client.callTool({ name, arguments: args });
        assert.notEqual(result.isError, true, `${name} failed: ${textOf(result)}`);
        return textOf(result);
      };
      assert.match(await call('agentSandbox_readFile', { path: 'src/app.txt', startLine: 2, endLine: 2 }), /^src\/app\.txt, lines 2-2 of 3:\nbeta$/);
      assert.match(await call('agentSandbox_listDirectory', { path: '' }), /holds 2 entries.*\nold\.txt\nsrc\//s);
      assert.match(
        await call('agentSandbox_writeFile', { path: 'src/new.txt', content: 'fresh\n' }),
        /Wrote src\/new\.txt \(6 bytes\).*All pending changes in the box: 1 added\./s,
      );
      assert.match(await call('agentSandbox_editFile', { path: 'src/app.txt', oldString: 'beta', newString: 'BETA' }), /1 replacement\(s\)/);
      const patch = '--- a/src/app.txt\n+++ b/src/app.txt\n@@ -1,3 +1,3 @@\n alpha\n BETA\n-gamma\n+GAMMA\n';
      assert.match(await call('agentSandbox_applyPatch', { patch }), /Applied the patch to 1 file\(s\).*- modified src\/app\.txt/s);
      assert.match(await call('agentSandbox_deleteFile', { path: 'old.txt' }), /Deleted old\.txt/);
      const run = await call('agentSandbox_runCommand', { command: 'cat src/app.txt; echo made > made.txt; exit 4', network: 'none' });
      assert.match(run, /^\$ cat src\/app\.txt; echo made > made\.txt; exit 4\nExited with code 4/);
      assert.match(run, /stdout:\nalpha\nBETA\nGAMMA/);
      assert.match(run, /Files this run changed \(1 added\):\n- added made\.txt/);
      assert.match(await call('agentSandbox_pendingChanges', {}), /: 2 added, 1 modified, 1 deleted\./);

      // The same review the extension shows: the engine server's pending changes hold them.
      const pending = await server.connection.sendRequest(PendingChangesRequest.type, { folder });
      assert.deepEqual(pending.changes.map((c) => `${c.kind} ${c.path}`).sort(), [
        'added made.txt',
        'added src/new.txt',
        'deleted old.txt',
        'modified src/app.txt',
      ]);
      // Nothing reached the folder.
      assert.equal(readFileSync(path.join(folder, 'src', 'app.txt'), 'utf8'), 'alpha\nbeta\ngamma\n');
      assert.ok(!existsSync(path.join(folder, 'made.txt')));

      const started = runs.filter((r) => r.event === 'started');
      assert.ok(started.length >= 8, `8 runs notified, got ${started.length}`);
      assert.ok(started.every((r) => r.agent === 'test-agent' && r.folder === folder));
      const write = started.find((r) => r.tool === 'agentSandbox_writeFile');
      assert.equal(write?.command, 'write src/new.txt');
      const ended = runs.find((r) => r.event === 'ended' && r.runId === started.find((s) => s.tool === 'agentSandbox_runCommand')?.runId);
      assert.equal(ended?.result?.exitCode, 4);
      assert.ok(ended?.changeSet?.changes.some((c) => c.path === 'made.txt'));
    } finally {
      await client.close();
    }
  });

  test('bad calls get MCP errors naming the cause: unknown tool, bad arguments, oversized input; engine refusals are error results', async () => {
    const { socketPath } = await server.connection.sendRequest(McpListenRequest.type, { folder });
    const { client } = await socketClient(socketPath, 'test-agent');
    try {
      await refused(
        client.callTool({ name: 'agentSandbox_format', arguments: {} }),
        ErrorCode.InvalidParams,
        /There is no tool "agentSandbox_format"\. The sandbox tools are: agentSandbox_runCommand/,
      );
      await refused(client.callTool({ name: 'agentSandbox_readFile', arguments: {} }), ErrorCode.InvalidParams, /"path" is required/);
      await refused(
        client.callTool({ name: 'agentSandbox_readFile', arguments: { path: 7 } }),
        ErrorCode.InvalidParams,
        /"path" must be a string, got 7/,
      );
      await refused(
        client.callTool({ name: 'agentSandbox_runCommand', arguments: { command: 'true', network: 'host' } }),
        ErrorCode.InvalidParams,
        /"network" must be "none"/,
      );
      await refused(
        client.callTool({ name: 'agentSandbox_runCommand', arguments: { command: 'true', timeoutSeconds: -1 } }),
        ErrorCode.InvalidParams,
        /"timeoutSeconds" must be 0 or more/,
      );
      await refused(
        client.callTool({ name: 'agentSandbox_editFile', arguments: { path: 'a', oldString: '', newString: 'x' } }),
        ErrorCode.InvalidParams,
        /"oldString" must not be empty/,
      );
      await refused(
        client.callTool({ name: 'agentSandbox_writeFile', arguments: { path: 'big.txt', content: 'x'.repeat(9 * 1024 * 1024) } }),
        ErrorCode.InvalidParams,
        /limit is 8 MiB/,
      );

      const outside = await client.callTool({ name: 'agentSandbox_readFile', arguments: { path: '../outside.txt' } });
      assert.equal(outside.isError, true);
      assert.match(textOf(outside), /outside the workspace/);
      const escape = await client.callTool({ name: 'agentSandbox_writeFile', arguments: { path: '/etc/passwd', content: 'x' } });
      assert.equal(escape.isError, true);
      assert.match(textOf(escape), /outside the workspace|absolute/i);
      const noMatch = await client.callTool({ name: 'agentSandbox_editFile', arguments: { path: 'src/app.txt', oldString: 'zeta', newString: 'x' } });
      assert.equal(noMatch.isError, true);
      assert.match(textOf(noMatch), /not found in src\/app\.txt/);
      // The connection still works after every refusal.
      assert.match(textOf(await client.callTool({ name: 'agentSandbox_pendingChanges', arguments: {} })), /Pending changes/);
      assert.ok(!existsSync(path.join(folder, 'big.txt')));
    } finally {
      await client.close();
    }
  });

  test("a client that asks for progress gets runCommand's output as it comes", async () => {
    const { socketPath } = await server.connection.sendRequest(McpListenRequest.type, { folder });
    const { client } = await socketClient(socketPath, 'test-agent');
    try {
      const messages: string[] = [];
      const result = await client.callTool(
        { name: 'agentSandbox_runCommand', arguments: { command: 'echo first; sleep 1; echo second >&2' } },
        undefined,
        {
          onprogress: (progress) => messages.push(progress.message ?? ''),
        },
      );
      assert.match(textOf(result), /stdout:\nfirst/);
      assert.equal(messages.join(''), 'first\nsecond\n');
    } finally {
      await client.close();
    }
  });

  test('a client that disconnects mid-run cancels the run: its process tree is killed', async () => {
    const { socketPath } = await server.connection.sendRequest(McpListenRequest.type, { folder });
    const { client, socket } = await socketClient(socketPath, 'leaving-agent');
    const call = client.callTool(
      { name: 'agentSandbox_runCommand', arguments: { command: 'echo started > started.txt; sleep 60; echo late > late.txt' } },
      undefined,
      { timeout: 90_000 },
    );
    call.catch(() => undefined);
    const deadline = Date.now() + 30_000;
    let started: McpRunNotification.Params | undefined;
    while (!(started = runs.find((r) => r.event === 'started' && r.agent === 'leaving-agent')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(started, 'the run started');
    // Let the command itself begin in the box before hanging up.
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = Date.now();
    socket.destroy();
    let ended: McpRunNotification.Params | undefined;
    while (!(ended = runs.find((r) => r.event === 'ended' && r.runId === started!.runId)) && Date.now() - t0 < 30_000)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(ended, 'the run ended after the disconnect');
    assert.ok(Date.now() - t0 < 30_000);
    assert.equal(ended.result?.outcome ?? ended.error?.reason, 'cancelled');
    const ps = spawnSync('docker', ['exec', boxesOf(folder)[0], 'ps'], { encoding: 'utf8' });
    assert.doesNotMatch(ps.stdout, /sleep 60/);
  });

  test('a socket directory others can enter is refused by the server and by the bridge; so is one of another user', async () => {
    const open = path.join(root, 'open-sockets');
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    const otherFolder = path.join(root, 'other');
    mkdirSync(otherFolder);
    const openServer = await startEngineServer({ box: { image: IMAGE }, env: { ...env, AGENT_SANDBOX_MCP_DIR: open } });
    try {
      await assert.rejects(
        openServer.connection.sendRequest(McpListenRequest.type, { folder: otherFolder }),
        /has mode 755: other users could reach its MCP sockets\. Run "chmod 700/,
      );
      // Control: the same directory made private works.
      chmodSync(open, 0o700);
      const { socketPath } = await openServer.connection.sendRequest(McpListenRequest.type, { folder: otherFolder });
      const { client } = await socketClient(socketPath, 'control');
      assert.equal((await client.listTools()).tools.length, 8);
      await client.close();
      // The bridge checks before it connects: the socket is there and live, but the directory is open again.
      chmodSync(open, 0o755);
      await assert.rejects(connectPrivateSocket(socketPath), /has mode 755/);
      const bridge = spawnSync(process.execPath, [cliJs, 'mcp', '--folder', otherFolder], {
        env: { ...env, AGENT_SANDBOX_MCP_DIR: open },
        input: '',
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.notEqual(bridge.status, 0);
      assert.match(bridge.stderr, /has mode 755/);
      // A directory owned by someone else (uid 1000 here, the tests run as root) is refused even at 0700.
      if (process.getuid!() === 0) {
        chmodSync(open, 0o700);
        chownSync(open, 1000, 1000);
        await assert.rejects(connectPrivateSocket(socketPath), /belongs to user 1000, not to you \(0\)/);
        chownSync(open, 0, 0);
      }
    } finally {
      chmodSync(open, 0o700);
      await stopEngineServer(openServer);
      for (const id of boxesOf(otherFolder)) spawnSync('docker', ['rm', '-f', id]);
    }
  });

  test('over stdio, while a server serves the folder: `agent-sandbox mcp` bridges to it', async () => {
    await server.connection.sendRequest(McpListenRequest.type, { folder });
    const client = new Client({ name: 'stdio-agent', version: '0.0.1' });
    // From a subfolder: the bridge finds the socket of the nearest folder served.
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [cliJs, 'mcp'],
        cwd: path.join(folder, 'src'),
        env: env as Record<string, string>,
        stderr: 'pipe',
      }),
    );
    try {
      assert.equal((await client.listTools()).tools.length, 8);
      assert.match(
        textOf(await client.callTool({ name: 'agentSandbox_writeFile', arguments: { path: 'via-stdio.txt', content: 'x\n' } })),
        /Wrote via-stdio\.txt/,
      );
      const pending = await server.connection.sendRequest(PendingChangesRequest.type, { folder });
      assert.ok(pending.changes.some((c) => c.path === 'via-stdio.txt'));
      assert.ok(runs.some((r) => r.event === 'started' && r.agent === 'stdio-agent' && r.command === 'write via-stdio.txt'));
    } finally {
      await client.close();
    }
  });

  test("over stdio, with no server: `agent-sandbox mcp` starts its own; pending changes and history persist in the folder's storage", async () => {
    const lone = path.join(root, 'lone');
    mkdirSync(lone);
    writeFileSync(path.join(lone, 'readme.txt'), 'hi\n');
    const loneEnv = { ...env, AGENT_SANDBOX_MCP_DIR: path.join(root, 'lone-sockets'), AGENT_SANDBOX_STORAGE: path.join(root, 'lone-storage') };
    const client = new Client({ name: 'lone-agent', version: '0.0.1' });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [cliJs, 'mcp'],
      cwd: lone,
      env: loneEnv as Record<string, string>,
      stderr: 'pipe',
    });
    await client.connect(transport);
    try {
      assert.match(
        textOf(await client.callTool({ name: 'agentSandbox_editFile', arguments: { path: 'readme.txt', oldString: 'hi', newString: 'hello' } })),
        /1 replacement/,
      );
    } finally {
      await client.close();
    }
    // The bridge stopped its server (the box is gone) …
    const deadline = Date.now() + 20_000;
    while (boxesOf(lone).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(boxesOf(lone), []);
    // … and the change waits in the folder's storage, where the command line (and the extension) find it.
    const diff = spawnSync(process.execPath, [cliJs, 'diff', '--folder', lone], { env: loneEnv, encoding: 'utf8', timeout: 60_000 });
    assert.equal(diff.status, 0, diff.stderr);
    assert.match(diff.stdout, /--- a\/readme\.txt\n\+\+\+ b\/readme\.txt\n@@ .* @@\n-hi\n\+hello\n/);
    assert.equal(readFileSync(path.join(lone, 'readme.txt'), 'utf8'), 'hi\n');
    const history = spawnSync(process.execPath, [cliJs, 'history', '--json', '--folder', lone], { env: loneEnv, encoding: 'utf8' });
    const records = JSON.parse(history.stdout) as { source: string; agent?: string; command: string; outcome: string; files: { path: string }[] }[];
    const edit = records.find((r) => r.command === 'edit readme.txt');
    assert.ok(edit, history.stdout);
    assert.equal(edit.source, 'mcp');
    assert.equal(edit.agent, 'lone-agent');
    assert.deepEqual(
      edit.files.map((f) => f.path),
      ['readme.txt'],
    );
  });
});
