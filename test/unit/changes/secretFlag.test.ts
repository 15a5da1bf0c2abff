import * as assert from 'node:assert/strict';
import { flagsFor } from '../../../src/core/changes/flags';
import { findSecrets } from '../../../src/core/secrets/tokenPatterns';

suite('secret scan of proposed files', () => {
  const change = { path: 'src/config.ts', kind: 'modified' as const, type: 'file' as const, mode: 0o644, baseMode: 0o644 };

  test('a private key, a cloud token or a secret assignment flags the file', () => {
    const samples = [
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n',
      `const key = "AKIA${'A'.repeat(16)}";\n`,
      `token: ghp_${'a1'.repeat(18)}\n`,
      'DATABASE_PASSWORD=correct-horse-battery\n',
      'const config = { apiKey: "abcd1234efgh5678" };\n',
      'curl https://deploy:s3cr3tpass@example.invalid/hook\n',
    ];
    for (const text of samples) {
      assert.ok(flagsFor(change, { box: Buffer.from(text) }).includes('secret'), `not flagged: ${text}`);
    }
    assert.deepEqual(findSecrets(samples[1]), ['AWS access key']);
  });

  test('ordinary code, binary content and deletions are not flagged', () => {
    assert.ok(!flagsFor(change, { box: Buffer.from('export const timeoutMs = 5000;\nconst password = prompt();\n') }).includes('secret'));
    assert.ok(!flagsFor(change, { box: Buffer.from([0, 1, 2, 0x41, 0x4b, 0x49, 0x41]) }).includes('secret'));
    assert.ok(!flagsFor({ ...change, kind: 'deleted' }, { box: Buffer.from('DATABASE_PASSWORD=correct-horse-battery') }).includes('secret'));
  });

  test('patterns are reusable: scanning twice finds the same', () => {
    const text = `sk-ant-${'x'.repeat(30)}`;
    assert.deepEqual(findSecrets(text), findSecrets(text));
    assert.ok(findSecrets(text).includes('Anthropic key'));
  });
});
