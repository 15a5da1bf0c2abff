import * as assert from 'node:assert/strict';
import { capText, redactSecrets, REDACTED } from '../../../src/core/history/redaction';

suite('History redaction', () => {
  test('the values of allowlisted variables are replaced wherever they appear', () => {
    const out = redactSecrets('token=s3cr3t-value; again s3cr3t-value; short 1', ['s3cr3t-value', '1']);
    assert.equal(out, `token=${REDACTED}; again ${REDACTED}; short 1`, 'short values (under 4 chars) are left alone');
  });

  test('a value containing another is redacted whole', () => {
    assert.equal(redactSecrets('abcd-efgh', ['abcd', 'abcd-efgh']), REDACTED);
  });

  const tokens: [string, string][] = [
    ['GitHub', 'ghp_' + 'a'.repeat(36)],
    ['GitHub fine-grained', 'github_pat_' + 'B'.repeat(40)],
    ['AWS access key', 'AKIA' + 'ABCDEFGHIJKLMNOP'],
    ['Slack', 'xoxb-1234567890-abcdefghij'],
    ['OpenAI', 'sk-proj-' + 'x'.repeat(40)],
    ['Anthropic', 'sk-ant-api03-' + 'y'.repeat(40)],
    ['Google', 'AIza' + 'c'.repeat(35)],
    ['npm', 'npm_' + 'd'.repeat(36)],
    // Formats from gitleaks' rules (issue 11).
    ['HashiCorp Vault', 'hvs.' + 'V'.repeat(95)],
    ['GitLab deploy token', 'gldt-' + 'g'.repeat(20)],
    ['DigitalOcean', 'dop_v1_' + 'a'.repeat(64)],
    ['SendGrid', 'SG.' + 's'.repeat(22) + '.' + 't'.repeat(43)],
    ['Shopify', 'shpat_' + 'f'.repeat(32)],
    ['Terraform Cloud', 'abcdefghijklmn.atlasv1.' + 'z'.repeat(64)],
    ['JWT', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'],
  ];
  for (const [name, token] of tokens) {
    test(`known token format: ${name}`, () => {
      const out = redactSecrets(`before ${token} after`);
      assert.equal(out, `before ${REDACTED} after`);
    });
  }

  test('keeps the readable part of headers, URLs and assignments and drops the secret', () => {
    assert.equal(redactSecrets('Authorization: Bearer abcdefghijklmnop'), `Authorization: Bearer ${REDACTED}`);
    assert.equal(redactSecrets('git clone https://alice:hunter2hunter2@example.com/r.git'), `git clone https://alice:${REDACTED}@example.com/r.git`);
    assert.equal(redactSecrets('export MY_API_KEY="abcdefgh12345"'), `export MY_API_KEY="${REDACTED}"`);
    assert.equal(redactSecrets('curl https://h/api?private_token=abcdefgh12345&x=1'), `curl https://h/api?private_token=${REDACTED}&x=1`);
  });

  test('private key blocks are removed whole', () => {
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
    assert.equal(redactSecrets(`x\n${key}\ny`), `x\n${REDACTED}\ny`);
  });

  test('ordinary output is left as it is', () => {
    const text = 'npm test\n  12 passing (3s)\nsha256:0123456789abcdef path/to/file.ts:12:4 tokenizer';
    assert.equal(redactSecrets(text), text);
  });

  test('capText keeps the head and the tail within the byte budget and marks the cut', () => {
    const text = 'H'.repeat(1000) + 'M'.repeat(5000) + 'T'.repeat(3000);
    const { text: cut, cut: wasCut } = capText(text, 4000);
    assert.ok(wasCut);
    assert.ok(cut.startsWith('H'.repeat(1000)));
    assert.ok(cut.endsWith('T'.repeat(3000)));
    assert.match(cut, /\[… 5000 bytes not kept in the run history …\]/);
    assert.deepEqual(capText('short', 4000), { text: 'short', cut: false });
  });

  test('capText never leaves half a UTF-8 character', () => {
    const { text } = capText('é'.repeat(3000), 1001);
    assert.ok(!text.includes('\uFFFD'));
  });
});
