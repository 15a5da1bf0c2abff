import * as assert from 'node:assert/strict';
import { isGitConfigPath, sanitizeGitConfig, stripUrlCredentials } from '../../../src/core/workspace/gitConfigSanitizer';

suite('gitConfigSanitizer', () => {
  test('strips credentials from remote URLs, keeps plain ssh users', () => {
    const input = [
      '[core]',
      '\trepositoryformatversion = 0',
      '[remote "origin"]',
      '\turl = https://alice:ghp_SECRET123@github.com/o/r.git',
      '\tfetch = +refs/heads/*:refs/remotes/origin/*',
      '[remote "token"]',
      '\turl = https://x-access-token:TOKEN456@github.com/o/r.git',
      '[remote "bare"]',
      '\turl = https://TOKEN789@gitlab.com/o/r.git',
      '[remote "ssh"]',
      '\turl = ssh://git@github.com/o/r.git',
      '[remote "sshpass"]',
      '\turl = ssh://bob:hunter2@host/r.git',
      '[remote "at"]',
      '\turl = https://user:p@ss@host/r.git',
      '',
    ].join('\n');
    const output = sanitizeGitConfig(input);
    for (const secret of ['ghp_SECRET123', 'TOKEN456', 'TOKEN789', 'hunter2', 'alice', 'p@ss', 'ss@host']) {
      assert.ok(!output.includes(secret), `${secret} leaked:\n${output}`);
    }
    assert.match(output, /url = https:\/\/github\.com\/o\/r\.git/);
    assert.match(output, /url = https:\/\/gitlab\.com\/o\/r\.git/);
    assert.match(output, /url = ssh:\/\/git@github\.com\/o\/r\.git/);
    assert.match(output, /url = ssh:\/\/bob@host\/r\.git/);
    assert.match(output, /url = https:\/\/host\/r\.git/);
    assert.match(output, /fetch = \+refs\/heads/);
    assert.match(output, /repositoryformatversion = 0/);
  });

  test('drops [credential] sections and extraheader/token lines, keeps the rest byte for byte', () => {
    const input = [
      '[core]\r',
      '\tbare = false\r',
      '[credential]\r',
      '\thelper = store\r',
      '[credential "https://github.com"]\r',
      '\tusername = alice\r',
      '[http "https://github.com/"]\r',
      '\textraheader = AUTHORIZATION: basic c2VjcmV0\r',
      '\tsslVerify = true\r',
      '[http]\r',
      '\textraHeader = Authorization: Bearer \\\r',
      '\t  CONTINUED_SECRET\r',
      '\tpostBuffer = 524288000\r',
      '[github]\r',
      '\ttoken = gh_TOKEN\r',
      '[user]\r',
      '\tname = Alice\r',
      '',
    ].join('\n');
    const output = sanitizeGitConfig(input);
    for (const secret of ['helper', 'store', 'username', 'c2VjcmV0', 'Bearer', 'CONTINUED_SECRET', 'gh_TOKEN', '[credential']) {
      assert.ok(!output.includes(secret), `${secret} leaked:\n${output}`);
    }
    assert.equal(
      output,
      [
        '[core]\r',
        '\tbare = false\r',
        '[http "https://github.com/"]\r',
        '\tsslVerify = true\r',
        '[http]\r',
        '\tpostBuffer = 524288000\r',
        '[github]\r',
        '[user]\r',
        '\tname = Alice\r',
        '',
      ].join('\n'),
    );
  });

  test('a key on the header line is handled too', () => {
    assert.equal(sanitizeGitConfig('[http] extraheader = X: secret\n[core]\n'), '[http]\n[core]\n');
    assert.equal(sanitizeGitConfig('[credential] helper = store\n[core]\n'), '[core]\n');
  });

  test('stripUrlCredentials and isGitConfigPath', () => {
    assert.equal(stripUrlCredentials('see http://u:p@h/x and ftp://u@h'), 'see http://h/x and ftp://h');
    assert.equal(isGitConfigPath('.git/config'), true);
    assert.equal(isGitConfigPath('.git/modules/sub/config'), true);
    assert.equal(isGitConfigPath('.git/configs'), false);
    assert.equal(isGitConfigPath('src/git/config'), false);
    assert.equal(isGitConfigPath('gitmodules'), false);
  });

  test('nested repositories, their modules and .gitmodules files are sanitized too (issue 11)', () => {
    for (const p of [
      'vendor/lib/.git/config',
      'a/b/.git/modules/sub/config',
      'x/.git/worktrees/w/config.worktree',
      '.gitmodules',
      'vendor/lib/.gitmodules',
      '.GIT/CONFIG',
    ]) {
      assert.equal(isGitConfigPath(p), true, p);
    }
    const gitmodules = '[submodule "lib"]\n\tpath = lib\n\turl = https://oauth2:glpat-SECRETSECRET@gitlab.com/o/lib.git\n';
    assert.equal(sanitizeGitConfig(gitmodules), '[submodule "lib"]\n\tpath = lib\n\turl = https://gitlab.com/o/lib.git\n');
  });

  test('sendemail.smtpPass and other password/token keys are dropped; credential query parameters lose their value (issue 11)', () => {
    const input = [
      '[sendemail]',
      '\tsmtpServer = smtp.example.com',
      '\tsmtpPass = SMTP_SECRET',
      '[gitlab]',
      '\tprivateToken = GL_SECRET',
      '[remote "origin"]',
      '\turl = https://gitlab.com/api/v4/projects/1/repo.git?private_token=QUERY_SECRET&ref=main',
      '\tpushurl = https://h/r.git?access_token=PUSH_SECRET',
      '',
    ].join('\n');
    const output = sanitizeGitConfig(input);
    for (const secret of ['SMTP_SECRET', 'GL_SECRET', 'QUERY_SECRET', 'PUSH_SECRET']) {
      assert.ok(!output.includes(secret), `${secret} leaked:\n${output}`);
    }
    assert.match(output, /smtpServer = smtp\.example\.com/);
    assert.match(output, /url = https:\/\/gitlab\.com\/api\/v4\/projects\/1\/repo\.git\?private_token=&ref=main/);
  });
});
