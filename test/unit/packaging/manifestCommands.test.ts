import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
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
    assert.deepEqual(
      used.filter((c) => c.startsWith('agentSandbox.') && !contributed.has(c)),
      [],
    );
  });

  test('keybindings', () => {
    const used = (manifest.contributes.keybindings ?? []).map((k) => k.command.replace(/^-/, ''));
    assert.ok(used.length > 3);
    assert.deepEqual(
      used.filter((c) => c.startsWith('agentSandbox.') && !contributed.has(c)),
      [],
    );
  });

  test('walkthrough steps and the Source Control welcome view', () => {
    const texts = [
      ...(manifest.contributes.walkthroughs ?? []).flatMap((w) => w.steps.flatMap((s) => [s.description ?? '', ...(s.completionEvents ?? [])])),
      ...(manifest.contributes.viewsWelcome ?? []).map((v) => v.contents),
    ];
    const used = texts.flatMap(linked);
    assert.ok(used.length > 3, `only ${used.length} command links found`);
    assert.deepEqual(
      used.filter((c) => !contributed.has(c)),
      [],
    );
  });

  test('each contributed command has a title and a unique id', () => {
    assert.equal(contributed.size, manifest.contributes.commands.length);
    assert.deepEqual(
      manifest.contributes.commands.filter((c) => !c.title?.trim()),
      [],
    );
  });

  test('every %key% of the manifest has its English text in package.nls.json, and every text there is used', () => {
    const raw = fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8');
    const nls = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.nls.json'), 'utf8')) as Record<string, string>;
    const used = new Set([...raw.matchAll(/"%([^%"]+)%"/g)].map((m) => m[1]!));
    assert.ok(used.size > 50, `only ${used.size} localised strings`);
    assert.deepEqual(
      [...used].filter((key) => typeof nls[key] !== 'string' || !nls[key]!.trim()),
      [],
      'keys without a text',
    );
    assert.deepEqual(
      Object.keys(nls).filter((key) => !used.has(key)),
      [],
      'texts no key uses',
    );
    // What users see first is localisable: the name, every command title and every setting's description.
    const manifestJson = JSON.parse(raw) as {
      displayName: string;
      contributes: {
        commands: { title: string }[];
        configuration: { properties: Record<string, { description?: string; markdownDescription?: string }> };
      };
    };
    assert.match(manifestJson.displayName, /^%.+%$/);
    assert.deepEqual(
      manifestJson.contributes.commands.filter((c) => !/^%.+%$/.test(c.title)).map((c) => c.title),
      [],
    );
    const described = Object.entries(manifestJson.contributes.configuration.properties).filter(
      ([, p]) => !/^%.+%$/.test(p.markdownDescription ?? p.description ?? '%%'),
    );
    assert.deepEqual(
      described.map(([key]) => key),
      [],
    );
  });

  test('l10n/bundle.l10n.json holds exactly the vscode.l10n.t strings of the code (npm run l10n writes it)', function () {
    this.timeout(60_000);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-l10n-'));
    try {
      const cli = path.join(path.dirname(require.resolve('@vscode/l10n-dev/package.json')), 'dist', 'cli.js');
      execFileSync(process.execPath, [cli, 'export', '-o', out, path.join(ROOT, 'src', 'host'), path.join(ROOT, 'src', 'extension.ts')], {
        cwd: ROOT,
        stdio: 'pipe',
      });
      const fresh = JSON.parse(fs.readFileSync(path.join(out, 'bundle.l10n.json'), 'utf8')) as Record<string, string>;
      const committed = JSON.parse(fs.readFileSync(path.join(ROOT, 'l10n', 'bundle.l10n.json'), 'utf8')) as Record<string, string>;
      assert.ok(Object.keys(fresh).length > 50, `only ${Object.keys(fresh).length} strings in the code`);
      assert.deepEqual(committed, fresh, 'run `npm run l10n`');
      assert.equal((manifest as unknown as { l10n?: string }).l10n, './l10n');
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
