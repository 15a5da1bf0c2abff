// The UI tier's handle on a real browser workbench: VS Code's server build with the extension under
// development loaded (no test runner inside), opened in headless Chromium, driven as a person would.
import * as assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  freePort,
  killTree,
  launchChromium,
  missingWorkbench,
  offlineContext,
  prepareWorkbenchDirs,
  resultsDir,
  root,
  startServer,
  waitForServer,
  type WorkbenchDirs,
} from '../host/runInCodeServer';
import { removeCachesUnder } from '../engine/cacheHarness';

export interface Workbench {
  page: Page;
  dirs: WorkbenchDirs;
  /** Browser console errors and requests that were blocked. */
  consoleErrors: string[];
  /** Screenshot into test-results/ui-<name>.png; returns the path. */
  screenshot(name: string): Promise<string>;
  /** Runs a command from the command palette by its title (waits until the extension's commands exist). */
  runFromPalette(title: string): Promise<void>;
  /** Agent Sandbox: Reset Sandbox from the palette, discarding pending changes, while the window is alive. */
  resetSandbox(): Promise<void>;
  close(): Promise<void>;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Starts the server and the browser on a fresh copy of the fixture workspace; `logName` names the server log. */
export async function openWorkbench(logName: string): Promise<Workbench> {
  const missing = missingWorkbench();
  if (missing) throw new Error(missing);
  assert.ok(process.env.DOCKER_HOST, 'DOCKER_HOST is not set: run the tier through scripts/run-tests.mjs, which provisions the engine');
  fs.mkdirSync(resultsDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-ui-'));
  const dirs = prepareWorkbenchDirs(tmp);
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const serverLog: string[] = [];
  const consoleErrors: string[] = [];
  const server: ChildProcess = startServer(port, tmp, dirs);
  const collect = (chunk: Buffer) => serverLog.push(...chunk.toString('utf8').split('\n').filter(Boolean));
  server.stdout?.on('data', collect);
  server.stderr?.on('data', collect);
  let browser: Browser | undefined;
  const close = async () => {
    fs.writeFileSync(path.join(resultsDir, `ui-${logName}-server.log`), serverLog.join('\n') + '\n');
    await browser?.close().catch(() => undefined);
    killTree(server);
    // The workbench runs the product's defaults: its boxes' package caches go with its folder.
    removeCachesUnder(tmp);
    fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    await waitForServer(`${origin}/version`, server, () => serverLog.join('\n'));
    browser = await launchChromium();
    const context = await offlineContext(browser, (url) => consoleErrors.push(`blocked a request beyond loopback: ${url}`), {
      width: 1280,
      height: 860,
    });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    const remote = (p: string) => `vscode-remote://127.0.0.1:${port}${p.split(path.sep).join('/')}`;
    const payload = [
      ['extensionDevelopmentPath', remote(root)],
      ['skipWelcome', 'true'],
      ['skipReleaseNotes', 'true'],
    ];
    const url = `${origin}/?folder=${encodeURIComponent(dirs.workspace.split(path.sep).join('/'))}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60_000 });
    await page.locator('.statusbar').waitFor({ state: 'visible', timeout: 60_000 });

    const runFromPalette = async (title: string): Promise<void> => {
      const input = page.locator('.quick-input-widget input');
      const row = page
        .locator('.quick-input-widget .monaco-list-row')
        .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(title)}…?$`) }) })
        .first();
      const deadline = Date.now() + 60_000;
      for (;;) {
        await page.keyboard.press('F1');
        try {
          // A webview (the history panel) or a just-opened editor can hold focus in its own frame and swallow
          // the key: move focus back to the workbench's document and press again.
          await input.waitFor({ state: 'visible', timeout: 5_000 });
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await page.evaluate('document.activeElement && document.activeElement.blur()');
          continue;
        }
        await input.fill(`>${title}`);
        try {
          await row.waitFor({ state: 'visible', timeout: 5_000 });
          break;
        } catch (error) {
          await page.keyboard.press('Escape');
          if (Date.now() > deadline) throw error;
        }
      }
      await row.click();
    };
    const screenshot = async (name: string) => {
      const file = path.join(resultsDir, `ui-${name}.png`);
      await page.screenshot({ path: file });
      return file;
    };
    const resetSandbox = async () => {
      if (page.isClosed()) return;
      await runFromPalette('Agent Sandbox: Reset Sandbox');
      const discard = page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Reset and Discard Changes' });
      // The dialog (only with pending changes) comes a moment after the command; isVisible would not wait for it.
      if (
        await discard.waitFor({ state: 'visible', timeout: 5_000 }).then(
          () => true,
          () => false,
        )
      )
        await discard.click();
      await page
        .locator('.statusbar', { hasText: 'box removed' })
        .waitFor({ timeout: 30_000 })
        .catch(() => undefined);
    };
    return { page, dirs, consoleErrors, runFromPalette, resetSandbox, screenshot, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * Registers the hooks every UI suite needs: a workbench opened before the suite, a screenshot of each failed
 * test (`ui-<name>-failure.png`), and a sandbox reset plus cleanup after. Returns the workbench's getter.
 */
export function useWorkbench(name: string): () => Workbench {
  let wb: Workbench | undefined;
  suiteSetup(async () => {
    wb = await openWorkbench(name);
  });
  teardown(async function () {
    if (this.currentTest?.state === 'failed' && wb && !wb.page.isClosed()) {
      await wb.screenshot(`${name}-failure`).catch(() => undefined);
    }
  });
  suiteTeardown(async () => {
    if (!wb) return;
    try {
      await wb.resetSandbox().catch(() => undefined);
    } finally {
      await wb.close();
    }
  });
  return () => {
    assert.ok(wb, 'the workbench did not open (see the suite setup error)');
    return wb;
  };
}
