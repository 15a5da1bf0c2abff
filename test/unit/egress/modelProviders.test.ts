// The model provider table and the pure parts of the gateway's provider routes: the box's variables, route
// parsing and the header rewriting that swaps the box's placeholder for the real key.
import * as assert from 'node:assert/strict';
import {
  checkModelKey,
  MODEL_KEY_PLACEHOLDER,
  MODEL_PROVIDER_IDS,
  MODEL_PROVIDERS,
  parseProviderRoute,
  providerBoxEnv,
  providerRequestHeaders,
  providersWithKeys,
} from '../../../src/core/egress/modelProviders';
import { NETWORK_PRESETS } from '../../../src/core/egress/networkPresets';

suite('unit: model providers (keys added by the egress gateway)', () => {
  test("the table: each provider's upstream origin, key header, and the network preset of the same name holds that host", () => {
    assert.deepEqual(
      MODEL_PROVIDER_IDS.map((id) => [id, MODEL_PROVIDERS[id].upstream, MODEL_PROVIDERS[id].keyHeader, MODEL_PROVIDERS[id].keyFormat]),
      [
        ['anthropic', 'https://api.anthropic.com', 'x-api-key', 'bare'],
        ['openai', 'https://api.openai.com', 'authorization', 'bearer'],
        ['gemini', 'https://generativelanguage.googleapis.com', 'x-goog-api-key', 'bare'],
      ],
    );
    for (const id of MODEL_PROVIDER_IDS) assert.deepEqual([...NETWORK_PRESETS[id]], [new URL(MODEL_PROVIDERS[id].upstream).host], id);
  });

  test('the box gets a base URL through the relay and a placeholder key, only for providers with a stored key', () => {
    assert.deepEqual(providersWithKeys({ anthropic: 'sk-ant-real', openai: '', gemini: undefined }), ['anthropic']);
    assert.deepEqual(providerBoxEnv(['anthropic']), [
      'ANTHROPIC_BASE_URL=http://127.0.0.1:3128/_agent-sandbox/anthropic',
      `ANTHROPIC_API_KEY=${MODEL_KEY_PLACEHOLDER}`,
    ]);
    assert.deepEqual(providerBoxEnv(['openai', 'gemini']), [
      'OPENAI_BASE_URL=http://127.0.0.1:3128/_agent-sandbox/openai/v1',
      'OPENAI_API_KEY=agent-sandbox-placeholder',
      'GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:3128/_agent-sandbox/gemini',
      'GEMINI_API_KEY=agent-sandbox-placeholder',
    ]);
    assert.deepEqual(providerBoxEnv([]), []);
    // With a run id, the base URL carries it (the gateway's record then names the run); an id the route could
    // not carry is left out rather than passed through.
    assert.deepEqual(providerBoxEnv(['anthropic'], 'tool-12')[0], 'ANTHROPIC_BASE_URL=http://127.0.0.1:3128/_agent-sandbox/run-tool-12/anthropic');
    assert.deepEqual(providerBoxEnv(['openai'], 'a/b')[0], 'OPENAI_BASE_URL=http://127.0.0.1:3128/_agent-sandbox/openai/v1');
  });

  test('route parsing: the provider and the upstream path with its query; ".." cannot leave the provider\'s origin; unknown names and other paths', () => {
    assert.deepEqual(parseProviderRoute('/_agent-sandbox/anthropic/v1/messages?beta=true'), {
      provider: 'anthropic',
      name: 'anthropic',
      path: '/v1/messages?beta=true',
    });
    assert.deepEqual(parseProviderRoute('/_agent-sandbox/openai'), { provider: 'openai', name: 'openai', path: '/' });
    assert.deepEqual(parseProviderRoute('/_agent-sandbox/gemini?x=1'), { provider: 'gemini', name: 'gemini', path: '/?x=1' });
    // The path is resolved on the provider's origin: a climb ends at its root, never at another host.
    assert.deepEqual(parseProviderRoute('/_agent-sandbox/anthropic/../../x/..//evil.example/y'), {
      provider: 'anthropic',
      name: 'anthropic',
      path: '//evil.example/y',
    });
    assert.equal(parseProviderRoute('/_agent-sandbox/nope/v1')?.provider, undefined);
    assert.deepEqual(parseProviderRoute('/_agent-sandbox/run-tool-12/anthropic/v1/messages'), {
      provider: 'anthropic',
      name: 'anthropic',
      path: '/v1/messages',
      runId: 'tool-12',
    });
    assert.deepEqual(parseProviderRoute('/_agent-sandbox/run-x/openai/v1?y=1'), { provider: 'openai', name: 'openai', path: '/v1?y=1', runId: 'x' });
    // Only the first segment can name a run; elsewhere `run-…` is part of the provider's path.
    assert.deepEqual(parseProviderRoute('/_agent-sandbox/anthropic/run-x/v1'), { provider: 'anthropic', name: 'anthropic', path: '/run-x/v1' });
    assert.equal(parseProviderRoute('/_agent-sandbox/__proto__/v1')?.provider, undefined);
    assert.equal(parseProviderRoute('/v1/messages'), undefined);
    assert.equal(parseProviderRoute('http://api.anthropic.com/_agent-sandbox/anthropic/v1'), undefined);
    // A client that proxies even loopback requests names the relay itself: that is the route too.
    assert.deepEqual(parseProviderRoute('http://127.0.0.1:3128/_agent-sandbox/anthropic/v1/messages'), {
      provider: 'anthropic',
      name: 'anthropic',
      path: '/v1/messages',
    });
    assert.equal(parseProviderRoute('http://localhost:3128/_agent-sandbox/openai/v1')?.provider, 'openai');
    for (const other of [
      'http://127.0.0.1:3129/_agent-sandbox/anthropic/v1',
      'http://127.0.0.1:3128.evil.example/_agent-sandbox/anthropic/v1',
      'http://127.0.0.1/_agent-sandbox/anthropic/v1',
    ]) {
      assert.equal(parseProviderRoute(other), undefined, other);
    }
  });

  test("header rewriting: every credential header the box sent is dropped, Host is the provider's, the real key goes in the provider's header", () => {
    const fromBox = [
      'Content-Type',
      'application/json',
      'X-Api-Key',
      MODEL_KEY_PLACEHOLDER,
      'authorization',
      `Bearer ${MODEL_KEY_PLACEHOLDER}`,
      'x-goog-api-key',
      MODEL_KEY_PLACEHOLDER,
      'Host',
      'other.test',
      'X-Forwarded-Host',
      'other.test',
      'Cookie',
      'a=b',
      'anthropic-version',
      '2023-06-01',
    ];
    assert.deepEqual(providerRequestHeaders(fromBox, 'anthropic', 'sk-ant-real'), [
      'Content-Type',
      'application/json',
      'anthropic-version',
      '2023-06-01',
      'Host',
      'api.anthropic.com',
      'x-api-key',
      'sk-ant-real',
    ]);
    assert.deepEqual(providerRequestHeaders(fromBox, 'openai', 'sk-real').slice(-4), ['Host', 'api.openai.com', 'authorization', 'Bearer sk-real']);
    assert.deepEqual(providerRequestHeaders(fromBox, 'gemini', 'AIza-real').slice(-4), [
      'Host',
      'generativelanguage.googleapis.com',
      'x-goog-api-key',
      'AIza-real',
    ]);
    // Control: without the rewriting the placeholder and the box's Host would have gone out as they were.
    assert.ok(fromBox.includes(MODEL_KEY_PLACEHOLDER) && fromBox.includes('other.test'));
  });

  test('a key must be one line of visible ASCII; the error names the provider and where keys are made', () => {
    assert.equal(checkModelKey('anthropic', '  sk-ant-abc  '), 'sk-ant-abc');
    assert.throws(() => checkModelKey('anthropic', ''), /Anthropic API key must be one line/);
    assert.throws(() => checkModelKey('openai', 'sk-a\nX-Evil: 1'), /OpenAI API key .*platform\.openai\.com/);
    assert.throws(() => checkModelKey('gemini', 'two words'), /Gemini/);
  });
});
