// The command line (dist/cli.js) on a real engine: run → diff → apply on a fixture folder leaves it exactly as
// running the same command on a copy of it on the host does.
import * as assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { removeCachesUnder } from './cacheHarness';

const cliJs = path.resolve(__dirname, '..', '..', '..', 'dist', 'cli.js');

/** Every entry under `dir` with its type, permissions and content (or link target), sorted by path. */
function snapshot(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel))
    .sort()
    .flatMap((name) => {
      const relPath = rel ? `${rel}/${name}` : name;
      const full = path.join(dir, relPath);
      const stat = lstatSync(full);
      const mode = (stat.mode & 0o777).toString(8);
      if (stat.isDirectory()) return [`dir ${relPath} ${mode}`, ...snapshot(dir, relPath)];
      if (stat.isSymbolicLink()) return [`link ${relPath} -> ${readlinkSync(full)}`];
      return [`file ${relPath} ${mode} ${JSON.stringify(readFileSync(full, 'utf8'))}`];
    });
}

suite('Command line: agent-sandbox run, diff, apply, discard, reset, history (real engine)', function () {
  this.timeout(120_000);
  let root: string;
  let fixture: string;
  let env: NodeJS.ProcessEnv;

  /** `agent-sandbox COMMAND --folder FOLDER ARGS…` (the folder before any `--`). */
  const cli = (folder: string, command: string, ...args: string[]): SpawnSyncReturns<string> =>
    spawnSync(process.execPath, [cliJs, command, '--folder', folder, ...args], { env, encoding: 'utf8', timeout: 90_000 });

  suiteSetup(() => {
    if (!existsSync(cliJs)) throw new Error(`${cliJs} is missing: run "npm run build" first`);
    root = mkdtempSync(path.join(os.tmpdir(), 'as-cli-'));
    fixture = path.join(root, 'fixture');
    mkdirSync(path.join(fixture, 'src'), { recursive: true });
    writeFileSync(path.join(fixture, 'src', 'main.txt'), 'one\ntwo\nthree\nfour\nfive\n');
    writeFileSync(path.join(fixture, 'gone.txt'), 'bye\n');
    writeFileSync(path.join(fixture, 'move-me.txt'), 'moving\n');
    writeFileSync(path.join(fixture, 'tool.sh'), 'echo tool\n', { mode: 0o644 });
    env = { ...process.env, AGENT_SANDBOX_IMAGE: 'agent-sandbox-test/busybox', AGENT_SANDBOX_MCP_DIR: path.join(root, 'sockets') };
  });

  suiteTeardown(() => {
    removeCachesUnder(root); // the command line runs with package caches on, as a user's does
    rmSync(root, { recursive: true, force: true });
  });

  test('run → diff → apply equals running the command on a host copy; git apply of the diff agrees', () => {
    const command = [
      "sed -i 's/three/THREE/' src/main.txt",
      'printf "six\\n" >> src/main.txt',
      'rm gone.txt',
      'mv move-me.txt moved.txt',
      'mkdir -p docs/deep && printf "new doc\\n" > docs/deep/readme.md',
      'chmod 755 tool.sh',
      'ln -s src/main.txt link-to-main',
      'echo done',
    ].join(' && ');
    const boxed = path.join(root, 'boxed');
    const onHost = path.join(root, 'on-host');
    const viaGit = path.join(root, 'via-git');
    for (const copy of [boxed, onHost, viaGit]) cpSync(fixture, copy, { recursive: true });
    env.AGENT_SANDBOX_STORAGE = path.join(root, 'storage-run');

    const host = spawnSync('/bin/sh', ['-c', command], { cwd: onHost, encoding: 'utf8' });
    assert.equal(host.status, 0, host.stderr);

    const run = cli(boxed, 'run', '--', command);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'done\n');
    assert.match(run.stderr, /pending changes: .*agent-sandbox diff/);
    // Nothing reached the folder yet.
    assert.deepEqual(snapshot(boxed), snapshot(fixture));

    const diff = cli(boxed, 'diff');
    assert.equal(diff.status, 0, diff.stderr);
    assert.match(diff.stdout, /^diff --git a\/move-me\.txt b\/moved\.txt\nrename from move-me\.txt\nrename to moved\.txt$/m);
    assert.match(diff.stdout, /^diff --git a\/tool\.sh b\/tool\.sh\nold mode 100644\nnew mode 100755$/m);
    assert.match(diff.stdout, /-three\n\+THREE\n four\n five\n\+six\n/);
    writeFileSync(path.join(root, 'changes.patch'), diff.stdout);
    const gitApply = spawnSync('git', ['apply', '--whitespace=nowarn', path.join(root, 'changes.patch')], { cwd: viaGit, encoding: 'utf8' });
    assert.equal(gitApply.status, 0, gitApply.stderr);

    // A newly executable file can run code on the host: it waits for a deliberate approval.
    const apply = cli(boxed, 'apply');
    assert.equal(apply.status, 1, apply.stderr + apply.stdout);
    assert.match(apply.stdout, /applied src\/main\.txt/);
    assert.match(apply.stderr, /skipped tool\.sh: .*newly-executable.*--approve-flagged/);
    assert.equal(cli(boxed, 'diff', '--stat').stdout, 'mode changed tool.sh (mode 644 → 755; needs a deliberate approval: newly-executable)\n');
    const approved = cli(boxed, 'apply', '--approve-flagged');
    assert.equal(approved.status, 0, approved.stderr + approved.stdout);
    assert.equal(approved.stdout, 'applied tool.sh\n');

    assert.deepEqual(snapshot(boxed), snapshot(onHost));
    assert.deepEqual(snapshot(viaGit), snapshot(onHost));
    const after = cli(boxed, 'diff', '--stat');
    assert.equal(after.stdout, '');
    assert.match(after.stderr, /no pending changes/);
  });

  test("run streams output and exits with the command's code; apply PATHS, discard PATHS, reset; history lists the runs", () => {
    const folder = path.join(root, 'partial');
    cpSync(fixture, folder, { recursive: true });
    env.AGENT_SANDBOX_STORAGE = path.join(root, 'storage-partial');

    const run = cli(folder, 'run', '--', 'sh', '-c', 'echo a > a.txt; echo b > b.txt; echo c > c.txt; echo oops >&2; exit 7');
    assert.equal(run.status, 7);
    assert.match(run.stderr, /^oops$/m);

    const applied = cli(folder, 'apply', 'a.txt');
    assert.equal(applied.status, 0, applied.stderr);
    assert.equal(readFileSync(path.join(folder, 'a.txt'), 'utf8'), 'a\n');
    assert.ok(!existsSync(path.join(folder, 'b.txt')));

    assert.equal(cli(folder, 'apply', 'nope.txt').status, 2);
    const discarded = cli(folder, 'discard', 'b.txt');
    assert.equal(discarded.status, 0, discarded.stderr);
    assert.equal(cli(folder, 'diff', '--stat').stdout, 'added c.txt\n');

    assert.equal(cli(folder, 'reset').status, 0);
    assert.equal(cli(folder, 'diff', '--stat').stdout, '');
    assert.ok(!existsSync(path.join(folder, 'c.txt')));

    const timedOut = cli(folder, 'run', '--timeout', '1', '--', 'sleep 30');
    assert.equal(timedOut.status, 124);
    assert.match(timedOut.stderr, /Timed out/);

    const history = JSON.parse(cli(folder, 'history', '--json').stdout) as {
      command: string;
      exitCode: number | null;
      outcome: string;
      source: string;
      files: { path: string }[];
    }[];
    assert.deepEqual(
      history.map((r) => [r.command, r.outcome, r.exitCode]),
      [
        ['sleep 30', 'timeout', null],
        ["sh -c 'echo a > a.txt; echo b > b.txt; echo c > c.txt; echo oops >&2; exit 7'", 'exited', 7],
      ],
    );
    assert.deepEqual(
      history[1].files.map((f) => f.path),
      ['a.txt', 'b.txt', 'c.txt'],
    );
    assert.match(cli(folder, 'history').stdout, /exit 7 .*command:agent-sandbox CLI/);
  });

  test('usage errors and --help', () => {
    const noCommand = cli(fixture, 'run');
    assert.equal(noCommand.status, 2);
    assert.match(noCommand.stderr, /Give the command after "--"/);
    const unknown = spawnSync(process.execPath, [cliJs, 'frobnicate'], { encoding: 'utf8' });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /Unknown command "frobnicate"/);
    const badFolder = cli(path.join(root, 'missing'), 'diff');
    assert.equal(badFolder.status, 2);
    assert.match(badFolder.stderr, /does not exist or is not a directory/);
    for (const command of ['mcp', 'run', 'diff', 'apply', 'discard', 'reset', 'history']) {
      const help = spawnSync(process.execPath, [cliJs, command, '--help'], { encoding: 'utf8' });
      assert.equal(help.status, 0);
      assert.match(help.stdout, new RegExp(`^Usage: agent-sandbox ${command}`));
    }
  });
});
