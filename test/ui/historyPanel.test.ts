// UI tier: a real browser on the real VS Code workbench (VS Code's server build, the extension loaded as
// extensionDevelopmentPath, no test runner inside), driven like a person would: the command palette, the
// Run History panel's webview, the save dialog. Screenshots in dark, light and high-contrast themes are kept
// in test-results/ as artifacts.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import type { HistoryExport } from '../../src/core/history/historyRecord';
import { resultsDir, root } from '../host/runInCodeServer';
import { connectTestEngine, TEST_IMAGES } from '../engine/engineHarness';
import { useWorkbench, type Workbench } from './workbench';

const shot = (name: string) => path.join(resultsDir, `ui-${name}.png`);

suite('UI: Run History panel in the browser workbench', function () {
  this.timeout(300_000);
  const workbench = useWorkbench('history');
  let wb: Workbench;
  let page: Page;
  let tmp: string;
  const runFromPalette = (title: string) => wb.runFromPalette(title);

  /** The panel's document: the workbench's webview iframe, then the webview's own active frame. */
  const panel = (): FrameLocator => page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');

  /**
   * Runs `command` through "Agent Sandbox: Run Command in Sandbox…" and waits until the panel shows it ended
   * as the newest run. (The workbench holds notification toasts back while the headless window has no focus,
   * so the panel, not a toast, says when the run is over.)
   */
  async function runInSandbox(command: string, options: { expectRunning?: boolean } = {}): Promise<void> {
    const before = await panel().locator('[role="option"]').count();
    await runFromPalette('Agent Sandbox: Run Command in Sandbox');
    const input = page.locator('.quick-input-widget input');
    await page.locator('.quick-input-widget', { hasText: 'Run Command in Sandbox' }).waitFor({ state: 'visible' });
    await input.fill(command);
    await page.keyboard.press('Enter');
    const newest = panel().locator('[role="option"]').first();
    let sawRunning = false;
    let nextShow = 0;
    for (const until = Date.now() + 120_000; ;) {
      // The run shows its output channel, which takes the panel area: bring the history back each time.
      if (
        !(await panel()
          .locator('[role="listbox"]')
          .isVisible()
          .catch(() => false)) &&
        Date.now() > nextShow
      ) {
        await runFromPalette('Agent Sandbox: Show Run History');
        nextShow = Date.now() + 5_000;
      }
      const count = await panel().locator('[role="option"]').count();
      const outcome = count > before ? await newest.getAttribute('data-outcome').catch(() => null) : null;
      if (outcome === 'running' && (await newest.locator('.codicon-loading').count()) === 1) sawRunning = true;
      if (outcome && outcome !== 'running') break;
      if (Date.now() > until) assert.fail(`the run of ${command} did not end in the panel`);
      await page.waitForTimeout(100);
    }
    if (options.expectRunning) assert.ok(sawRunning, 'the run appeared while it ran, with the spinning icon');
    assert.equal(await newest.locator('.run-command').textContent(), command);
  }

  /** Brings the Run History view to the front (a run's output channel or review may have taken the panel area). */
  async function showHistory(): Promise<void> {
    if (
      await panel()
        .locator('[role="listbox"]')
        .isVisible()
        .catch(() => false)
    )
      return;
    await runFromPalette('Agent Sandbox: Show Run History');
    await panel().locator('[role="listbox"]').waitFor({ state: 'visible', timeout: 30_000 });
  }

  async function setTheme(name: string): Promise<void> {
    await runFromPalette('Preferences: Color Theme');
    const input = page.locator('.quick-input-widget input');
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Dark' }).first().waitFor({ state: 'visible' });
    await input.fill(name);
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first().waitFor({ state: 'visible' });
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
    // No hover tooltip in the screenshots.
    await page.mouse.move(200, 600);
    await page.waitForTimeout(800);
  }

  suiteSetup(() => {
    assert.ok(fs.existsSync(path.join(root, 'media', 'history.js')), 'media/history.js is missing: run `npm run build`');
    for (const name of ['dark', 'light', 'high-contrast', 'panel']) fs.rmSync(shot(name), { force: true });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-ui-export-'));
    wb = workbench();
    page = wb.page;
  });

  suiteTeardown(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
  });

  test('Show Run History opens the panel in the Agent Sandbox panel container', async () => {
    await runFromPalette('Agent Sandbox: Show Run History');
    await page.locator('.part.panel .composite-bar', { hasText: 'Agent Sandbox' }).waitFor({ state: 'visible', timeout: 30_000 });
    await panel().locator('.empty', { hasText: 'No runs yet' }).waitFor({ state: 'visible', timeout: 30_000 });
  });

  test('commands run from the command palette appear live, newest first, with status icons', async () => {
    await runInSandbox('sleep 6; echo hello from the box', { expectRunning: true });
    await runInSandbox("printf 'one\\ntwo\\n' > ui-made.txt && echo made");
    await runInSandbox('echo broken >&2; exit 4');
    const rows = panel().locator('[role="option"]');
    assert.equal(await rows.count(), 3);
    const commands = await panel().locator('[role="option"] .run-command').allTextContents();
    assert.deepEqual(commands, ['echo broken >&2; exit 4', "printf 'one\\ntwo\\n' > ui-made.txt && echo made", 'sleep 6; echo hello from the box']);
    assert.deepEqual(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-outcome'))), ['failed', 'succeeded', 'succeeded']);
    assert.equal(await rows.first().locator('.codicon-error').count(), 1, 'the failed run shows the error icon');
    assert.equal(await rows.nth(1).locator('.codicon-pass').count(), 1, 'a run that exited with 0 shows the pass icon');
    assert.match((await rows.first().getAttribute('aria-label')) ?? '', /exit 4/, 'screen readers hear the outcome');
    // The codicon font loaded from media/ (no CDN): the icon glyph has a width.
    const iconWidth = await rows
      .first()
      .locator('.codicon-error')
      .evaluate((e) => e.getBoundingClientRect().width);
    assert.ok(iconWidth >= 12, `codicon width ${iconWidth}`);
  });

  test('the text filter and the outcome filter narrow the list', async () => {
    await showHistory();
    const filter = panel().locator('input.filter-input');
    await filter.fill('hello');
    await panel().locator('[role="option"]').nth(1).waitFor({ state: 'detached' });
    assert.deepEqual(await panel().locator('[role="option"] .run-command').allTextContents(), ['sleep 6; echo hello from the box']);
    assert.equal(await panel().locator('.count').textContent(), '1 of 3 runs');
    await filter.fill('');
    await panel().locator('select.outcome-filter').selectOption('failed');
    assert.deepEqual(await panel().locator('[role="option"] .run-command').allTextContents(), ['echo broken >&2; exit 4']);
    await panel().locator('select.outcome-filter').selectOption('all');
    assert.equal(await panel().locator('[role="option"]').count(), 3);
  });

  test('arrow keys move through the runs and Enter opens the details', async () => {
    await showHistory();
    const list = panel().locator('[role="listbox"]');
    await list.focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    const selected = panel().locator('[role="option"][aria-selected="true"] .run-command');
    assert.equal(await selected.textContent(), "printf 'one\\ntwo\\n' > ui-made.txt && echo made");
    await page.keyboard.press('Enter');
    const detail = panel().locator('.run-detail');
    assert.equal(await detail.evaluate((e) => e === e.ownerDocument.activeElement), true, 'Enter moves focus into the details');
    assert.equal(await detail.locator('.detail-command').textContent(), "printf 'one\\ntwo\\n' > ui-made.txt && echo made");
    const facts = await detail.locator('dl.facts').innerText();
    assert.match(facts, /Image\s+agent-sandbox-test\/node\s+sha256:[0-9a-f]{12}/);
    assert.match(facts, /Policy\s+network none · user 1000:1000/);
    assert.match((await detail.locator('.output.stdout pre').textContent()) ?? '', /^made\n?$/);
    const file = detail.locator('.file-row');
    assert.equal(await file.count(), 1);
    assert.match(await file.innerText(), /A\s+ui-made\.txt\s+\+2\s+−0\s+pending/);
  });

  test("a file's diff opens from the details", async () => {
    await showHistory();
    await panel().locator('.file-row .link-button', { hasText: 'ui-made.txt' }).click();
    await page.locator('.tabs-container .tab', { hasText: 'ui-made.txt' }).first().waitFor({ state: 'visible', timeout: 20_000 });
    await page.locator('.monaco-diff-editor').first().waitFor({ state: 'visible' });
    await runFromPalette('View: Close All Editors');
  });

  test('export writes the history as valid JSON through the save dialog', async () => {
    await showHistory();
    const target = path.join(tmp, 'exported-history.json');
    await panel().locator('button[data-action="export"]').click();
    const input = page.locator('.quick-input-widget input');
    await page.locator('.quick-input-widget', { hasText: 'Export Run History' }).waitFor({ state: 'visible', timeout: 20_000 });
    // The simple file dialog fills in the default path asynchronously; type over it only once it is there.
    for (const until = Date.now() + 10_000; !(await input.inputValue()).endsWith('.json') && Date.now() < until;) await page.waitForTimeout(100);
    await input.fill(target);
    await page.waitForTimeout(300);
    assert.equal(await input.inputValue(), target);
    await page.keyboard.press('Enter');
    const deadline = Date.now() + 20_000;
    while (!fs.existsSync(target) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const exported = JSON.parse(fs.readFileSync(target, 'utf8')) as HistoryExport;
    assert.equal(exported.format, 'agent-sandbox-run-history');
    assert.deepEqual(
      exported.records.map((r) => [r.command, r.outcome, r.exitCode]),
      [
        ['echo broken >&2; exit 4', 'exited', 4],
        ["printf 'one\\ntwo\\n' > ui-made.txt && echo made", 'exited', 0],
        ['sleep 6; echo hello from the box', 'exited', 0],
      ],
    );
    assert.deepEqual(
      exported.records[1].files.map((f) => [f.path, f.kind, f.added]),
      [['ui-made.txt', 'added', 2]],
    );
  });

  test("a decided file's tab from the history shows what the box proposed next to what was decided, and cannot change the workspace", async () => {
    const made = path.join(wb.dirs.workspace, 'ui-made.txt');
    await runFromPalette('Agent Sandbox: Reject All Changes');
    await page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Reject All' }).click();
    await showHistory();
    await panel().locator('[role="option"]').nth(1).click();
    await panel().locator('.file-row', { hasText: 'rejected' }).waitFor({ state: 'visible', timeout: 30_000 });
    await panel().locator('.file-row .link-button', { hasText: 'ui-made.txt' }).click();
    const tab = page.locator('.tabs-container .tab', { hasText: 'box proposed ↔ rejected' }).first();
    await tab.waitFor({ state: 'visible', timeout: 20_000 });
    const diff = page.locator('.monaco-diff-editor').first();
    await diff.locator('.editor.original .view-line', { hasText: 'two' }).first().waitFor({ timeout: 20_000 });
    await wb.screenshot('history-decided-diff');
    // Type into both sides, and try VS Code's own actions on a diff (revert a block, save): nothing may reach
    // the workspace, where the rejected file does not exist. (Save on a read-only document offers Save As,
    // which writes only where the person then chooses: dismissed here.)
    for (const side of ['original', 'modified']) {
      await diff.locator(`.editor.${side} .view-lines`).first().click();
      await page.keyboard.type('typed into the decided tab');
      await page.keyboard.press('Control+S');
      const saveAs = page.locator('.quick-input-widget', { hasText: 'Save As' });
      if (
        await saveAs.waitFor({ state: 'visible', timeout: 3_000 }).then(
          () => true,
          () => false,
        )
      ) {
        await page.keyboard.press('Escape');
        await saveAs.waitFor({ state: 'hidden' });
      }
    }
    const revert = diff.locator('.codicon-arrow-right, .codicon-discard').first();
    if (await revert.isVisible().catch(() => false)) await revert.click();
    await page.waitForTimeout(1_000);
    await wb.screenshot('history-decided-diff-typed');
    assert.equal(fs.existsSync(made), false, 'the decided tab wrote the workspace');
    assert.equal(await page.locator('.tabs-container .tab.dirty').count(), 0, 'the decided tab became editable');
    assert.ok(!(await diff.innerText()).includes('typed into the decided tab'), 'the decided tab took the typing');
    await runFromPalette('View: Close All Editors');
  });

  test('screenshots in dark, light and high-contrast themes; no CSP violation', async () => {
    await runFromPalette('Notifications: Clear All Notifications');
    await setTheme('Dark Modern');
    await runFromPalette('View: Toggle Maximized Panel');
    await showHistory();
    await panel().locator('[role="option"]').nth(1).click();
    await panel().locator('.file-row').waitFor({ state: 'visible' });
    await page.mouse.move(200, 600);
    await page.waitForTimeout(500);
    await page.screenshot({ path: shot('dark') });
    await page.locator('.part.panel').screenshot({ path: shot('panel') });
    await setTheme('Light Modern');
    await page.screenshot({ path: shot('light') });
    await setTheme('Dark High Contrast');
    await page.screenshot({ path: shot('high-contrast') });
    const background = await panel()
      .locator('body')
      .evaluate((e) => e.ownerDocument.defaultView!.getComputedStyle(e).color);
    assert.equal(background, 'rgb(255, 255, 255)', 'the panel follows the high-contrast theme');
    const csp = wb.consoleErrors.filter((e) => /Content Security Policy|Refused to (load|execute|apply)/i.test(e));
    assert.deepEqual(csp, [], 'the webview loads nothing its CSP forbids');
  });

  test('with an allowlist, a run shows what it contacted under its command, the details list each host, the filter finds it by host, and the review row tooltip says it', async () => {
    // The gateway sits on an internal network of this test's own and resolves through its own loopback: the
    // denied host is refused before any lookup, and nothing leaves the machine.
    const engine = await connectTestEngine();
    const networkName = `agent-sandbox-ui-egress-${process.pid}`;
    await engine.call('creating the test network', (d) =>
      d.createNetwork({ Name: networkName, Internal: true, Labels: { 'dev.agent-sandbox.test': 'ui-egress' } }),
    );
    const settingsFile = path.join(wb.dirs.userData, 'Machine', 'settings.json');
    const original = fs.readFileSync(settingsFile, 'utf8');
    try {
      fs.writeFileSync(
        settingsFile,
        JSON.stringify({
          ...(JSON.parse(original) as Record<string, unknown>),
          'agentSandbox.image': TEST_IMAGES.net,
          'agentSandbox.network': 'allowlist',
          'agentSandbox.allowedHosts': ['allowed.test:80'],
          'agentSandbox.gatewayImage': TEST_IMAGES.net,
          'agentSandbox.gatewayNetwork': networkName,
          'agentSandbox.gatewayDns': ['127.0.0.1'],
        }),
      );
      const command = 'curl -sS http://denied.test/ ; echo contacted > egress-made.txt';
      const egress = panel().locator('[role="option"]').first().locator('.run-egress');
      // The settings reach the extension, then its server, asynchronously: a box made after that has the gateway.
      for (let attempt = 0; ; attempt++) {
        await wb.resetSandbox();
        await runInSandbox(command);
        if ((await egress.count()) === 1) break;
        if (attempt >= 4) assert.fail('no run got an allowlisted box');
        await page.waitForTimeout(1_000);
      }
      await showHistory();
      assert.equal(await egress.textContent(), ' denied denied.test:80 ×1');
      assert.match((await panel().locator('[role="option"]').first().getAttribute('aria-label')) ?? '', /denied denied\.test:80 ×1$/);
      await panel().locator('[role="option"]').first().click();
      const network = panel().locator('.run-detail .egress');
      assert.equal(await network.locator('h3').textContent(), 'Network (1 host)');
      assert.equal(await network.locator('.egress-row.refused').textContent(), 'denied.test:80: 1 denied (not in the allowlist) · ↑ 0 B ↓ 0 B');
      assert.match(await panel().locator('.run-detail dl.facts').innerText(), /Policy\s+network allowlist/);
      await page.locator('.part.panel').screenshot({ path: shot('egress') });
      const filter = panel().locator('input.filter-input');
      await filter.fill('denied.test');
      for (const until = Date.now() + 10_000; (await panel().locator('.count').textContent())?.includes(' of ') !== true && Date.now() < until;)
        await page.waitForTimeout(100);
      const shown = await panel().locator('[role="option"] .run-command').allTextContents();
      assert.ok(shown.length >= 1 && shown.every((c) => c === command), JSON.stringify(shown));
      await filter.fill('');
      // The review says it too, next to the file's pending change: the row's tooltip names the run and its hosts.
      await runFromPalette('Agent Sandbox: Review Pending Changes');
      const row = page.locator('.scm-view .monaco-list-row', { hasText: 'egress-made.txt' }).first();
      await row.waitFor({ state: 'visible', timeout: 60_000 });
      // The tooltip the workbench shows on hover is the row's data-tooltip (the resource's decorations.tooltip).
      await row.hover();
      await page.screenshot({ path: shot('egress-review') });
      const tooltip = await row.locator('.resource').first().getAttribute('data-tooltip');
      assert.match(tooltip ?? '', /Changed by: curl -sS http:\/\/denied\.test\/ ; echo contacted > egress-made\.txt — denied denied\.test:80 ×1/);
    } finally {
      fs.writeFileSync(settingsFile, original);
      await wb.resetSandbox().catch(() => undefined);
      await engine.call('removing the test network', (d) => d.getNetwork(networkName).remove()).catch(() => undefined);
    }
  });
});
