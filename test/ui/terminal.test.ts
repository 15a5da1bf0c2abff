// UI tier: the sandboxed terminal as a person sees it in a real browser on the real workbench — opened from
// the command palette, a prompt inside the box, a command typed on the keyboard, and its file pending in the
// review. Screenshots stay in test-results/.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useWorkbench, type Workbench } from './workbench';

suite('UI: the sandboxed terminal in the browser workbench', function () {
  this.timeout(300_000);
  const workbench = useWorkbench('terminal');
  let wb: Workbench;
  setup(() => {
    wb = workbench();
  });

  test('Open Sandboxed Terminal shows a prompt inside the box; what is typed there comes back for review', async () => {
    const { page } = wb;
    // The DOM renderer keeps the terminal's text in the page, where the test can read it (the GPU one draws pixels).
    const settingsFile = path.join(wb.dirs.workspace, '.vscode', 'settings.json');
    const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
    fs.writeFileSync(settingsFile, JSON.stringify({ ...settings, 'terminal.integrated.gpuAcceleration': 'off' }, null, 2));
    await page.waitForTimeout(1_000);
    await wb.runFromPalette('Agent Sandbox: Open Sandboxed Terminal');
    const terminal = page.locator('.terminal-wrapper .xterm').first();
    await terminal.waitFor({ state: 'visible', timeout: 60_000 });
    const screen = async () =>
      (
        (await page
          .locator('.terminal-wrapper .xterm-rows')
          .first()
          .innerText()
          .catch(() => '')) ?? ''
      ).replace(/\u00a0/g, ' ');
    for (const deadline = Date.now() + 120_000; !/bash-[0-9.]+\$/.test(await screen());) {
      if (Date.now() > deadline) assert.fail(`no prompt from the box in the terminal: ${JSON.stringify(await screen())}`);
      await page.waitForTimeout(250);
    }
    assert.match(await screen(), /no network/, 'the first lines say the box has no network');
    await terminal.click();
    await page.keyboard.type('echo "in the box as $(id -u) in $PWD" > ui-terminal.txt; cat ui-terminal.txt');
    await page.keyboard.press('Enter');
    for (const deadline = Date.now() + 30_000; !/in the box as 1000 in \/workspace/.test(await screen());) {
      if (Date.now() > deadline) assert.fail(`the command's output did not appear: ${JSON.stringify(await screen())}`);
      await page.waitForTimeout(250);
    }
    await page.mouse.move(640, 200);
    await wb.screenshot('terminal');

    await page.keyboard.type('exit');
    await page.keyboard.press('Enter');
    // Like any VS Code terminal whose shell exits, it closes; its changes were collected before that.
    await page.locator('.terminal-wrapper .xterm-rows').first().waitFor({ state: 'detached', timeout: 60_000 });
    await wb.runFromPalette('Agent Sandbox: Review Pending Changes');
    await page.locator('.scm-view .monaco-list-row', { hasText: 'ui-terminal.txt' }).first().waitFor({ state: 'visible', timeout: 120_000 });
    assert.equal(fs.existsSync(path.join(wb.dirs.workspace, 'ui-terminal.txt')), false, 'nothing reached the workspace');
    await wb.screenshot('terminal-pending');
  });

  test("picked from the terminal panel's profile menu next to a host terminal, the sandboxed terminal is the one typed into", async () => {
    const { page } = wb;
    const settingsFile = path.join(wb.dirs.workspace, '.vscode', 'settings.json');
    const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
    fs.writeFileSync(settingsFile, JSON.stringify({ ...settings, 'terminal.integrated.gpuAcceleration': 'off' }, null, 2));
    await page.waitForTimeout(1_000);
    // A host shell first, as a user usually has one open.
    await wb.runFromPalette('Terminal: Create New Terminal');
    await page.locator('.terminal-wrapper .xterm').first().waitFor({ state: 'visible', timeout: 60_000 });
    await page.waitForTimeout(2_000);
    // The panel's "+" dropdown lists the contributed profile.
    await page.locator('.panel .action-item .codicon-chevron-down, .panel [aria-label^="Launch Profile"]').first().click();
    await page.locator('.context-view .action-label', { hasText: 'Agent Sandbox' }).first().click();
    await page.waitForTimeout(500);
    // What the user types next must land in the box, without clicking anything first.
    const activeScreen = async () =>
      (
        (await page
          .locator('.terminal-wrapper.active .xterm-rows')
          .first()
          .innerText()
          .catch(() => '')) ?? ''
      ).replace(/\u00a0/g, ' ');
    for (const deadline = Date.now() + 120_000; !/bash-[0-9.]+\$/.test(await activeScreen());) {
      if (Date.now() > deadline) {
        await wb.screenshot('terminal-profile-failure');
        assert.fail(`the active terminal shows no prompt from the box: ${JSON.stringify(await activeScreen())}`);
      }
      await page.waitForTimeout(250);
    }
    await page.keyboard.type('echo "uid=$(id -u)"');
    await page.keyboard.press('Enter');
    for (const deadline = Date.now() + 30_000; !/uid=1000/.test(await activeScreen());) {
      if (Date.now() > deadline) assert.fail(`what was typed did not run in the box: ${JSON.stringify(await activeScreen())}`);
      await page.waitForTimeout(250);
    }
    const allScreens = (await page.locator('.terminal-wrapper .xterm-rows').allInnerTexts()).join('\n');
    assert.doesNotMatch(allScreens, /uid=0/, 'nothing typed ran in the host shell');
    await page.mouse.move(640, 200);
    await wb.screenshot('terminal-profile');
  });
});
