import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RunCommandResult } from '../../../src/host/commands/runCommand';
import type { ExportHistoryResult } from '../../../src/host/history/historyFeature';
import type { HistoryExport, HistoryRecord } from '../../../src/core/history/historyRecord';
import { DECIDED_DIR, DecidedContents } from '../../../src/core/history/decidedContents';
import { HistoryStore } from '../../../src/core/history/historyStore';
import { imageFacts } from '../../../src/core/history/imageFacts';

const extensionId = 'agent-sandbox.agent-sandbox';

suite('Run history (real engine)', function () {
  this.timeout(180_000);
  let folder: string;
  let originalApp: string;
  let exportDir: string;

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    const first = vscode.workspace.workspaceFolders?.[0];
    assert.ok(first, 'the rig opens a workspace folder');
    folder = first.uri.fsPath;
    originalApp = fs.readFileSync(path.join(folder, 'src', 'app.js'), 'utf8');
    exportDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-history-export-'));
    assert.equal(await vscode.commands.executeCommand('agentSandbox.history.clear', { confirm: false }), true);
  });

  suiteTeardown(async () => {
    // Nothing this suite left pending (the tool's file) may be restored into the next suite's box.
    await vscode.commands.executeCommand('agentSandbox.runCommand', { folder, command: 'true', decision: 'discard' });
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
    fs.rmSync(path.join(folder, 'history-made.txt'), { force: true });
    fs.writeFileSync(path.join(folder, 'src', 'app.js'), originalApp);
    fs.rmSync(exportDir, { recursive: true, force: true });
  });

  let exports = 0;
  async function exportHistory(): Promise<ExportHistoryResult> {
    const target = path.join(exportDir, `export-${++exports}.json`);
    const result = (await vscode.commands.executeCommand('agentSandbox.history.export', { path: target })) as ExportHistoryResult | undefined;
    assert.ok(result, 'agentSandbox.history.export returned nothing');
    const written = JSON.parse(fs.readFileSync(target, 'utf8')) as HistoryExport;
    assert.equal(written.format, 'agent-sandbox-run-history');
    assert.deepEqual(written.records, result.records, 'the file holds what the command returned');
    return result;
  }

  async function recordOf(runId: string): Promise<HistoryRecord> {
    const record = (await exportHistory()).records.find((r) => r.id === runId);
    assert.ok(record, `run ${runId} is not in the history`);
    return record;
  }

  async function run(command: string, extra: { decision?: 'keep' | 'apply'; timeoutSeconds?: number } = {}): Promise<RunCommandResult> {
    const result = (await vscode.commands.executeCommand('agentSandbox.runCommand', {
      folder,
      command,
      decision: extra.decision ?? 'keep',
      timeoutSeconds: extra.timeoutSeconds,
    })) as RunCommandResult | undefined;
    assert.ok(result, 'agentSandbox.runCommand returned nothing (see the Agent Sandbox log)');
    return result;
  }

  const token = `ghp_${'Q'.repeat(36)}`;
  let firstRunId: string;

  test('a command run is recorded with its fields, output (redacted) and the files it changed', async () => {
    const before = Date.now();
    const ran = await run(`printf 'one\\ntwo\\n' > history-made.txt && echo '// history' >> src/app.js && echo "out ${token}" && echo err >&2`);
    assert.equal(ran.result.exitCode, 0, ran.result.stderr);
    firstRunId = ran.result.runId;
    const record = await recordOf(firstRunId);
    assert.equal(record.source, 'command');
    assert.equal(record.folder, folder);
    assert.match(record.command, /^printf 'one\\ntwo\\n' > history-made\.txt/);
    assert.ok(!record.command.includes(token) && record.command.includes('[REDACTED]'), 'the command is redacted too');
    assert.equal(record.outcome, 'exited');
    assert.equal(record.exitCode, 0);
    assert.ok(record.startedAt >= before && record.endedAt! >= record.startedAt);
    assert.equal(record.durationMs, ran.result.durationMs);
    assert.equal(record.output?.stdout, 'out [REDACTED]\n');
    assert.equal(record.output?.stderr, 'err\n');
    assert.equal(record.image?.reference, 'agent-sandbox-test/node');
    assert.match(record.image?.id ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(record.image?.id, ran.result.image.id);
    // The details show the digest and the image report (verified from the image: bash as /bin/sh, GNU find, one setuid file).
    const imageRows = new Map(imageFacts(record.image!));
    assert.match(imageRows.get('Image digest') ?? '', /^sha256:[0-9a-f]{64} \(no registry digest/);
    assert.match(imageRows.get('Image report') ?? '', /\/bin\/sh, find gnu, tar busybox, 1 setuid\/setgid file\(s\)/);
    assert.equal(record.image?.summary, ran.result.image.summary);
    assert.deepEqual(record.policy, ran.result.policy);
    assert.equal(record.policy?.network, 'none');
    assert.equal(record.runtime, ran.result.policy.runtime);
    assert.deepEqual(
      record.files.map((f) => [f.path, f.kind, f.added, f.removed, f.decisions.length]),
      [
        ['history-made.txt', 'added', 2, 0, 0],
        ['src/app.js', 'modified', 1, 0, 0],
      ],
    );
  });

  test('a non-zero exit is recorded as such, and lists no files it did not change', async () => {
    const ran = await run('echo failing >&2; exit 3');
    const record = await recordOf(ran.result.runId);
    assert.deepEqual([record.outcome, record.exitCode, record.output?.stderr], ['exited', 3, 'failing\n']);
    assert.deepEqual(record.files, [], 'the pending files belong to the first run');
  });

  test('a timeout is recorded as a timeout', async () => {
    const ran = await run('sleep 30', { timeoutSeconds: 1 });
    assert.equal(ran.result.outcome, 'timeout');
    const record = await recordOf(ran.result.runId);
    assert.equal(record.outcome, 'timeout');
    assert.equal(record.exitCode, null);
    assert.ok(record.durationMs! >= 900 && record.durationMs! < 20_000, `took ${record.durationMs} ms`);
  });

  test('a running run is in the history at once and is updated when it ends', async () => {
    const command = 'sleep 3; echo slept';
    const pending = run(command);
    let running: HistoryRecord | undefined;
    const deadline = Date.now() + 20_000;
    while (!running && Date.now() < deadline) {
      running = (await exportHistory()).records.find((r) => r.command === command && r.outcome === 'running');
      if (!running) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(running, 'the run did not appear while it ran');
    assert.equal(running.endedAt, undefined);
    const ran = await pending;
    assert.equal(ran.result.runId, running.id);
    const ended = await recordOf(running.id);
    assert.deepEqual([ended.outcome, ended.exitCode, ended.output?.stdout], ['exited', 0, 'slept\n']);
  });

  test('applying records the decision on the run that changed the files, with the time', async () => {
    const before = Date.now();
    const ran = await run('true', { decision: 'apply' });
    assert.equal(ran.decision, 'applied');
    assert.deepEqual(ran.applied?.applied, ['history-made.txt', 'src/app.js']);
    const record = await recordOf(firstRunId);
    for (const file of record.files) {
      assert.equal(file.decisions.length, 1, `${file.path}: ${JSON.stringify(file.decisions)}`);
      assert.equal(file.decisions[0].decision, 'accepted');
      assert.ok(file.decisions[0].at >= before && file.decisions[0].at <= Date.now());
    }
    assert.deepEqual((await recordOf(ran.result.runId)).files, [], 'the apply run itself changed nothing');
  });

  test('a decided file keeps what the box proposed and what was decided, redacted like the history, next to it', async () => {
    const { storeFile } = await exportHistory();
    const kept = new DecidedContents(path.join(path.dirname(storeFile), DECIDED_DIR), 64 * 1024 * 1024);
    // Accepted (the test before): both sides are the box's version, now the workspace's.
    const app = fs.readFileSync(path.join(folder, 'src', 'app.js'), 'utf8');
    assert.deepEqual(await kept.get(firstRunId, 'src/app.js'), { path: 'src/app.js', proposed: app, decided: app });
    // Rejected: the box proposed a file with a token in it; the workspace has no such file.
    const ran = await run(`printf 'key ${token}\\nline\\n' > decided-secret.txt`);
    await exportHistory(); // the recorder has stored everything so far
    assert.deepEqual(await kept.get(ran.result.runId, 'decided-secret.txt'), { path: 'decided-secret.txt', proposed: 'key [REDACTED]\nline\n' });
    await vscode.commands.executeCommand('agentSandbox.review.reject', { folder, paths: ['decided-secret.txt'] });
    await exportHistory();
    assert.deepEqual(await kept.get(ran.result.runId, 'decided-secret.txt'), {
      path: 'decided-secret.txt',
      proposed: 'key [REDACTED]\nline\n',
      decided: null,
    });
    const onDisk = fs
      .readdirSync(kept.dir, { recursive: true, encoding: 'utf8' })
      .map((rel) => path.join(kept.dir, rel))
      .filter((f) => fs.statSync(f).isFile());
    assert.ok(onDisk.length >= 3);
    assert.ok(
      onDisk.every((f) => !fs.readFileSync(f, 'utf8').includes(token)),
      'no kept content holds the token',
    );
  });

  test('an agent tool call is recorded with source tool, the tool name and the files it changed', async () => {
    const result = await vscode.lm.invokeTool('agentSandbox_runCommand', {
      input: { command: 'echo via-tool > tool-made.txt && echo tool-out' },
      toolInvocationToken: undefined,
    });
    assert.ok(result.content.length > 0);
    const record = (await exportHistory()).records.find((r) => r.source === 'tool' && r.command.includes('via-tool'));
    assert.ok(record, 'the tool call is not in the history');
    assert.equal(record.agent, 'agentSandbox_runCommand');
    assert.deepEqual([record.outcome, record.exitCode, record.output?.stdout], ['exited', 0, 'tool-out\n']);
    assert.equal(record.policy?.network, 'none');
    assert.deepEqual(
      record.files.map((f) => [f.path, f.kind, f.added, f.removed]),
      [['tool-made.txt', 'added', 1, 0]],
    );
  });

  test('the history survives a reload: a new store on the same file reads the same records', async () => {
    const { storeFile, records } = await exportHistory();
    assert.ok(records.length >= 5, `${records.length} records`);
    const reloaded = await HistoryStore.open({ dir: path.dirname(storeFile), maxSizeBytes: 64 * 1024 * 1024, maxAgeMs: 0 });
    try {
      assert.equal(reloaded.skippedLines, 0);
      assert.deepEqual(reloaded.records(), records);
    } finally {
      reloaded.dispose();
    }
  });
});
