// UI tier: what a person sees of the review — a pending file in the Source Control view, its diff editor, and
// the Accept button — in a real browser on the real workbench. Screenshots stay in test-results/.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useWorkbench, type Workbench } from './workbench';

suite('UI: reviewing a pending change in the browser workbench', function () {
  this.timeout(300_000);
  const workbench = useWorkbench('review');
  let wb: Workbench;
  setup(() => {
    wb = workbench();
  });

  test('a run in the box lists its file as pending; clicking it shows the diff; Accept writes it', async () => {
    const { page } = wb;
    const target = path.join(wb.dirs.workspace, 'ui-review.txt');
    await wb.runFromPalette('Agent Sandbox: Run Command in Sandbox');
    await page.locator('.quick-input-widget', { hasText: 'Run Command in Sandbox' }).waitFor({ state: 'visible' });
    await page.locator('.quick-input-widget input').fill('printf "written in the box\\n" > ui-review.txt');
    await page.keyboard.press('Enter');

    await wb.runFromPalette('Agent Sandbox: Review Pending Changes');
    const row = page.locator('.scm-view .monaco-list-row', { hasText: 'ui-review.txt' }).first();
    await row.waitFor({ state: 'visible', timeout: 120_000 });
    assert.equal(fs.existsSync(target), false, 'nothing reaches the workspace before the decision');
    assert.match((await page.locator('.scm-view').textContent()) ?? '', /Pending/);

    await row.click();
    const diff = page.locator('.monaco-diff-editor').first();
    await diff.waitFor({ state: 'visible', timeout: 30_000 });
    await page.locator('.monaco-diff-editor .modified .view-line', { hasText: 'written in the box' }).first().waitFor({ timeout: 30_000 });
    await page.mouse.move(640, 700);
    await wb.screenshot('review-diff');

    const accept = page.locator('.editor-actions .action-label[aria-label*="Accept Change"]').first();
    await accept.waitFor({ state: 'visible', timeout: 30_000 });
    await accept.click();
    for (const deadline = Date.now() + 30_000; !fs.existsSync(target); ) {
      if (Date.now() > deadline) assert.fail('Accept did not write ui-review.txt');
      await page.waitForTimeout(100);
    }
    assert.equal(fs.readFileSync(target, 'utf8'), 'written in the box\n');
    await row.waitFor({ state: 'detached', timeout: 30_000 });
    await diff.waitFor({ state: 'detached', timeout: 30_000 });
    await wb.screenshot('review-accepted');
  });

  test('pending changes survive a window reload and can still be accepted', async () => {
    const { page } = wb;
    const target = path.join(wb.dirs.workspace, 'after-reload.txt');
    await wb.runFromPalette('Agent Sandbox: Run Command in Sandbox');
    await page.locator('.quick-input-widget', { hasText: 'Run Command in Sandbox' }).waitFor({ state: 'visible' });
    await page.locator('.quick-input-widget input').fill('echo kept > after-reload.txt');
    await page.keyboard.press('Enter');
    await wb.runFromPalette('Agent Sandbox: Review Pending Changes');
    await page.locator('.scm-view .monaco-list-row', { hasText: 'after-reload.txt' }).first().waitFor({ state: 'visible', timeout: 120_000 });

    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60_000 });
    await wb.runFromPalette('Agent Sandbox: Review Pending Changes');
    const row = page.locator('.scm-view .monaco-list-row', { hasText: 'after-reload.txt' }).first();
    await row.waitFor({ state: 'visible', timeout: 60_000 });
    await wb.screenshot('review-after-reload');
    await row.hover();
    await row.locator('.action-label[aria-label*="Accept Change"]').click();
    for (const deadline = Date.now() + 60_000; !fs.existsSync(target); ) {
      if (Date.now() > deadline) assert.fail('Accept after the reload did not write after-reload.txt');
      await page.waitForTimeout(100);
    }
    assert.equal(fs.readFileSync(target, 'utf8'), 'kept\n');
  });
});
