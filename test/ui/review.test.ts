// UI tier: what a person sees of the review — a pending file in the Source Control view, its diff editor, and
// the Accept button — in a real browser on the real workbench. Screenshots stay in test-results/.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Locator } from 'playwright-core';
import { useWorkbench, type Workbench } from './workbench';

/** Waits until an editor draws a decoration whose text (CSS generated content, not DOM text) holds `text`. */
async function waitForHint(editor: Locator, text: string): Promise<void> {
  for (const deadline = Date.now() + 30_000; ;) {
    const drawn = await editor
      .locator('.view-line span')
      .evaluateAll((spans) =>
        spans.map((span) => span.ownerDocument.defaultView!.getComputedStyle(span, '::after').content).filter((c) => c && c !== 'none'),
      );
    if (drawn.some((c) => c.includes(text))) return;
    if (Date.now() > deadline) assert.fail(`no decoration reading "${text}" is drawn; drawn: ${JSON.stringify(drawn)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

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
    // The file is created, then its text written: wait for the text.
    for (const deadline = Date.now() + 30_000; !fs.existsSync(target) || fs.readFileSync(target, 'utf8') === '';) {
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
    for (const deadline = Date.now() + 60_000; !fs.existsSync(target) || fs.readFileSync(target, 'utf8') === '';) {
      if (Date.now() > deadline) assert.fail('Accept after the reload did not write after-reload.txt');
      await page.waitForTimeout(100);
    }
    assert.equal(fs.readFileSync(target, 'utf8'), 'kept\n');
  });

  test("with VS Code's default settings, one hunk is accepted by mouse and another rejected by keyboard", async () => {
    const { page } = wb;
    const name = 'two-hunks.txt';
    const target = path.join(wb.dirs.workspace, name);
    const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
    fs.writeFileSync(target, lines.join('\n') + '\n');
    await wb.runFromPalette('Agent Sandbox: Run Command in Sandbox');
    await page.locator('.quick-input-widget', { hasText: 'Run Command in Sandbox' }).waitFor({ state: 'visible' });
    await page
      .locator('.quick-input-widget input')
      .fill(`sed -i -e 's/^line 3$/line 3 from the box/' -e 's/^line 27$/line 27 from the box/' ${name}`);
    await page.keyboard.press('Enter');
    await wb.runFromPalette('Agent Sandbox: Review Pending Changes');
    const row = page.locator('.scm-view .monaco-list-row', { hasText: name }).first();
    await row.waitFor({ state: 'visible', timeout: 120_000 });
    await row.click();
    const modified = page.locator('.monaco-diff-editor .modified');
    await modified.locator('.view-line', { hasText: 'line 3 from the box' }).first().waitFor({ timeout: 30_000 });

    // Drawn with the defaults (no diffEditor.codeLens): a hint on each hunk and the title bar's hunk actions.
    await waitForHint(modified, 'hunk 1/2');
    await page.locator('.editor-actions .action-label[aria-label*="Accept Hunk"]').first().waitFor({ state: 'visible', timeout: 30_000 });
    await page.mouse.move(640, 700);
    await wb.screenshot('review-hunks');

    // Mouse: click into the first hunk, then the title bar's Accept Hunk.
    await modified.locator('.view-line', { hasText: 'line 3 from the box' }).first().click();
    await page.locator('.editor-actions .action-label[aria-label*="Accept Hunk"]').first().click();
    for (const deadline = Date.now() + 30_000; !fs.readFileSync(target, 'utf8').includes('line 3 from the box');) {
      if (Date.now() > deadline) assert.fail('Accept Hunk did not write the first hunk');
      await page.waitForTimeout(100);
    }
    assert.ok(!fs.readFileSync(target, 'utf8').includes('line 27 from the box'), 'the other hunk is still only proposed');

    // Keyboard: to the next change (the remaining hunk, below the fold), then reject it.
    await modified.locator('.view-line').first().click();
    await page.keyboard.press('Control+Home');
    await page.keyboard.press('Alt+F5');
    await waitForHint(modified, 'hunk 1/1');
    await page.keyboard.press('Control+Alt+N');
    await row.waitFor({ state: 'detached', timeout: 60_000 });
    const expected = lines.map((l) => (l === 'line 3' ? 'line 3 from the box' : l)).join('\n') + '\n';
    assert.equal(fs.readFileSync(target, 'utf8'), expected, 'the accepted hunk is in, the rejected one is not');
    // The decided file's tab closed with its last hunk.
    await page.locator('.monaco-diff-editor').first().waitFor({ state: 'detached', timeout: 30_000 });
    await wb.screenshot('review-hunks-decided');
  });
});
