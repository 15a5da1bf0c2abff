/**
 * Model keys travel from the extension host to the engine server sealed: the server makes an X25519 key pair
 * when it starts and gives its public key in the `initialize` result; the host seals each key set to it with an
 * ephemeral key pair (X25519 → HKDF-SHA256 → AES-256-GCM). A protocol trace at "verbose" (which logs every
 * message's params) therefore shows public keys and ciphertext, never a model key.
 */
import * as crypto from 'node:crypto';
import type { SealedModelKeys } from '../../shared/protocol';
import { SandboxError } from '../errors';
import { checkModelKey, isModelProviderId, type ModelKeys } from './modelProviders';

const INFO = Buffer.from('agent-sandbox model keys v1');

function derive(privateKey: crypto.KeyObject, publicKey: crypto.KeyObject, salt: Buffer): Buffer {
  const shared = crypto.diffieHellman({ privateKey, publicKey });
  return Buffer.from(crypto.hkdfSync('sha256', shared, salt, INFO, 32));
}

function publicKeyFrom(base64: string): crypto.KeyObject {
  return crypto.createPublicKey({ key: Buffer.from(base64, 'base64'), format: 'der', type: 'spki' });
}

/** The server's side: its key pair for this process, and `open`. */
export class ModelKeyReceiver {
  private readonly pair = crypto.generateKeyPairSync('x25519');
  /** Base64 SPKI DER of the public key, for the `initialize` result. */
  readonly publicKey = this.pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');

  /** The keys in `sealed`, each checked; anything that does not open or parse is an `invalid-params` error without the content. */
  open(sealed: SealedModelKeys): ModelKeys {
    let plain: string;
    try {
      const nonce = Buffer.from(sealed.nonce, 'base64');
      const key = derive(this.pair.privateKey, publicKeyFrom(sealed.publicKey), nonce);
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
      plain = Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new SandboxError(
        'invalid-params',
        "The model keys could not be opened: they were not sealed to this engine server's key (restart the extension host and set the key again).",
      );
    }
    const value = JSON.parse(plain) as Record<string, unknown>;
    const keys: ModelKeys = {};
    for (const [provider, text] of Object.entries(value ?? {})) {
      if (!isModelProviderId(provider) || typeof text !== 'string') continue;
      try {
        keys[provider] = checkModelKey(provider, text);
      } catch (error) {
        throw new SandboxError('invalid-params', (error as Error).message);
      }
    }
    return keys;
  }
}

/** The host's side: seals `keys` to the server's public key (base64 SPKI DER from `initialize`). */
export function sealModelKeys(serverPublicKey: string, keys: ModelKeys): SealedModelKeys {
  const ephemeral = crypto.generateKeyPairSync('x25519');
  const nonce = crypto.randomBytes(12);
  const key = derive(ephemeral.privateKey, publicKeyFrom(serverPublicKey), nonce);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce);
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(keys), 'utf8'), cipher.final()]);
  return {
    publicKey: ephemeral.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    nonce: nonce.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
}
