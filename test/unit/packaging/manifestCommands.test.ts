import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

// Every command the manifest points at (menus, keybindings, walkthrough and welcome-view links) is one it
// contributes: a typo there draws a button that fails with "command not found". The host tier checks that
// each contributed command is really registered (test/host/suite/activation.test.ts).
const ROOT = path.resolve(__dirname, '..', '..', '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  contributes: {
    commands: { command: string; title: string }[];
    menus?: Record<string, { command?: string }[]>;
    keybindings?: { command: string }[];
    walkthroughs?: { steps: { description?: string; completionEvents?: string[] }[] }[];
    viewsWelcome?: { contents: string }[];
  };
};
const contributed = new Set(manifest.contributes.commands.map((c) => c.command));
/** `command:agentSandbox.x` links and `onCommand:` events in markdown and welcome texts. */
const linked = (text: string): string[] => [...text.matchAll(/(?:command:|onCommand:)(agentSandbox\.[A-Za-z0-9_.]+)/g)].map((m) => m[1]!);

suite('package.json: commands the manifest points at exist', () => {
  test('menus', () => {
    const used = Object.values(manifest.contributes.menus ?? {}).flatMap((items) => items.map((i) => i.command).filter((c): c is string => !!c));
    assert.ok(used.length > 10);
    assert.deepEqual(used.filter((c) => c.startsWith('agentSandbox.') && !contributed.has(c)), []);
  });

  test('keybindings', () => {
    const used = (manifest.contributes.keybindings ?? []).map((k) => k.command.replace(/^-/, ''));
    assert.ok(used.length > 3);
    assert.deepEqual(used.filter((c) => c.startsWith('agentSandbox.') && !contributed.has(c)), []);
  });

  test('walkthrough steps and the Source Control welcome view', () => {
    const texts = [
      ...(manifest.contributes.walkthroughs ?? []).flatMap((w) => w.steps.flatMap((s) => [s.description ?? '', ...(s.completionEvents ?? [])])),
      ...(manifest.contributes.viewsWelcome ?? []).map((v) => v.contents),
    ];
    const used = texts.flatMap(linked);
    assert.ok(used.length > 3, `only ${used.length} command links found`);
    assert.deepEqual(used.filter((c) => !contributed.has(c)), []);
  });

  test('each contributed command has a title and a unique id', () => {
    assert.equal(contributed.size, manifest.contributes.commands.length);
    assert.deepEqual(manifest.contributes.commands.filter((c) => !c.title?.trim()), []);
  });
});
