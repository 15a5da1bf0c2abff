import * as vscode from 'vscode';
import { Disposable } from '../../core/lifecycle';
import { checkModelKey, MODEL_PROVIDER_IDS, providersWithKeys, type ModelKeys, type ModelProviderId } from '../../core/egress/modelProviders';

/** The SecretStorage key of a provider's model API key. */
export function secretKeyOf(provider: ModelProviderId): string {
  return `agentSandbox.modelKey.${provider}`;
}

/**
 * Model API keys in VS Code's SecretStorage (the OS keychain): the only place the extension keeps them. They
 * go to the engine server sealed (see `sealedKeys.ts`) and from there to the egress gateways' stdin; never to
 * a box, a setting, a log or the history.
 */
export class ModelKeyStore extends Disposable {
  private readonly changeEmitter = this._register(new vscode.EventEmitter<void>());
  /** Fires when a provider's key is stored or cleared (in this window or another). */
  readonly onDidChange = this.changeEmitter.event;

  constructor(private readonly secrets: vscode.SecretStorage) {
    super();
    this._register(
      secrets.onDidChange((event) => {
        if (MODEL_PROVIDER_IDS.some((id) => secretKeyOf(id) === event.key)) this.changeEmitter.fire();
      }),
    );
  }

  /** Every stored key, by provider. */
  async all(): Promise<ModelKeys> {
    const keys: ModelKeys = {};
    for (const id of MODEL_PROVIDER_IDS) {
      const value = await this.secrets.get(secretKeyOf(id));
      if (value) keys[id] = value;
    }
    return keys;
  }

  /** Providers with a stored key. */
  async providers(): Promise<ModelProviderId[]> {
    return providersWithKeys(await this.all());
  }

  /** Stores a key after checking its form (throws, naming the provider, for an unusable one). */
  async set(provider: ModelProviderId, key: string): Promise<void> {
    await this.secrets.store(secretKeyOf(provider), checkModelKey(provider, key));
  }

  async clear(provider: ModelProviderId): Promise<void> {
    await this.secrets.delete(secretKeyOf(provider));
  }
}
