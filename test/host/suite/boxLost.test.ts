import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as vscode from 'vscode';
import type { RunCommandResult } from '../../../src/host/commands/runCommand';

const extensionId = 'agent-sandbox.agent-sandbox';

function docker(args: string[]): string {
  const r = spawnSync('docker', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

suite('Run Command: a box removed mid-run (real engine)', function () {
  this.timeout(180_000);
  let folder: string;

  suiteSetup(async () => {
    await vscode.extensions.getExtension(extensionId)?.activate();
    const first = vscode.workspace.workspaceFolders?.[0];
    assert.ok(first, 'the rig opens a workspace folder');
    folder = first.uri.fsPath;
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('agentSandbox.reset', folder);
  });

  test('the run ends as box lost (not an exit code), with its changes listed, and the next run gets a fresh box', async () => {
    const running = Promise.resolve(
      vscode.commands.executeCommand('agentSandbox.runCommand', { folder, command: 'echo started; sleep 60', decision: 'keep' }),
    ) as Promise<RunCommandResult | undefined>;
    // The run's `sleep` is seen in the box, then the box is removed under it.
    let box = '';
    const deadline = Date.now() + 60_000;
    while (!box) {
      assert.ok(Date.now() < deadline, 'the run never started in a box');
      const id = docker(['ps', '-q', '--filter', `label=dev.agent-sandbox.folder=${folder}`]).trim();
      if (id && spawnSync('docker', ['top', id], { encoding: 'utf8' }).stdout.includes('sleep 60')) box = id;
      else await new Promise((resolve) => setTimeout(resolve, 200));
    }
    docker(['rm', '-f', box]);

    const run = await running;
    assert.ok(run, 'agentSandbox.runCommand returned nothing: the lost box was reported as an error instead of a run result');
    assert.equal(run.result.outcome, 'engine-error');
    assert.equal(run.result.boxLost, true);
    assert.equal(run.result.exitCode, null);
    assert.match(run.result.error ?? '', /box was (removed|stopped) during the run/);
    assert.deepEqual(run.changeSet.changes, [], 'the pending changes (none) are listed without a box to collect from');

    const next = (await vscode.commands.executeCommand('agentSandbox.runCommand', {
      folder,
      command: 'echo fresh',
      decision: 'keep',
    })) as RunCommandResult;
    assert.equal(next.result.exitCode, 0, next.result.stderr);
    assert.equal(next.result.stdout, 'fresh\n');
    assert.ok(!docker(['ps', '-aq', '--no-trunc']).includes(box), 'the lost box is gone');
  });
});
