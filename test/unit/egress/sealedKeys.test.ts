// Model keys travel host → engine server sealed to the server's key, so a protocol trace (which logs params)
// never holds one.
import * as assert from 'node:assert/strict';
import { SandboxError } from '../../../src/core/errors';
import { ModelKeyReceiver, sealModelKeys } from '../../../src/core/egress/sealedKeys';

suite('unit: sealed model keys', () => {
  test("sealed to the server's public key they open there; the message (as a trace would log it) holds no key", () => {
    const server = new ModelKeyReceiver();
    const sealed = sealModelKeys(server.publicKey, { anthropic: 'sk-ant-secret-1', openai: 'sk-proj-secret-2' });
    const traced = JSON.stringify({ sealed });
    assert.ok(!traced.includes('secret'), traced);
    assert.deepEqual(server.open(sealed), { anthropic: 'sk-ant-secret-1', openai: 'sk-proj-secret-2' });
    // Control: each seal is new (ephemeral key, nonce), so equal key sets do not look alike on the wire.
    assert.notEqual(
      JSON.stringify(sealModelKeys(server.publicKey, { anthropic: 'sk-ant-secret-1' })),
      JSON.stringify(sealModelKeys(server.publicKey, { anthropic: 'sk-ant-secret-1' })),
    );
  });

  test('another server cannot open them, a changed byte is refused, and a key that is not one line is refused without its text', () => {
    const server = new ModelKeyReceiver();
    const other = new ModelKeyReceiver();
    const sealed = sealModelKeys(server.publicKey, { anthropic: 'sk-ant-x' });
    assert.throws(
      () => other.open(sealed),
      (e: unknown) => SandboxError.is(e, 'invalid-params') && /not sealed to this engine server/.test(e.message),
    );
    const tampered = {
      ...sealed,
      ciphertext: Buffer.from(Buffer.from(sealed.ciphertext, 'base64').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64'),
    };
    assert.throws(
      () => server.open(tampered),
      (e: unknown) => SandboxError.is(e, 'invalid-params'),
    );
    assert.throws(
      () => server.open(sealModelKeys(server.publicKey, { anthropic: 'sk-ant\nInjected: header' })),
      (e: unknown) => SandboxError.is(e, 'invalid-params') && /Anthropic API key must be one line/.test(e.message) && !e.message.includes('Injected'),
    );
    // Unknown providers are ignored, not trusted.
    assert.deepEqual(server.open(sealModelKeys(server.publicKey, { mistral: 'k' } as never)), {});
  });
});
