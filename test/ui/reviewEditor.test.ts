// UI tier: the end of a run as a person meets it — the notification that waits for an answer, the multi-file
// Review editor it opens (badges A / D, no rename for a modified file) and that editor's own Accept — in a real
// browser on the real workbench with VS Code's default settings. Screenshots stay in test-results/.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useWorkbench, type Workbench } from './workbench';

/** What the Review editor's header says about each file: name, status letter, struck through, second name. */
interface EntryHeader {
  name: string;
  status: string;
  struck: boolean;
  original: string;
}

suite('UI: the run-end notification and the Review editor', function () {
  this.timeout(300_000);
  const workbench = useWorkbench('review-editor');
  let wb: Workbench;
  setup(() => {
    wb = workbench();
  });

  async function headers(): Promise<EntryHeader[]> {
    // The list recycles entries: only those laid out count.
    return wb.page.locator('.multiDiffEntry .file-path').evaluateAll((paths) =>
      paths
        .filter((p) => p.getClientRects().length > 0)
        .map((p) => ({
          name: (p.querySelector('.title.modified .label-name')?.textContent ?? '').trim(),
          status: (p.querySelector('.status')?.textContent ?? '').trim(),
          struck: !!p.querySelector('.title.modified .strikethrough, .title.modified .monaco-icon-label.strikethrough'),
          original: (p.querySelector('.title.original .label-name')?.textContent ?? '').trim(),
        })),
    );
  }

  async function waitForHeaders(names: string[]): Promise<EntryHeader[]> {
    for (const deadline = Date.now() + 30_000; ;) {
      // (A header can be drawn twice: the list's own and the one kept at the top while scrolling.)
      const found = [...new Map((await headers()).map((h) => [h.name, h])).values()];
      if (names.every((n) => found.some((h) => h.name === n)) && found.length === names.length) return found;
      if (Date.now() > deadline) assert.fail(`the Review editor shows ${JSON.stringify(found)}, expected ${names.join(', ')}`);
      await wb.page.waitForTimeout(250);
    }
  }

  test('the notification stays until answered; its Review opens the files with A / D badges; Accept there writes the file', async () => {
    const { page } = wb;
    const file = (name: string) => path.join(wb.dirs.workspace, name);
    fs.writeFileSync(file('edited.txt'), 'before\n');
    fs.writeFileSync(file('gone.txt'), 'delete me\n');
    await wb.runFromPalette('Agent Sandbox: Run Command in Sandbox');
    await page.locator('.quick-input-widget', { hasText: 'Run Command in Sandbox' }).waitFor({ state: 'visible' });
    await page.locator('.quick-input-widget input').fill("printf 'after\\n' > edited.txt && rm gone.txt && printf 'new\\n' > added.txt");
    await page.keyboard.press('Enter');

    // The workbench under test runs with the smoke-test driver (it is what loads the extension under
    // development), which draws no toasts: the notification is read in the notification center. What keeps a
    // toast on screen is VS Code's "sticky" rule — an active progress never times out — so that is checked.
    const notification = page.locator('.notifications-center .monaco-list-row', { hasText: '3 files changed in the box' }).first();
    const showNotifications = async () => {
      for (const deadline = Date.now() + 120_000; !(await notification.isVisible());) {
        if (Date.now() > deadline) assert.fail('no run-end notification');
        await wb.runFromPalette('Notifications: Show Notifications');
        await notification.waitFor({ state: 'visible', timeout: 5_000 }).catch(() => undefined);
      }
    };
    await showNotifications();
    await page.mouse.move(640, 300);
    await wb.screenshot('review-editor-notification');
    const askedAt = Date.now();
    // An ordinary information notification leaves the screen after 10 s (with its buttons); this one must not.
    await page.waitForTimeout(12_000);
    assert.ok(await notification.isVisible(), 'the run-end notification is gone after 12 s');
    assert.equal(
      await notification.locator('.monaco-progress-container.active').count(),
      1,
      `the notification has no running progress (its toast would time out): ${await notification.innerHTML()}`,
    );
    assert.ok(Date.now() - askedAt >= 12_000);
    await wb.screenshot('review-editor-notification-12s');

    await notification.locator('a', { hasText: 'Review' }).click();
    await page.locator('.multiDiffEntry').first().waitFor({ state: 'visible', timeout: 30_000 });
    const shown = await waitForHeaders(['added.txt', 'edited.txt', 'gone.txt']);
    const byName = new Map(shown.map((h) => [h.name, h]));
    assert.equal(byName.get('added.txt')?.status, 'A', JSON.stringify(shown));
    assert.equal(byName.get('gone.txt')?.status, 'D', JSON.stringify(shown));
    assert.equal(byName.get('gone.txt')?.struck, true, 'a deleted file is struck through');
    // VS Code's multi-file diff editor writes no letter for a modified file (git's rows look the same): what
    // it must not do is call it a rename, strike it through or name a second file.
    assert.deepEqual(byName.get('edited.txt'), { name: 'edited.txt', status: '', struck: false, original: '' });
    assert.ok(
      shown.every((h) => h.status !== 'R' && h.original === ''),
      `no rename: ${JSON.stringify(shown)}`,
    );
    // An added file has no removed side: nothing of the workspace is shown as removed. (VS Code's diff draws an
    // empty document's single empty line as changed, as for git's added files.)
    const addedEntry = page.locator('.multiDiffEntry', { has: page.locator('.file-path .label-name', { hasText: /^added\.txt$/ }) });
    assert.deepEqual((await addedEntry.locator('.editor.original .view-line').allInnerTexts()).map((t) => t.trim()).filter(Boolean), []);
    assert.ok(await notification.isVisible(), 'Review keeps the question open');
    if (await page.locator('.notifications-center.visible').isVisible()) await wb.runFromPalette('Notifications: Hide Notifications');
    await page.mouse.move(640, 400);
    await wb.screenshot('review-editor');

    // The editor's own Accept acts on the file with the cursor.
    const editedEntry = page.locator('.multiDiffEntry', { has: page.locator('.file-path .label-name', { hasText: /^edited\.txt$/ }) });
    await editedEntry.locator('.editor.modified .view-line', { hasText: 'after' }).first().click();
    const accept = page.locator('.editor-actions .action-label[aria-label*="Accept Change"]').first();
    await accept.waitFor({ state: 'visible', timeout: 30_000 });
    await accept.click();
    for (const deadline = Date.now() + 30_000; fs.readFileSync(file('edited.txt'), 'utf8') !== 'after\n';) {
      if (Date.now() > deadline) assert.fail('Accept in the Review editor did not write edited.txt');
      await page.waitForTimeout(100);
    }
    assert.equal(fs.existsSync(file('added.txt')), false, 'only the file with the cursor was accepted');
    assert.equal(fs.readFileSync(file('gone.txt'), 'utf8'), 'delete me\n');
    // The editor shows what is still pending.
    await waitForHeaders(['added.txt', 'gone.txt']);
    await page.mouse.move(640, 400);
    await wb.screenshot('review-editor-accepted');

    // Discard in the notification answers it: the rest goes back, and the question is gone.
    await showNotifications();
    await notification.locator('a', { hasText: 'Discard' }).click();
    await notification.waitFor({ state: 'detached', timeout: 30_000 });
    await page
      .locator('.scm-view .monaco-list-row', { hasText: 'gone.txt' })
      .waitFor({ state: 'detached', timeout: 30_000 })
      .catch(() => undefined);
    assert.equal(fs.existsSync(file('added.txt')), false);
    assert.equal(fs.readFileSync(file('gone.txt'), 'utf8'), 'delete me\n');
  });
});
