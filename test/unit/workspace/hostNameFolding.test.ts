import * as assert from 'node:assert/strict';
import { planApply } from '../../../src/core/apply/applyPlan';
import { flagsFor, isAgentInstructions, isHostExecuted } from '../../../src/core/changes/flags';
import type { ManifestEntry } from '../../../src/core/workspace/manifest';
import { foldHostName, foldHostPath, touchesGitDirectory } from '../../../src/core/workspace/pathGuard';
import { isSecretPath } from '../../../src/core/workspace/secretPatterns';
import { sha256 } from '../../../src/core/util/hash';

/**
 * There is no Windows or macOS CI: these tests spell names the way NTFS (trailing dots and spaces, `::$DATA`
 * streams, case) and APFS/HFS+ (NFD, ignorable code points, case) resolve them, and check that the folding
 * every path check shares sees through them on Linux.
 */
suite('Windows name folding', () => {
  const nfd = (s: string) => s.normalize('NFD');

  test('foldHostName: case, trailing dots and spaces, streams, NFC, HFS+ ignorables', () => {
    assert.equal(foldHostName('CLAUDE.md.'), 'claude.md');
    assert.equal(foldHostName('AGENTS.md .. '), 'agents.md');
    assert.equal(foldHostName('.envrc::$DATA'), '.envrc');
    assert.equal(foldHostName('.env:secret'), '.env');
    assert.equal(foldHostName(nfd('Café')), 'café');
    assert.equal(foldHostName('.clau\u200cde'), '.claude');
    assert.equal(foldHostPath('.GitHub./Prompts /x.prompt.md'), '.github/prompts/x.prompt.md');
    assert.notEqual(nfd('café'), 'café', 'the fixture really is NFD');
  });

  test('files agents on the host read as instructions are flagged, in every spelling', () => {
    const plain = [
      '.github/agents/reviewer.agent.md',
      '.github/chatmodes/plan.chatmode.md',
      '.github/prompts/fix.prompt.md',
      '.github/instructions/ts.instructions.md',
      '.github/copilot-instructions.md',
      '.vscode/mcp.json',
      '.mcp.json',
      '.claude/settings.json',
      '.claude/commands/deploy.md',
      'CLAUDE.md',
      'AGENTS.md',
      'pkg/AGENTS.md',
      'GEMINI.md',
      '.gemini/settings.json',
      '.cursor/rules/a.mdc',
      '.cursorrules',
      '.codex/config.toml',
      '.aider.conf.yml',
      '.aiderignore',
      '.continue/config.json',
    ];
    for (const p of plain) assert.ok(isAgentInstructions(p), p);
    const windows = [
      'CLAUDE.md.',
      'claude.md ',
      'AGENTS.md::$DATA',
      'agents.MD:stream',
      '.Claude/settings.json',
      '.claude./settings.json',
      '.GITHUB/Copilot-Instructions.md',
      '.github/prompts./x.prompt.md',
      '.vscode/MCP.json.',
      '.MCP.json ',
      '.cursorrules.',
      '.clau\u200cde/settings.json',
      nfd('.cursor/rules/é.mdc'),
    ];
    for (const p of windows) {
      assert.ok(isAgentInstructions(p), JSON.stringify(p));
      assert.ok(flagsFor({ path: p, kind: 'added', type: 'file' }).includes('agent-instructions'), JSON.stringify(p));
    }
    for (const p of ['docs/agents.txt', 'CLAUDE.mdx', 'src/.claudex/a', '.github/workflow-notes.md', 'AGENTS.md.bak']) {
      assert.ok(!isAgentInstructions(p), p);
    }
    assert.deepEqual(flagsFor({ path: 'AGENTS.md', kind: 'modified', type: 'file' }), ['agent-instructions']);
    // Deleting one runs nothing on the host, as for build files.
    assert.deepEqual(flagsFor({ path: 'AGENTS.md', kind: 'deleted', type: 'file' }), []);
  });

  test('host-executed files are flagged in every spelling', () => {
    for (const p of [
      '.husky/pre-commit',
      '.pre-commit-config.yaml',
      'lefthook.yml',
      '.yarnrc.yml',
      '.envrc',
      'Makefile.',
      'makefile ',
      '.envrc::$DATA',
      '.VSCODE/tasks.json.',
      '.vscode./settings.json',
      '.husky /pre-commit',
      '.Pre-Commit-Config.yaml.',
      '.yarnrc.yml::$DATA',
      '.github/workflows./ci.yml',
    ]) {
      assert.ok(isHostExecuted(p), JSON.stringify(p));
    }
    assert.ok(!isHostExecuted('src/make.ts'));
    assert.deepEqual(flagsFor({ path: 'package.json.', kind: 'added', type: 'file' }, { box: Buffer.from('{"scripts":{"postinstall":"x"}}') }), [
      'host-executed',
    ]);
  });

  test('the secrets deny-list matches every spelling', () => {
    for (const p of [
      '.env.',
      '.ENV::$DATA',
      '.env ',
      'id_rsa.',
      'ID_RSA::$DATA',
      '.ssh./config',
      '.SSH /id',
      'certs/server.pem.',
      'a/.aws./credentials',
      '.npmrc:x',
      '.docker./config.json.',
    ]) {
      assert.ok(isSecretPath(p), JSON.stringify(p));
    }
    // `.env.example.` stays withheld (its raw name matches `.env*`): withholding more is the safe side.
    for (const p of ['.env.example', 'src/env.ts', 'readme.md.']) {
      assert.ok(!isSecretPath(p), JSON.stringify(p));
    }
  });

  test('.git in every spelling', () => {
    for (const p of ['.git/hooks/pre-commit', '.GIT/config', '.git./hooks/x', '.git ::$DATA/x', 'GIT~1/config', 'sub/.gi\u200ct/x']) {
      assert.ok(touchesGitDirectory(p), JSON.stringify(p));
    }
    assert.ok(!touchesGitDirectory('.github/x'));
  });

  test('case twins: a new name that folds to an existing one is a conflict on a folding disk', () => {
    const file = (p: string, content: string): ManifestEntry => ({ path: p, type: 'file', mode: 0o644, size: content.length, hash: sha256(content) });
    const current = new Map([
      ['README.md', file('README.md', 'r')],
      ['café.md', file('café.md', 'c')],
    ]);
    const added = (p: string) => ({ path: p, kind: 'added' as const, type: 'file' as const, hash: sha256('x'), binary: false, flags: [] });
    const changes = [added('readme.md.'), added('README.md::$DATA'), added(nfd('café.md')), added('notes.md')];
    const plan = planApply({ baseline: current, changes, current, caseInsensitive: true });
    assert.deepEqual(plan.conflicts.map((c) => c.path).sort(), ['README.md::$DATA', nfd('café.md'), 'readme.md.'].sort());
    assert.deepEqual(
      plan.operations.filter((op) => op.kind === 'write').map((op) => op.path),
      ['notes.md'],
    );
  });
});
