import * as assert from 'node:assert/strict';
import type { ChangeEntry, ExecResult } from '../../../src/shared/protocol';
import { agentModeFile } from '../../../src/host/tools/agentModeFile';
import { sandboxTools } from '../../../src/host/tools/toolNames';
import {
  OUTPUT_TAIL_CHARS,
  READ_MAX_LINES,
  changesByRun,
  describeChange,
  formatRunResult,
  networkPhrase,
  sliceLines,
  summarizeChangeSet,
  tail,
} from '../../../src/core/tools/toolText';
import { change, changeSet } from '../../builders/entries';

/** A change with a mode and a hash, as collect reports a file's. */
const entry = (path: string, kind: ChangeEntry['kind'], extra: Partial<ChangeEntry> = {}) =>
  change(path, kind, { mode: 0o644, hash: `h-${path}`, ...extra });

function execResult(extra: Partial<ExecResult> = {}): ExecResult {
  return {
    runId: 'r',
    outcome: 'exited',
    exitCode: 0,
    stdout: '',
    stderr: '',
    truncated: false,
    durationMs: 1500,
    image: { reference: 'img', id: 'sha256:1' },
    policy: { network: 'none', user: '1000:1000', memoryMiB: 1, cpus: 1, pidsLimit: 1, runtime: 'runc', envNames: [] },
    caughtUp: [],
    conflicts: [],
    ...extra,
  };
}

suite('agent tools: result text', () => {
  test('networkPhrase says what the box can reach under the current setting', () => {
    assert.equal(networkPhrase({}), 'no network');
    assert.equal(networkPhrase({ network: 'none', allowedHosts: ['x.test'] }), 'no network');
    assert.equal(networkPhrase({ network: 'allowlist' }), 'network: allowlist, no host allowed');
    assert.equal(networkPhrase({ network: 'allowlist', networkPresets: ['npm'], allowedHosts: ['api.test'] }), 'network: only npm, api.test');
    assert.equal(
      networkPhrase({ network: 'allowlist', networkPresets: ['npm', 'github'], allowedHosts: ['a.test', 'b.test', 'c.test'] }),
      'network: only npm, github, a.test + 2 more',
    );
  });

  test("an offline run's result says it ran offline; others do not", () => {
    const offline = execResult({ policy: { ...execResult().policy, offline: true } });
    assert.match(formatRunResult('npm test', offline, { changed: [], settled: [] }, []), /ran offline \(network "none"\)/);
    assert.doesNotMatch(formatRunResult('npm test', execResult(), { changed: [], settled: [] }, []), /offline/);
  });

  test('changesByRun: only what this run changed, with the kind the run saw, and what it undid', () => {
    const before = changeSet([
      entry('created.txt', 'added', { hash: 'h1' }),
      entry('README.txt', 'renamed', { fromPath: 'README.md' }),
      entry('gone.txt', 'added'),
      entry('old.txt', 'deleted', { hash: undefined, mode: undefined }),
      entry('tool.sh', 'modified', { hash: 'h2' }),
    ]);
    const after = changeSet([
      entry('created.txt', 'added', { hash: 'h1-edited' }),
      entry('new.txt', 'added'),
      entry('old.txt', 'added', { hash: 'h3' }),
      entry('README.txt', 'renamed', { fromPath: 'README.md' }),
      entry('tool.sh', 'modified', { hash: 'h2', mode: 0o755 }),
    ]);
    const { changed, settled } = changesByRun(before, after);
    assert.deepEqual(
      changed.map((c) => [c.path, c.kind]),
      [
        ['created.txt', 'modified'],
        ['new.txt', 'added'],
        ['old.txt', 'added'],
        ['tool.sh', 'mode'],
      ],
    );
    assert.equal(describeChange(changed[3]), 'mode changed tool.sh (mode 644 → 755)');
    assert.deepEqual(
      settled.map((c) => c.path),
      ['gone.txt'],
    );
    assert.deepEqual(changesByRun(after, after), { changed: [], settled: [] });
  });

  test('describeChange names renames, binaries, symlinks and flags', () => {
    assert.equal(describeChange(entry('b.txt', 'renamed', { fromPath: 'a.txt' })), 'renamed a.txt → b.txt');
    assert.equal(describeChange(entry('bin.dat', 'added', { binary: true, size: 3 })), 'added bin.dat (binary, 3 bytes)');
    assert.equal(describeChange(entry('link', 'added', { type: 'symlink', linkTarget: 'src/app.js' })), 'added link (symlink → src/app.js)');
    assert.equal(
      describeChange(entry('.vscode/tasks.json', 'modified', { flags: ['host-executed'] })),
      'modified .vscode/tasks.json (needs a deliberate approval: host-executed)',
    );
  });

  test('summarizeChangeSet: counts by kind, every path, flagged, refused and ignored', () => {
    const text = summarizeChangeSet(
      changeSet(
        [entry('a', 'added'), entry('b', 'added'), entry('c', 'modified', { flags: ['host-executed'] }), entry('d', 'deleted'), entry('e', 'mode')],
        { refused: [{ path: 'evil', reason: 'symlink-outside', detail: '/etc/passwd' }], ignoredCount: 2 },
      ),
    );
    assert.match(text, /: 2 added, 1 modified, 1 deleted, 1 mode change\.$/m);
    assert.match(text, /^- added a$\n^- added b$\n^- modified c \(needs a deliberate approval: host-executed\)$/m);
    assert.match(text, /^1 of them can run code/m);
    assert.match(text, /^Refused .*: 1\.\n- evil: symlink-outside \(\/etc\/passwd\)$/m);
    assert.match(text, /^2 changed path\(s\) are excluded from sync/m);
    assert.match(summarizeChangeSet(changeSet([])), /: no changes\.$/);
  });

  test("formatRunResult: outcome, output tails, the run's files and the review note", () => {
    const long = `${'x'.repeat(OUTPUT_TAIL_CHARS.stdout)}THE END`;
    const text = formatRunResult(
      'make',
      execResult({ exitCode: 2, stdout: long, stderr: 'boom\n', conflicts: ['src/a.ts'] }),
      { changed: [entry('out.o', 'added', { binary: true, size: 10 })], settled: [entry('tmp.txt', 'added')] },
      [entry('out.o', 'added'), entry('x', 'modified')],
    );
    assert.match(text, /^\$ make\nExited with code 2 after 1\.5 s\.$/m);
    assert.match(text, /^stdout \(last 12000 characters\):\n\[… 7 earlier characters cut …\]\nx+THE END$/m);
    assert.match(text, /^stderr:\nboom$/m);
    assert.match(text, /^Files this run changed \(1 added\):\n- added out\.o \(binary, 10 bytes\)$/m);
    assert.match(text, /^No longer pending .*: tmp\.txt$/m);
    assert.match(text, /^Changed both in the workspace and in the box .*: src\/a\.ts$/m);
    assert.match(text, /All pending changes in the box: 1 added, 1 modified\. These changes exist only in the sandbox box/);
    assert.match(
      formatRunResult('true', execResult({ outcome: 'timeout', exitCode: null }), { changed: [], settled: [] }, []),
      /Timed out.*\n[\s\S]*This run changed no files\./,
    );
    assert.equal(tail('abc', 5), 'abc');
  });

  test('sliceLines: whole files, ranges, the cap and out-of-range requests', () => {
    const content = 'one\ntwo\nthree\nfour\n';
    assert.equal(sliceLines('f.txt', content), 'f.txt (4 line(s)):\none\ntwo\nthree\nfour');
    assert.equal(sliceLines('f.txt', content, 2, 3), 'f.txt, lines 2-3 of 4:\ntwo\nthree');
    assert.equal(sliceLines('f.txt', content, 3), 'f.txt, lines 3-4 of 4:\nthree\nfour');
    assert.equal(sliceLines('f.txt', content, 1, 99), 'f.txt, lines 1-4 of 4:\none\ntwo\nthree\nfour');
    assert.equal(sliceLines('f.txt', ''), 'f.txt is empty.');
    assert.throws(() => sliceLines('f.txt', content, 5), /startLine 5 is past the end of f\.txt, which has 4 line/);
    assert.throws(() => sliceLines('f.txt', content, 3, 2), /endLine 2 is before startLine 3/);
    const big = Array.from({ length: READ_MAX_LINES + 5 }, (_, i) => `l${i + 1}`).join('\n');
    const capped = sliceLines('big.txt', big);
    assert.match(capped, new RegExp(`^big\\.txt, lines 1-${READ_MAX_LINES} of ${READ_MAX_LINES + 5}:`));
    assert.match(capped, new RegExp(`l${READ_MAX_LINES}\\n\\[… 5 more line\\(s\\); read on with startLine ${READ_MAX_LINES + 1}\\]$`));
  });
});

suite('agent tools: the sandboxed agent mode file', () => {
  test('VS Code 1.106 and later: a custom agent under .github/agents with tools qualified by extension id', () => {
    for (const version of ['1.106.0', '1.139.1', '2.0.0']) {
      const file = agentModeFile(version, 'Agent-Sandbox.agent-sandbox');
      assert.equal(file.path, '.github/agents/Agent Sandbox.agent.md');
      const tools = /^tools: \[(.*)\]$/m.exec(file.content)?.[1];
      assert.equal(tools, sandboxTools.map((t) => `'agent-sandbox.agent-sandbox/${t.referenceName}'`).join(', '));
      assert.match(file.content, /^---\nname: Agent Sandbox\ndescription: .*no network.*\ntools: .*\n---\n/);
    }
  });

  test('VS Code 1.101 to 1.105: a chat mode under .github/chatmodes with bare tool reference names', () => {
    for (const version of ['1.101.0', '1.105.2']) {
      const file = agentModeFile(version, 'agent-sandbox.agent-sandbox');
      assert.equal(file.path, '.github/chatmodes/Agent Sandbox.chatmode.md');
      assert.equal(/^tools: \[(.*)\]$/m.exec(file.content)?.[1], sandboxTools.map((t) => `'${t.referenceName}'`).join(', '));
      assert.doesNotMatch(file.content, /^name:/m);
    }
  });

  test('the package manifest declares each tool with its reference name, tag and model description', () => {
    const manifest = require('../../../../package.json') as {
      contributes: {
        languageModelTools: { name: string; toolReferenceName: string; canBeReferencedInPrompt: boolean; tags: string[]; modelDescription: string }[];
      };
    };
    const declared = manifest.contributes.languageModelTools;
    assert.deepEqual(
      declared.map((t) => [t.name, t.toolReferenceName]),
      sandboxTools.map((t) => [t.name, t.referenceName]),
    );
    for (const tool of declared) {
      assert.equal(tool.canBeReferencedInPrompt, true);
      assert.ok(tool.tags.includes('agent-sandbox'));
      assert.match(tool.modelDescription, /no network/);
      assert.match(tool.modelDescription, /review/);
    }
  });
});
