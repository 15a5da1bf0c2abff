import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { ESLint } from 'eslint';
import * as prettier from 'prettier';

// `npm run lint` as part of the unit tier: the whole tree passes, and the layer table of
// docs/architecture.md is really enforced (each rule is shown to fire on a file that breaks it).
const ROOT = path.resolve(__dirname, '..', '..', '..', '..');

suite('lint (ESLint with typescript-eslint, eslint.config.mjs)', function () {
  this.timeout(120_000);
  const eslint = new ESLint({ cwd: ROOT });

  test('the source, tests and bench have no lint problem', async () => {
    const results = await eslint.lintFiles(['.']);
    const problems = results.flatMap((r) =>
      r.messages.map((m) => `${path.relative(ROOT, r.filePath)}:${m.line}:${m.column} ${m.ruleId ?? ''} ${m.message}`),
    );
    assert.ok(results.length > 100, `linted only ${results.length} files`);
    assert.deepEqual(problems, []);
  });

  test('the TypeScript sources, tests and bench are formatted by Prettier (.prettierrc.json; npm run format)', async () => {
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory() && entry.name !== 'node_modules' && entry.name !== 'results') walk(full);
        else if (entry.isFile() && entry.name.endsWith('.ts')) files.push(full);
      }
    };
    for (const dir of ['src', 'test', 'bench']) walk(path.join(ROOT, dir));
    assert.ok(files.length > 200, `only ${files.length} files`);
    const unformatted: string[] = [];
    for (const file of files) {
      const options = (await prettier.resolveConfig(file)) ?? {};
      if (!(await prettier.check(fs.readFileSync(file, 'utf8'), { ...options, filepath: file }))) unformatted.push(path.relative(ROOT, file));
    }
    assert.deepEqual(unformatted, [], 'run `npm run format`');
  });

  const layerCases: [string, string, boolean][] = [
    ['src/core/session/x.ts', "import * as vscode from 'vscode';", true],
    ['src/core/session/x.ts', "import { HistoryView } from '../../host/history/historyView';", true],
    ['src/core/session/x.ts', "import { main } from '../../server/main';", true],
    ['src/shared/x.ts', "import { SandboxError } from '../core/errors';", true],
    ['src/server/x.ts', "import { settings } from '../host/settings';", true],
    ['src/server/x.ts', "import * as vscode from 'vscode';", true],
    ['src/gateway/x.ts', "import { Box } from '../core/box/box';", true],
    ['src/webview/history/x.ts', "import { BoxSession } from '../../core/session/boxSession';", true],
    // What the layers allow:
    ['src/host/x.ts', "import * as vscode from 'vscode';", false],
    ['src/extension.ts', "import * as vscode from 'vscode';", false],
    ['src/server/x.ts', "import { SandboxError } from '../core/errors';", false],
    ['src/gateway/x.ts', "import { classifyAddress } from '../core/egress/addressPolicy';", false],
    ['src/webview/history/x.ts', "import type { HistoryRecord } from '../../core/history/historyRecord';", false],
  ];
  for (const [file, line, flagged] of layerCases) {
    test(`${flagged ? 'refuses' : 'allows'} in ${file}: ${line}`, async () => {
      const [result] = await eslint.lintText(
        `${line}\nexport const used = [${/import \* as (\w+)|import (?:type )?\{ (\w+)/.exec(line)?.slice(1).find(Boolean)}];\n`,
        { filePath: path.join(ROOT, file) },
      );
      const layerProblems = result!.messages.filter((m) => m.ruleId === 'no-restricted-imports');
      assert.equal(layerProblems.length > 0, flagged, JSON.stringify(result!.messages));
    });
  }
});
