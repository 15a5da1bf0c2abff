// An interactive terminal in a real box, on busybox ash and on bash: a TTY round trip, the first shell the
// image has, the initial size and resizes reaching the TTY, exit codes, and close killing the whole tree;
// then the server's terminal messages over stdio: catch-up before start, a shared box, batching, close, refusal.
import * as assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ProtocolConnection } from 'vscode-languageserver-protocol/node';
import {
  ExecRequest,
  ResetRequest,
  TerminalCloseRequest,
  TerminalExitNotification,
  TerminalInputNotification,
  TerminalOpenRequest,
  TerminalOutputNotification,
} from '../../src/shared/protocol';
import { Box } from '../../src/core/box/box';
import { BoxTerminal, boxHasProgram, findTerminalShell } from '../../src/core/box/boxTerminal';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { startEngineServer } from '../builders/engineServer';
import { connectTestEngine, removeEverythingOwnedBy, shOk, testOwnerId, testSettings, TEST_IMAGES } from './engineHarness';
import { suiteUnderEachRuntime } from './gvisorRuntimes';

interface Flavour {
  label: string;
  image: string;
  shell: RegExp;
  box?: Box;
}

const flavours: Flavour[] = [
  { label: 'busybox ash', image: TEST_IMAGES.busybox, shell: /(^|\/)sh$/ },
  { label: 'bash', image: TEST_IMAGES.node, shell: /\/bash$/ },
];

/** Every terminal a test opened; closed after each test so a failure leaves nothing running. */
const opened: BoxTerminal[] = [];

/** A terminal with its output gathered, and a way to wait for text in it. */
async function openTerminal(engine: DockerEngine, box: Box, options: { cols?: number; rows?: number; command?: string } = {}) {
  let output = '';
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  let exitCode: number | null | undefined;
  const shell = await findTerminalShell(engine, box.containerId);
  let terminal: BoxTerminal | undefined = undefined;
  terminal = await BoxTerminal.start(engine, box.containerId, {
    cols: options.cols ?? 80,
    rows: options.rows ?? 24,
    shell,
    command: options.command,
    onData: (data) => {
      output += data;
      // Busybox's line editor asks where the cursor is (DSR) and waits for the answer a terminal gives.
      if (data.includes('\x1b[6n')) terminal?.write('\x1b[1;1R');
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
  opened.push(terminal);
  // Type only at a prompt, like a person: a line editor flushes input typed before it starts reading.
  const atPrompt = (): Promise<void> => waitFor(/\$ (\x1b\[6n)?$/);
  return { terminal, shell, waitFor, atPrompt, output: () => output, exitCode: () => exitCode };
}

async function processesIn(box: Box): Promise<string[]> {
  const ps = await shOk(box, 'ps -o pid,args');
  return ps
    .split('\n')
    .slice(1)
    .filter((line) => line.trim() && !/\bps -o\b/.test(line) && !/agent-sandbox-run/.test(line));
}

suiteUnderEachRuntime('engine: box terminal', function (runtime) {
  this.timeout(60_000);
  const ownerId = testOwnerId(`terminal${runtime.setting}`);
  let engine: DockerEngine | undefined;

  suiteSetup(async () => {
    engine = await connectTestEngine();
    await Promise.all(
      flavours.map(async (f) => {
        f.box = await Box.create(engine!, testSettings({ image: f.image, runtime: runtime.setting }), {
          folder: `/tmp/agent-sandbox-terminal-${f.label.replace(/\W+/g, '-')}`,
          ownerId,
        });
      }),
    );
  });

  teardown(async () => {
    await Promise.all(opened.splice(0).map((t) => t.close()));
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
        await t.atPrompt();
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
        t.terminal.write('sleep 300\r');
        await waitUntil(async () => (await processesIn(box())).some((l) => /sleep 300/.test(l)));
        t.terminal.write('\x03');
        await t.atPrompt();
        t.terminal.write('echo after-$?\r');
        await t.waitFor(/after-130/);
        await t.atPrompt();
        t.terminal.write('\x04');
        const code = await Promise.race([t.terminal.exited, delay(10_000).then(() => 'still running')]);
        assert.equal(code, 0, `after Ctrl-D: ${JSON.stringify(t.output())}`);
      });

      test('close kills the whole process tree, background jobs and new sessions included', async () => {
        const t = await openTerminal(engine!, box());
        t.terminal.write('sleep 1001 & setsid sleep 1002 & (sleep 1003 &); echo started\r');
        await t.waitFor(/started/);
        await waitUntil(async () => (await processesIn(box())).filter((l) => /sleep 100[123]/.test(l)).length === 3);
        await t.terminal.close();
        assert.ok(t.exitCode() !== undefined, 'the exit was reported');
        const left = await processesIn(box());
        assert.deepEqual(
          left.filter((l) => /sleep 100|bash -i|sh -i/.test(l)),
          [],
        );
      });

      test('the terminal ends with its shell although a background job holds the TTY, and the job is killed', async () => {
        const t = await openTerminal(engine!, box());
        t.terminal.write('sleep 1004 & echo bg-started\r');
        await t.waitFor(/bg-started/);
        await t.atPrompt();
        t.terminal.write('exit 0\r');
        assert.equal(await t.terminal.exited, 0);
        const left = await processesIn(box());
        assert.deepEqual(
          left.filter((l) => /sleep 1004/.test(l)),
          [],
        );
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

suite('engine server: terminal messages over stdio (real engine)', function () {
  this.timeout(90_000);
  let server: ChildProcess;
  let connection: ProtocolConnection;
  let folder: string;
  const output = new Map<string, string>();
  const exits = new Map<string, number | null>();
  let notifications = 0;

  const waitFor = async (what: string, check: () => boolean, ms = 20_000): Promise<void> => {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}; output: ${JSON.stringify(Object.fromEntries(output))}`);
      await delay(50);
    }
  };
  const open = (terminalId: string, extra: Partial<TerminalOpenRequest.Params> = {}) =>
    connection.sendRequest(TerminalOpenRequest.type, { folder, terminalId, cols: 100, rows: 30, ...extra });
  const type = (terminalId: string, data: string) =>
    connection.sendNotification(TerminalInputNotification.method, { terminalId, data } satisfies TerminalInputNotification.Params);

  suiteSetup(async () => {
    folder = mkdtempSync(path.join(os.tmpdir(), 'as-terminal-'));
    writeFileSync(path.join(folder, 'note.txt'), 'v1\n');
    ({ process: server, connection } = await startEngineServer({
      box: { image: TEST_IMAGES.node, memoryMiB: 256, idleTimeoutMinutes: 0 },
      beforeListen: (c) => {
        c.onNotification(TerminalOutputNotification.type, (p: TerminalOutputNotification.Params) => {
          notifications++;
          output.set(p.terminalId, (output.get(p.terminalId) ?? '') + p.data);
        });
        c.onNotification(TerminalExitNotification.type, (p: TerminalExitNotification.Params) => {
          exits.set(p.terminalId, p.exitCode);
        });
      },
    }));
  });

  suiteTeardown(async () => {
    try {
      await connection?.sendRequest(ResetRequest.type, {});
    } finally {
      connection?.dispose();
      server?.kill();
      if (folder) rmSync(folder, { recursive: true, force: true });
    }
  });

  test('a terminal sees host edits made before it opened, shares the box with other terminals, and reports its exit', async () => {
    const first = await open('t1');
    assert.match(first.shell, /\/bash$/);
    assert.equal(first.policy.network, 'none');
    assert.equal(first.image.reference, TEST_IMAGES.node);
    type('t1', 'echo from-t1 > shared.txt; echo written\r');
    await waitFor('t1 to write', () => /written/.test(output.get('t1') ?? ''));

    writeFileSync(path.join(folder, 'note.txt'), 'v2 from the host\n');
    const second = await open('t2');
    assert.deepEqual(second.caughtUp, ['note.txt'], 'the catch-up ran before the shell started');
    type('t2', 'cat note.txt shared.txt; exit 4\r');
    await waitFor('t2 to exit', () => exits.has('t2'));
    assert.match(output.get('t2') ?? '', /v2 from the host[\s\S]*from-t1/);
    assert.equal(exits.get('t2'), 4);
    // Output is batched: far fewer notifications than the bytes a shell writes one at a time.
    assert.ok(notifications < (output.get('t1')!.length + output.get('t2')!.length) / 2, `${notifications} notifications`);

    type('t1', 'sleep 1005 &\r');
    await delay(500);
    assert.equal(await connection.sendRequest(TerminalCloseRequest.type, { terminalId: 't1' }), true);
    assert.ok(exits.has('t1'), 'the exit was reported before close resolved');
    assert.equal(await connection.sendRequest(TerminalCloseRequest.type, { terminalId: 't1' }), false, 'a closed terminal is gone');
    const ps = await connection.sendRequest(ExecRequest.type, { folder, command: 'ps -o args' });
    assert.doesNotMatch(ps.stdout, /sleep 1005|bash -i/);
  });

  test('a command whose program the image lacks is refused before anything starts, naming the image setting', async () => {
    await assert.rejects(
      open('t3', { command: 'no-such-agent --yolo' }),
      (error: { message: string; data?: { reason?: string; setting?: string } }) => {
        assert.equal(error.data?.reason, 'not-found');
        assert.equal(error.data?.setting, 'agentSandbox.image');
        assert.match(error.message, /has no "no-such-agent"/);
        return true;
      },
    );
    assert.equal(exits.has('t3'), false);
  });
});
