import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { FRESH_REPOSITORY_SCRIPT, freshArgs } from '../../../src/core/session/freshRepository';

suite('freshRepository: what a fresh repository in the box is made of', () => {
  test('HEAD branch, author, date, message and sanitized remotes become the script arguments, in order', () => {
    const args = freshArgs('vendor/lib', {
      branch: 'feature/x',
      commit: { authorName: 'Ada', authorEmail: 'ada@example.com', authorDate: '1700000000 +0100', message: 'Subject\n\nBody\n' },
      remotes: [{ name: 'origin', url: 'https://github.com/o/r.git' }],
    });
    assert.deepEqual(args, [
      'vendor/lib',
      'feature/x',
      'Ada',
      'ada@example.com',
      '1700000000 +0100',
      'Subject\n\nBody\n',
      'origin',
      'https://github.com/o/r.git',
    ]);
  });

  test('neutral values when HEAD is detached, unborn or unreadable; a branch name git would refuse becomes main', () => {
    const [dir, branch, name, email, date, message] = freshArgs('', undefined);
    assert.deepEqual([dir, branch, name, email], ['', 'main', 'Agent Sandbox', 'agent-sandbox@localhost']);
    assert.match(date, /^\d+ \+0000$/);
    assert.match(message, /mirrored into the sandbox box/);
    assert.equal(freshArgs('', { branch: 'a..b', remotes: [] })[1], 'main');
    assert.equal(freshArgs('', { branch: 'x;rm -rf /', remotes: [] })[1], 'main');
  });

  test('the script is valid POSIX shell', () => {
    const result = spawnSync('sh', ['-n', '-c', FRESH_REPOSITORY_SCRIPT], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
  });
});
