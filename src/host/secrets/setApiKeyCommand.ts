import * as vscode from 'vscode';
import { isModelProviderId, MODEL_PROVIDER_IDS, MODEL_PROVIDERS, type ModelProviderId } from '../../core/egress/modelProviders';
import type { ModelKeyStore } from './modelKeyStore';

/** Arguments of `agentSandbox.setApiKey` when called programmatically (tests, other extensions, keybindings). */
export interface SetApiKeyArgs {
  provider?: ModelProviderId;
  /** The key to store; asked for in a password box when absent. */
  key?: string;
  /** Remove the provider's key instead. */
  clear?: boolean;
}

/** What the command did (for callers and tests); never the key. */
export type SetApiKeyOutcome = { provider: ModelProviderId; action: 'stored' | 'cleared' } | undefined;

/**
 * `Agent Sandbox: Set API Key…`: pick a provider, type its key in a password box (or clear a stored one). The
 * key goes to SecretStorage; the store's change event sends it on to the engine server.
 */
export async function setApiKey(deps: { keys: ModelKeyStore; log: vscode.LogOutputChannel }, args: SetApiKeyArgs = {}): Promise<SetApiKeyOutcome> {
  const stored = await deps.keys.providers();
  let provider = args.provider;
  if (provider !== undefined && !isModelProviderId(provider)) {
    throw new Error(`Unknown provider ${JSON.stringify(provider)}: use ${MODEL_PROVIDER_IDS.map((id) => `"${id}"`).join(', ')}.`);
  }
  if (!provider) {
    const picked = await vscode.window.showQuickPick(
      MODEL_PROVIDER_IDS.map((id) => ({
        label: MODEL_PROVIDERS[id].label,
        description: stored.includes(id) ? 'key set' : 'no key',
        detail: vscode.l10n.t("Added by the box's gateway on requests to {0}; the box never holds it.", new URL(MODEL_PROVIDERS[id].upstream).host),
        id,
      })),
      { title: 'Agent Sandbox: Set API Key', placeHolder: vscode.l10n.t('The model API whose key the egress gateway adds'), ignoreFocusOut: true },
    );
    provider = picked?.id;
  }
  if (!provider) return undefined;
  const label = MODEL_PROVIDERS[provider].label;
  let clear = args.clear === true;
  if (!clear && args.key === undefined && stored.includes(provider)) {
    const choice = await vscode.window.showQuickPick(
      [
        { label: `Replace the ${label} key…`, clear: false },
        { label: `Clear the ${label} key`, clear: true },
      ],
      { title: `Agent Sandbox: ${label} API key`, ignoreFocusOut: true },
    );
    if (!choice) return undefined;
    clear = choice.clear;
  }
  if (clear) {
    await deps.keys.clear(provider);
    deps.log.info(`[keys] ${label} API key cleared`);
    void vscode.window.showInformationMessage(vscode.l10n.t('Agent Sandbox: the {0} API key was removed; the gateway no longer adds it.', label));
    return { provider, action: 'cleared' };
  }
  const key =
    args.key ??
    (await vscode.window.showInputBox({
      title: `Agent Sandbox: ${label} API key`,
      prompt: vscode.l10n.t(
        "Kept in VS Code's secret storage; the box's egress gateway adds it on requests to {0}. Get one at {1}.",
        new URL(MODEL_PROVIDERS[provider].upstream).host,
        MODEL_PROVIDERS[provider].consoleUrl,
      ),
      password: true,
      ignoreFocusOut: true,
      validateInput: (value) => (value.trim() && !/[^\x21-\x7e]/.test(value.trim()) ? undefined : 'Paste the key: one line, no spaces.'),
    }));
  if (key === undefined) return undefined;
  await deps.keys.set(provider, key);
  // The provider only: a key never reaches a log line.
  deps.log.info(`[keys] ${label} API key stored`);
  void vscode.window.showInformationMessage(
    vscode.l10n.t(
      'Agent Sandbox: the {0} API key is stored. With agentSandbox.network "allowlist", the box\'s gateway adds it; the box gets only a placeholder. Sandboxed terminals already open keep the variables they started with: open a new one to use it.',
      label,
    ),
  );
  return { provider, action: 'stored' };
}
