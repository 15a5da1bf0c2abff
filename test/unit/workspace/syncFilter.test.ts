import * as assert from 'node:assert/strict';
import { SandboxError } from '../../../src/core/errors';
import { isSecretPath } from '../../../src/core/workspace/secretPatterns';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { CREDENTIAL_FILE_SAMPLES, makeTempDir, removeDir, writeTree } from '../../builders/trees';

suite('secretPatterns and SyncFilter', () => {
  test('the deny-list catches secrets at any depth and keeps .env examples', () => {
    const secrets = [
      '.env',
      'app/.env.local',
      '.env.production',
      'certs/server.pem',
      'tls.key',
      'a/b/store.p12',
      'x.pfx',
      'id_rsa',
      'home/id_rsa.pub',
      'id_ed25519',
      'keys/id_ecdsa',
      'id_dsa',
      '.npmrc',
      'pkg/.npmrc',
      '.pypirc',
      '.netrc',
      '.git-credentials',
      '.ssh/config',
      'home/.ssh/known_hosts',
      '.aws/credentials',
      '.gnupg/pubring.kbx',
      '.docker/config.json',
      'ci/.kube/config',
      'gcp/credentials.json',
      '.ENV',
      // Issue 11: these reached the box before.
      ...CREDENTIAL_FILE_SAMPLES,
    ];
    for (const secret of secrets) {
      assert.equal(isSecretPath(secret), true, secret);
    }
    const kept = [
      '.env.example',
      'app/.env.sample',
      '.env.template',
      'src/env.ts',
      'keyboard.ts',
      'docker/config.json',
      'README.md',
      '.gitignore',
      '.git/config',
      'variables.tf',
      'docs/kubernetes.md',
      'config/secrets.example.yml',
      'service.json',
    ];
    for (const path of kept) {
      assert.equal(isSecretPath(path), false, path);
    }
  });

  test('secrets are excluded even with no other rule, and everything under a secret directory is', async () => {
    const filter = await SyncFilter.create('/nonexistent', { exclude: [], useGitignore: false });
    assert.equal(filter.isExcluded('.env', false), true);
    assert.equal(filter.isExcluded('.env.example', false), false);
    assert.equal(filter.isExcluded('.ssh', true), true);
    assert.equal(filter.isExcluded('.ssh/id', false), true);
    assert.equal(filter.isSecret('a/server.key'), true);
    assert.equal(filter.isExcluded('src/index.ts', false), false);
  });

  test('leaveOutGit (gitHistory fresh/none): every .git, directory or file, any depth and case, is left out with what is under it', async () => {
    const filter = await SyncFilter.create('/nonexistent', { exclude: [], useGitignore: false, leaveOutGit: true });
    for (const p of ['.git', '.git/config', '.git/objects/ab/cdef', 'vendor/lib/.git', 'vendor/lib/.git/HEAD', 'sub/.GIT/config']) {
      assert.equal(filter.isExcluded(p, !p.includes('/') || p.endsWith('.git')), true, p);
    }
    for (const p of ['.gitignore', '.gitmodules', 'src/git/x', '.github/workflows/ci.yml', 'a.git']) {
      assert.equal(filter.isExcluded(p, false), false, p);
    }
    const full = await SyncFilter.create('/nonexistent', { exclude: [], useGitignore: false });
    assert.equal(full.isExcluded('.git/config', false), false, 'gitHistory full: .git is sent (its config sanitized)');
  });

  test('exclude globs: bare names match at any depth, anchored and path globs match from the root', async () => {
    const filter = await SyncFilter.create('/nonexistent', {
      exclude: ['*.log', 'node_modules', '/build', 'dist/**', 'docs/*.pdf', '.cache/'],
      useGitignore: false,
    });
    assert.equal(filter.isExcluded('a/b/debug.log', false), true);
    assert.equal(filter.isExcluded('node_modules', true), true);
    assert.equal(filter.isExcluded('pkg/node_modules/x/index.js', false), true);
    assert.equal(filter.isExcluded('build', true), true);
    assert.equal(filter.isExcluded('src/build', true), false);
    assert.equal(filter.isExcluded('dist', true), true);
    assert.equal(filter.isExcluded('dist/a.js', false), true);
    assert.equal(filter.isExcluded('docs/a.pdf', false), true);
    assert.equal(filter.isExcluded('docs/sub/a.pdf', false), false);
    assert.equal(filter.isExcluded('.cache', true), true);
    assert.equal(filter.isExcluded('src/main.ts', false), false);
  });

  test('an invalid glob throws invalid-setting naming agentSandbox.exclude', async () => {
    for (const glob of ['src/[abc', '', '!keep', '../outside', '{a,b']) {
      await assert.rejects(SyncFilter.create('/nonexistent', { exclude: [glob], useGitignore: false }), (error: unknown) => {
        assert.ok(SandboxError.is(error, 'invalid-setting'), String(error));
        assert.equal(error.options.setting, 'agentSandbox.exclude');
        assert.match(error.message, /agentSandbox\.exclude/);
        return true;
      });
    }
  });

  test('gitignore: root, nested, negation, directory-only rules, .git/info/exclude; .git itself is never ignored', async () => {
    const root = await makeTempDir('filter');
    try {
      await writeTree(root, {
        '.gitignore': 'out/\n*.tmp\n!keep.tmp\n/Makefile\n',
        '.git/info/exclude': 'local-only.txt\n',
        '.git/HEAD': 'ref: refs/heads/main\n',
        'pkg/.gitignore': 'generated.ts\n!important.tmp\n',
        'pkg/deeper/.gitignore': '/only-here.txt\n',
        'pkg/deeper/only-here.txt': 'x',
        'pkg/generated.ts': 'x',
        'pkg/important.tmp': 'x',
        'out/a.js': 'x',
        'node/out': 'a file named out',
      });
      const filter = await SyncFilter.create(root, { exclude: [], useGitignore: true });
      assert.equal(filter.isExcluded('out', true), true);
      assert.equal(filter.isExcluded('out/a.js', false), true);
      assert.equal(filter.isExcluded('node/out', false), false, 'out/ only matches directories');
      assert.equal(filter.isExcluded('x.tmp', false), true);
      assert.equal(filter.isExcluded('keep.tmp', false), false);
      assert.equal(filter.isExcluded('pkg/important.tmp', false), false, 'nested negation wins over the root rule');
      assert.equal(filter.isExcluded('pkg/generated.ts', false), true);
      assert.equal(filter.isExcluded('generated.ts', false), false, 'nested rules apply only below their directory');
      assert.equal(filter.isExcluded('pkg/deeper/only-here.txt', false), true);
      assert.equal(filter.isExcluded('only-here.txt', false), false);
      assert.equal(filter.isExcluded('local-only.txt', false), true);
      assert.equal(filter.isExcluded('Makefile', false), true);
      assert.equal(filter.isExcluded('pkg/Makefile', false), false, 'a leading / anchors the rule at its .gitignore');
      assert.equal(filter.isExcluded('.git', true), false);
      assert.equal(filter.isExcluded('.git/HEAD', false), false);

      const withoutGitignore = await SyncFilter.create(root, { exclude: [], useGitignore: false });
      assert.equal(withoutGitignore.isExcluded('out/a.js', false), false);
    } finally {
      await removeDir(root);
    }
  });
});
