// UI tier: the first five minutes, before any run — what a new user can find on the workbench: the status bar
// item saying there is no box, the folder's Agent Sandbox entry in Source Control with its first actions, and
// the Get Started walkthrough. Screenshots stay in test-results/.
import * as assert from 'node:assert/strict';
import { useWorkbench, type Workbench } from './workbench';

suite('UI: before the first run', function () {
  this.timeout(300_000);
  const workbench = useWorkbench('first-run');
  let wb: Workbench;
  setup(() => {
    wb = workbench();
  });

  test('the status bar says "no box", Source Control has the folder\'s entry with its first actions', async () => {
    const { page } = wb;
    const status = page.locator('.statusbar-item', { hasText: 'Sandbox: no box' }).first();
    await status.waitFor({ state: 'visible', timeout: 60_000 });
    await status.click();
    const scm = page.locator('.scm-view');
    await scm.waitFor({ state: 'visible', timeout: 30_000 });
    // With one provider VS Code shows its groups directly; the title holds the provider's actions.
    await page.locator('.scm-view .monaco-list-row', { hasText: 'Pending' }).first().waitFor({ state: 'visible', timeout: 30_000 });
    for (const action of ['Run Command in Sandbox', 'Open Sandboxed Terminal']) {
      const button = page
        .locator(`.part.sidebar .title-actions .action-label[aria-label*="${action}"], .scm-provider .action-label[aria-label*="${action}"]`)
        .first();
      await button.waitFor({ state: 'visible', timeout: 30_000 }).catch(() => assert.fail(`no "${action}" button in the Source Control view`));
    }
    await page.mouse.move(640, 700);
    await wb.screenshot('first-run-scm');
  });

  test('the Get Started walkthrough walks through engine, image, first run, review, terminal and agent tools', async () => {
    const { page } = wb;
    await wb.runFromPalette('Welcome: Open Walkthrough...');
    await page.locator('.quick-input-widget input').fill('Agent Sandbox');
    const pick = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Get Started with Agent Sandbox' }).first();
    await pick.waitFor({ state: 'visible', timeout: 30_000 });
    await page.keyboard.press('Enter');
    const steps = page.locator('.getting-started-step');
    await steps.first().waitFor({ state: 'visible', timeout: 30_000 });
    const titles = (await steps.locator('.step-title').allInnerTexts()).map((t) => t.trim());
    assert.deepEqual(titles, [
      'Check the Docker engine',
      "Get the box's image",
      'Run a command in the box',
      'Review what it changed',
      'Open a terminal in the box',
      'Let agents act in the box',
    ]);
    await page
      .locator('.getting-started-step .step-description-container a, .getting-started-step .button-link', { hasText: 'Check Docker Engine' })
      .first()
      .waitFor({ state: 'visible', timeout: 30_000 });
    await wb.screenshot('first-run-walkthrough');
  });
});
