// The real Claude Code CLI, started outside VS Code with the configuration "Connect an External Agent…" wrote,
// acts only through the box's MCP tools (its own tools off); its change shows in this window's review and history
// and reaches the workspace only when accepted. How the CLI runs (a loopback-only network namespace, the
// Messages-API stand-in beside it): test/engine/claudeCodeOnHost.ts.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeSet } from '../../../src/shared/protocol';
import type { ApplyOutcome } from '../../../src/host/review/applyChanges';
import { cachedClaudeBinary, mcpToolName, runClaudeOnHost } from '../../engine/claudeCodeOnHost';
import { until } from './polling';

const extensionId = 'agent-sandbox.agent-sandbox';
const FILE = 'from-claude-code.txt';
const CONTENT = "written by Claude Code through the window's box\n";
const FINAL_TEXT = 'Done: one file written in the box.';

suite("MCP: the real Claude Code CLI acts in the window's box through the configuration Connect wrote", function () {
  this.timeout(240_000);
  let folder: string;
  let workDir: string;

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'as-host-claude-mcp-'));
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    for (const rel of ['.mcp.json', FILE]) fs.rmSync(path.join(folder, rel), { force: true });
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  test('its writeFile call is a pending change in the review and an MCP run of claude-code in the history; accepting it writes the workspace', async () => {
    const binary = cachedClaudeBinary();
    const written = (await vscode.commands.executeCommand('agentSandbox.connectAgent', { client: 'claude', folder, confirm: true })) as vscode.Uri;
    const run = await runClaudeOnHost({
      binary,
      workDir,
      cwd: folder,
      mcpConfig: written.fsPath,
      script: [{ tool: { name: mcpToolName('agentSandbox_writeFile'), input: { path: FILE, content: CONTENT } } }, { text: FINAL_TEXT }],
      extraArgs: ['--tools', ''],
    });
    assert.equal(run.status, 0, `claude failed: ${run.stdout}\n${run.stderr}`);
    assert.equal(run.stdout.trim(), FINAL_TEXT);
    const answered = run.requests.filter((r) => r.turn === 1);
    assert.match(
      answered[0]?.toolResults?.[0] ?? '',
      new RegExp(`Wrote ${FILE.replace(/\./g, '\\.')}`),
      JSON.stringify(run.requests.map((r) => r.toolResults)),
    );
    assert.ok(!fs.existsSync(path.join(folder, FILE)), 'nothing reaches the workspace before review');

    await until('the change in the review', async () => {
      const pending = (await vscode.commands.executeCommand('agentSandbox.review.pending', folder)) as ChangeSet | undefined;
      return pending?.changes.some((c) => c.path === FILE) ? true : undefined;
    });
    const target = path.join(workDir, 'history.json');
    const record = await until('the run in the history', async () => {
      const exported = (await vscode.commands.executeCommand('agentSandbox.history.export', { path: target })) as {
        records: { source: string; agent?: string; command: string }[];
      };
      return exported.records.find((r) => r.command === `write ${FILE}`);
    });
    assert.equal(record.source, 'mcp');
    assert.equal(record.agent, 'claude-code');

    const outcome = (await vscode.commands.executeCommand('agentSandbox.review.accept', { folder, paths: [FILE] })) as ApplyOutcome;
    assert.ok(outcome, 'accept returned nothing');
    assert.equal(fs.readFileSync(path.join(folder, FILE), 'utf8'), CONTENT);
  });
});
