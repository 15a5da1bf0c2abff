// An interactive terminal in a real box, on busybox ash and on bash: a TTY round trip, the first shell the
// image has, the initial size and resizes reaching the TTY, exit codes, and close killing the whole tree.
import * as assert from 'node:assert/strict';
import { Box } from '../../src/core/box/box';
import { BoxTerminal, boxHasProgram, findTerminalShell } from '../../src/core/box/boxTerminal';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { connectTestEngine, removeEverythingOwnedBy, shOk, testOwnerId, testSettings, TEST_IMAGES } from './engineHarness';

interface Flavour {
  label: string;
  image: string;
  shell: RegExp;
  box?: Box;
}

const flavours: Flavour[] = [
  { label: 'busybox ash', image: TEST_IMAGES.busybox, shell: /\/sh$/ },
  { label: 'bash', image: TEST_IMAGES.node, shell: /\/bash$/ },
];

/** A terminal with its output gathered, and a way to wait for text in it. */
async function openTerminal(engine: DockerEngine, box: Box, options: { cols?: number; rows?: number; command?: string } = {}) {
  let output = '';
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  let exitCode: number | null | undefined;
  const shell = await findTerminalShell(engine, box.containerId);
  const terminal = await BoxTerminal.start(engine, box.containerId, {
    cols: options.cols ?? 80,
    rows: options.rows ?? 24,
    shell,
    command: options.command,
    onData: (data) => {
      output += data;
      for (const w of waiters.splice(0)) {
        if (w.pattern.test(output)) w.resolve();
        else waiters.push(w);
      }
    },
    onExit: (code) => (exitCode = code),
  });
  const waitFor = (pattern: RegExp, ms = 15_000): Promise<void> =>
    pattern.test(output)
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no ${pattern} in terminal output:\n${JSON.stringify(output)}`)), ms);
          waiters.push({ pattern, resolve: () => (clearTimeout(timer), resolve()) });
        });
  return { terminal, shell, waitFor, output: () => output, exitCode: () => exitCode };
}

async function processesIn(box: Box): Promise<string[]> {
  const ps = await shOk(box, 'ps -o pid,args');
  return ps.split('\n').slice(1).filter((line) => line.trim() && !/\bps -o\b/.test(line) && !/agent-sandbox-run/.test(line));
}

suite('engine: box terminal', function () {
  this.timeout(60_000);
  const ownerId = testOwnerId('terminal');
  let engine: DockerEngine | undefined;

  suiteSetup(async () => {
    engine = await connectTestEngine();
    await Promise.all(
      flavours.map(async (f) => {
        f.box = await Box.create(engine!, testSettings({ image: f.image }), { folder: `/tmp/agent-sandbox-terminal-${f.label.replace(/\W+/g, '-')}`, ownerId });
      }),
    );
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
  });

  for (const flavour of flavours) {
    suite(flavour.label, () => {
      const box = (): Box => flavour.box!;

      test('the first shell the image has runs on a TTY in /workspace as the box user', async () => {
        const t = await openTerminal(engine!, box());
        assert.match(t.shell, flavour.shell);
        t.terminal.write('echo "[$(id -u):$(pwd):$TERM]"; [ -t 0 ] && echo "tty=yes"\r');
        await t.waitFor(/\[1000:\/workspace:xterm-256color\]/);
        await t.waitFor(/tty=yes/);
        assert.doesNotMatch(t.output(), new RegExp(`^${t.terminal.processId}\\r?\\n`), 'the pid line is not shown');
        t.terminal.write('exit 3\r');
        assert.equal(await t.terminal.exited, 3);
        assert.equal(t.exitCode(), 3);
      });

      test('the initial size and a resize reach the TTY', async () => {
        const t = await openTerminal(engine!, box(), { cols: 91, rows: 37 });
        t.terminal.write('stty size\r');
        await t.waitFor(/37 91/);
        await t.terminal.resize(120, 42);
        t.terminal.write('stty size\r');
        await t.waitFor(/42 120/);
        await t.terminal.close();
      });

      test('Ctrl-C interrupts the foreground program and Ctrl-D ends the shell', async () => {
        const t = await openTerminal(engine!, box());
        t.terminal.write('sleep 300; echo after-$?\r');
        await delay(500);
        t.terminal.write('\x03');
        await t.waitFor(/after-130/);
        t.terminal.write('\x04');
        assert.equal(await t.terminal.exited, 0);
      });

      test('close kills the whole process tree, background jobs and new sessions included', async () => {
        const t = await openTerminal(engine!, box());
        t.terminal.write('sleep 1001 & setsid sleep 1002 & (sleep 1003 &); echo started\r');
        await t.waitFor(/started/);
        await waitUntil(async () => (await processesIn(box())).filter((l) => /sleep 100[123]/.test(l)).length === 3);
        await t.terminal.close();
        assert.ok(t.exitCode() !== undefined, 'the exit was reported');
        const left = await processesIn(box());
        assert.deepEqual(left.filter((l) => /sleep 100|agent-sandbox-terminal|bash -i|sh -i/.test(l)), []);
      });

      test('the terminal ends with its shell although a background job holds the TTY, and the job is killed', async () => {
        const t = await openTerminal(engine!, box());
        t.terminal.write('sleep 1004 & echo bg-started\r');
        await t.waitFor(/bg-started/);
        t.terminal.write('exit 0\r');
        assert.equal(await t.terminal.exited, 0);
        const left = await processesIn(box());
        assert.deepEqual(left.filter((l) => /sleep 1004/.test(l)), []);
      });

      test('a command runs instead of a shell, and a missing program is detected', async () => {
        const t = await openTerminal(engine!, box(), { command: 'echo from-command; exit 7' });
        await t.waitFor(/from-command/);
        assert.equal(await t.terminal.exited, 7);
        assert.equal(await boxHasProgram(engine!, box().containerId, 'sh'), true);
        assert.equal(await boxHasProgram(engine!, box().containerId, 'no-such-agent-cli'), false);
      });
    });
  }
});

async function waitUntil(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await delay(100);
  }
  assert.fail('condition not reached in time');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
