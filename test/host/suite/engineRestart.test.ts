import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as vscode from 'vscode';
import type { RunCommandResult } from '../../../src/host/commands/runCommand';
import { SERVER_EXEC_ARGV } from '../../../src/shared/serverLaunch';

/** Managed boxes of this folder with the pid of the engine server that owns each. */
function boxesOf(folder: string): { id: string; ownerPid: number }[] {
  const r = spawnSync(
    'docker',
    [
      'ps',
      '-a',
      '--filter',
      'label=dev.agent-sandbox.managed=true',
      '--filter',
      `label=dev.agent-sandbox.folder=${folder}`,
      '--format',
      '{{.ID}} {{.Label "dev.agent-sandbox.owner-pid"}}',
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, `docker ps failed: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, pid] = line.split(' ');
      return { id, ownerPid: Number(pid) };
    });
}

/** The server VS Code started runs with the memory settings every client uses (src/shared/serverLaunch.ts). */
function assertStartedWithMemorySettings(pid: number): void {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  assert.ok(
    argv.some((a) => a.endsWith('server.js')),
    `pid ${pid} is the engine server: ${argv.join(' ')}`,
  );
  for (const flag of SERVER_EXEC_ARGV) assert.ok(argv.includes(flag), `the server runs with ${flag}: ${argv.join(' ')}`);
  const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  assert.ok(env.includes('MALLOC_MMAP_THRESHOLD_=131072'), 'the server runs with the fixed malloc mmap threshold');
}

suite('Engine server crash', function () {
  this.timeout(120_000);

  test('the server is restarted, the box it left is removed, and the next run works', async () => {
    const folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const first = (await vscode.commands.executeCommand('agentSandbox.runCommand', {
      folder,
      command: 'true',
      decision: 'keep',
    })) as RunCommandResult;
    assert.equal(first.result.exitCode, 0);
    const [box] = boxesOf(folder);
    assert.ok(box, 'a box exists for the folder');
    assert.notEqual(box.ownerPid, process.pid, 'the box belongs to the engine server, not the extension host');
    assertStartedWithMemorySettings(box.ownerPid);

    process.kill(box.ownerPid, 'SIGKILL');

    const deadline = Date.now() + 60_000;
    while (boxesOf(folder).some((b) => b.id === box.id)) {
      if (Date.now() > deadline) assert.fail('the orphaned box was not removed after the server restarted');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const next = (await vscode.commands.executeCommand('agentSandbox.runCommand', {
      folder,
      command: 'echo alive',
      decision: 'keep',
    })) as RunCommandResult;
    assert.equal(next.result.stdout, 'alive\n');
    const boxes = boxesOf(folder);
    assert.equal(boxes.length, 1);
    assert.notEqual(boxes[0].ownerPid, box.ownerPid, 'a new server owns the new box');
    assertStartedWithMemorySettings(boxes[0].ownerPid);
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
  });
});
