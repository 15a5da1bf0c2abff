import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildAllowlist, findAllowRule, normalizeHost, parseAllowRule } from '../../../src/core/egress/allowlist';
import { NETWORK_PRESETS } from '../../../src/core/egress/networkPresets';
import { SandboxError } from '../../../src/core/errors';

function rejects(fn: () => unknown, setting: string, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(SandboxError.is(error, 'invalid-setting'), String(error));
    assert.equal(error.options.setting, setting);
    assert.match(error.message, message);
    return true;
  });
}

suite('unit: egress allowlist', () => {
  test('entries parse to host, port (443 unless written) and kind', () => {
    assert.deepEqual(parseAllowRule('Example.COM'), { kind: 'exact', host: 'example.com', port: 443, source: 'Example.COM' });
    assert.deepEqual(parseAllowRule(' example.com:8080 '), { kind: 'exact', host: 'example.com', port: 8080, source: 'example.com:8080' });
    assert.deepEqual(parseAllowRule('*.example.com'), { kind: 'subdomains', host: 'example.com', port: 443, source: '*.example.com' });
    assert.deepEqual(parseAllowRule('*.example.com:80'), { kind: 'subdomains', host: 'example.com', port: 80, source: '*.example.com:80' });
    assert.deepEqual(parseAllowRule('example.com.'), { kind: 'exact', host: 'example.com', port: 443, source: 'example.com.' });
    assert.equal(parseAllowRule('bücher.example').host, 'xn--bcher-kva.example');
    assert.deepEqual(parseAllowRule('203.0.113.7:8443'), { kind: 'exact', host: '203.0.113.7', port: 8443, source: '203.0.113.7:8443' });
    assert.deepEqual(parseAllowRule('[2001:DB8::1]:8443'), { kind: 'exact', host: '2001:db8::1', port: 8443, source: '[2001:DB8::1]:8443' });
    assert.equal(parseAllowRule('[2001:db8::1]').port, 443);
  });

  test('bad entries are refused with a message naming agentSandbox.allowedHosts and the fix', () => {
    const key = 'agentSandbox.allowedHosts';
    rejects(() => parseAllowRule('https://example.com'), key, /is a URL; write only the host/);
    rejects(() => parseAllowRule('example.com/path'), key, /is a URL/);
    rejects(() => parseAllowRule('example.com:0'), key, /invalid port/);
    rejects(() => parseAllowRule('example.com:65536'), key, /invalid port/);
    rejects(() => parseAllowRule('example.com:http'), key, /invalid port/);
    rejects(() => parseAllowRule('*'), key, /only subdomain wildcards|not a valid wildcard/);
    rejects(() => parseAllowRule('*.com'), key, /every name under the top-level domain "com"/);
    rejects(() => parseAllowRule('api.*.example.com'), key, /only subdomain wildcards/);
    rejects(() => parseAllowRule('exa mple.com'), key, /not a valid host/);
    rejects(() => parseAllowRule('user@example.com'), key, /not a valid host/);
    rejects(() => parseAllowRule('-bad.example.com'), key, /not a valid host/);
    rejects(() => parseAllowRule(''), key, /is not a host/);
    rejects(() => parseAllowRule(42), key, /is not a host/);
  });

  test('names that some resolvers read as addresses are never names', () => {
    for (const text of ['127.1', '0x7f.1', '2130706433', '1.2.3', '0x7f000001']) {
      assert.equal(normalizeHost(text), undefined, text);
    }
    assert.equal(normalizeHost('127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeHost('[::1]'), '::1');
    assert.equal(normalizeHost('a%2f.example'), undefined);
  });

  test('matching: exact host and port; a wildcard matches subdomains at any depth but not the domain itself', () => {
    const rules = buildAllowlist(['example.com', '*.example.org', 'plain.example.net:80', '203.0.113.7'], []);
    const allowed = (host: string, port: number): string | undefined => findAllowRule(rules, host, port)?.source;
    assert.equal(allowed('example.com', 443), 'example.com');
    assert.equal(allowed('example.com', 80), undefined);
    assert.equal(allowed('www.example.com', 443), undefined);
    assert.equal(allowed('api.example.org', 443), '*.example.org');
    assert.equal(allowed('a.b.example.org', 443), '*.example.org');
    assert.equal(allowed('example.org', 443), undefined);
    assert.equal(allowed('evilexample.org', 443), undefined);
    assert.equal(allowed('example.org.evil.test', 443), undefined);
    assert.equal(allowed('plain.example.net', 80), 'plain.example.net:80');
    assert.equal(allowed('plain.example.net', 443), undefined);
    assert.equal(allowed('203.0.113.7', 443), '203.0.113.7');
    // An IP address is never a subdomain of a wildcard, and a wildcard over digits is refused outright.
    assert.equal(findAllowRule(buildAllowlist(['*.example.org'], []), '203.0.113.7', 443), undefined);
    rejects(() => parseAllowRule('*.0.113.7'), 'agentSandbox.allowedHosts', /not a valid wildcard/);
  });

  test('presets add their hosts; an unknown preset is refused naming agentSandbox.networkPresets', () => {
    const rules = buildAllowlist(['example.com'], ['npm', 'github']);
    assert.deepEqual(
      rules.map((r) => r.host),
      ['example.com', ...NETWORK_PRESETS.npm, ...NETWORK_PRESETS.github],
    );
    assert.equal(findAllowRule(rules, 'registry.npmjs.org', 443)?.source, 'registry.npmjs.org (preset npm)');
    rejects(
      () => buildAllowlist([], ['npm', 'evil']),
      'agentSandbox.networkPresets',
      /"evil" is not a preset; use "npm", "pypi", "github", "anthropic", "openai", "gemini"/,
    );
    rejects(() => buildAllowlist([], ['toString']), 'agentSandbox.networkPresets', /is not a preset/);
    rejects(() => buildAllowlist('example.com', []), 'agentSandbox.allowedHosts', /must be a list/);
    rejects(() => buildAllowlist([], 'npm'), 'agentSandbox.networkPresets', /must be a list/);
  });

  test('every preset entry is a valid allowlist entry, and the README lists each preset word for word', () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', '..', 'README.md'), 'utf8');
    for (const [name, hosts] of Object.entries(NETWORK_PRESETS)) {
      for (const host of hosts) parseAllowRule(host);
      const row = `| \`${name}\` | ${hosts.map((h) => `\`${h}\``).join(', ')} |`;
      assert.ok(readme.includes(row), `README.md lacks the row: ${row}`);
    }
  });
});
