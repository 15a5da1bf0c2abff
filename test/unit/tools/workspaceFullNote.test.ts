import * as assert from 'node:assert/strict';
import type { ExecResult } from '../../../src/shared/protocol';
import { formatRunResult, workspaceFullNote } from '../../../src/core/tools/toolText';

function failedRun(extra: Partial<ExecResult> = {}): ExecResult {
  return {
    runId: 'r',
    outcome: 'exited',
    exitCode: 1,
    stdout: '',
    stderr: "dd: error writing 'big': No space left on device\n",
    truncated: false,
    durationMs: 800,
    image: { reference: 'img', id: 'sha256:1' },
    policy: { network: 'none', user: '1000:1000', memoryMiB: 1, cpus: 1, pidsLimit: 1, runtime: 'runc', envNames: [] },
    caughtUp: [],
    conflicts: [],
    ...extra,
  };
}

suite('agent tools: a failed run that left /workspace full', () => {
  test('a tmpfs workspace: the note gives the numbers, ENOSPC and names agentSandbox.workspaceSizeMiB; the tool text carries it', () => {
    const result = failedRun({ workspaceFull: { sizeKiB: 16384, usedKiB: 16384, availableKiB: 0, volume: 'tmpfs' } });
    const note = workspaceFullNote(result);
    assert.equal(
      note,
      '/workspace in the box is full (16 MiB used of 16 MiB, 0 MiB free): writes fail with "No space left on device" (ENOSPC). ' +
        'Delete files in the box or raise agentSandbox.workspaceSizeMiB and reset the box (Agent Sandbox: Reset Box) to get a bigger one.',
    );
    const text = formatRunResult('dd if=/dev/zero of=big', result, { changed: [], settled: [] }, []);
    assert.equal(text.split('\n')[2], note, 'right after the outcome line');
  });

  test('a disk workspace: the note points at the engine disk, not at the size setting', () => {
    const note = workspaceFullNote(failedRun({ workspaceFull: { sizeKiB: 1048576, usedKiB: 1047552, availableKiB: 1024, volume: 'disk' } })) ?? '';
    assert.match(note, /Docker engine's disk/);
    assert.doesNotMatch(note, /workspaceSizeMiB/);
  });

  test('without workspaceFull there is no note', () => {
    assert.equal(workspaceFullNote(failedRun()), undefined);
    assert.doesNotMatch(formatRunResult('false', failedRun(), { changed: [], settled: [] }, []), /is full/);
  });
});
