// An MCP client outside VS Code (the SDK's client, started with the configuration that "Connect an External
// Agent…" wrote) acts in this window's box; its change shows in the review and the history, and accepting it
// writes the workspace.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { ChangeSet } from '../../../src/shared/protocol';
import type { ApplyOutcome } from '../../../src/host/review/applyChanges';
import { until } from './polling';

const extensionId = 'agent-sandbox.agent-sandbox';

suite("MCP: an external agent acts in the window's box (real engine)", function () {
  this.timeout(180_000);
  let folder: string;
  let client: Client | undefined;

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
  });

  suiteTeardown(async () => {
    await client?.close().catch(() => undefined);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    for (const rel of ['.mcp.json', 'from-mcp.txt']) fs.rmSync(path.join(folder, rel), { force: true });
  });

  test('Connect writes the client configuration; a client started with it makes a change that is accepted in the review', async () => {
    const written = (await vscode.commands.executeCommand('agentSandbox.connectAgent', { client: 'claude', folder, confirm: true })) as vscode.Uri;
    assert.equal(written.fsPath, path.join(folder, '.mcp.json'));
    const config = JSON.parse(fs.readFileSync(written.fsPath, 'utf8')) as {
      mcpServers: Record<string, { command: string; args: string[]; env: Record<string, string> }>;
    };
    const server = config.mcpServers['agent-sandbox'];
    assert.deepEqual(server.args.slice(1), ['mcp', '--folder', folder]);

    // Outside VS Code: a separate process, as Claude Code would start it from that file.
    client = new Client({ name: 'host-test-agent', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: server.command,
        args: server.args,
        env: { ...(process.env as Record<string, string>), ...server.env },
        stderr: 'pipe',
      }),
    );
    const result = (await client.callTool({
      name: 'agentSandbox_writeFile',
      arguments: { path: 'from-mcp.txt', content: 'written by an external agent\n' },
    })) as CallToolResult;
    assert.notEqual(result.isError, true, JSON.stringify(result.content));
    assert.ok(!fs.existsSync(path.join(folder, 'from-mcp.txt')), 'nothing reaches the workspace before review');

    // The window's review shows it (the server told the host about the run).
    await until('the MCP change in the review', async () => {
      const pending = (await vscode.commands.executeCommand('agentSandbox.review.pending', folder)) as ChangeSet | undefined;
      return pending?.changes.some((c) => c.path === 'from-mcp.txt') ? true : undefined;
    });
    // The history records it as an MCP run by that client.
    const target = path.join(folder, '..', 'mcp-history.json');
    const record = await until('the MCP run in the history', async () => {
      const exported = (await vscode.commands.executeCommand('agentSandbox.history.export', { path: target })) as {
        records: { source: string; agent?: string; command: string; files: { path: string }[] }[];
      };
      return exported.records.find((r) => r.source === 'mcp' && r.command === 'write from-mcp.txt' && r.files.some((f) => f.path === 'from-mcp.txt'));
    });
    assert.equal(record.agent, 'host-test-agent');
    fs.rmSync(target, { force: true });

    const outcome = (await vscode.commands.executeCommand('agentSandbox.review.accept', { folder, paths: ['from-mcp.txt'] })) as ApplyOutcome;
    assert.ok(outcome, 'accept returned nothing');
    assert.equal(fs.readFileSync(path.join(folder, 'from-mcp.txt'), 'utf8'), 'written by an external agent\n');
    // The agent sees the decision: nothing is pending any more.
    const after = (await client.callTool({ name: 'agentSandbox_pendingChanges', arguments: {} })) as CallToolResult;
    assert.match(after.content.map((p) => (p.type === 'text' ? p.text : '')).join(''), /: no changes\./);
  });
});
