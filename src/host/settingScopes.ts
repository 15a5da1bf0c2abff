/**
 * Which `agentSandbox.*` settings a workspace (a cloned repository's `.vscode/settings.json` or a
 * `.code-workspace` file) may set, and how each key's effective value is chosen from VS Code's `inspect()`.
 * Pure (no `vscode` at run time), so the rules are unit-tested; `settings.ts` is the only reader.
 *
 * Invariant 9: a repository cannot steer the box. Settings that decide where data goes or what host data
 * enters the box are machine-scoped in package.json and read from the user level only, whatever VS Code does
 * with workspace values of machine-scoped keys.
 */

/**
 * Keys (without the `agentSandbox.` prefix) read from user settings only: `"scope": "machine"` in
 * package.json and listed in `capabilities.untrustedWorkspaces.restrictedConfigurations`
 * (test/unit/settingScopes.test.ts checks both). Adding a key here is all it takes on this side.
 */
export const MACHINE_SCOPED_KEYS = [
  /** Where the workspace tar and the passed variables travel. */
  'dockerHost',
  /** Which host variables (tokens) enter the box. */
  'envAllowlist',
  /** Which OCI runtime isolates the box (`runc` instead of `runsc` weakens it). */
  'runtime',
  /** Commands run with their permission prompts off, and the host variables they ask for. */
  'agentClis',
  /** How much of the host's git history (and the secrets ever committed) enters the box. */
  'gitHistory',
  /** Whether the box has a way out at all, and to which hosts (egress gateway). */
  'network',
  'allowedHosts',
  'networkPresets',
  /** The image and network of the gateway that carries the box's traffic, and its resolvers. */
  'gatewayImage',
  'gatewayNetwork',
  'gatewayDns',
  /** Which CA certificates the gateway trusts for the TLS that carries the model keys. */
  'gatewayCaFile',
  /** Whether the box follows a moved image tag: trusting what a tag now points to is the user's choice. */
  'pinImageDigest',
  /** What persists from one box to the next of a workspace (package caches), and how much of it. */
  'caches',
  'cacheSizeMiB',
] as const;

export type MachineScopedKey = (typeof MACHINE_SCOPED_KEYS)[number];

/** Keys a workspace may set, but only once the user confirmed the workspace's value (see `ImageConsent`). */
export const CONFIRMED_WORKSPACE_KEYS = ['image'] as const;

/**
 * Keys a workspace may only add to: the effective list is the union of every level, so a repository can
 * leave more out of the box but never bring back what the user's own settings leave out.
 */
export const ADDITIVE_KEYS = ['exclude'] as const;

/**
 * Booleans where `true` at the user level cannot be turned off by a workspace (`useGitignore`: leaving out
 * ignored files is the user's protection, the same as `exclude`).
 */
export const USER_TRUE_WINS_KEYS = ['useGitignore'] as const;

/** Every key a workspace cannot set freely; Restricted Mode ignores all of them in untrusted workspaces. */
export const RESTRICTED_KEYS: readonly string[] = [...MACHINE_SCOPED_KEYS, ...CONFIRMED_WORKSPACE_KEYS];

/** What `WorkspaceConfiguration.inspect()` returns, reduced to the levels this extension reads. */
export interface InspectedSetting<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

/** Where an effective value came from. */
export type SettingOrigin = 'default' | 'user' | 'workspace' | 'workspaceFolder';

export interface EffectiveSetting<T> {
  value: T | undefined;
  origin: SettingOrigin;
}

export function isMachineScoped(key: string): key is MachineScopedKey {
  return (MACHINE_SCOPED_KEYS as readonly string[]).includes(key);
}

/** The user's value, else the default: what a machine-scoped key is, whatever the workspace says. */
export function userLevelValue<T>(inspected: InspectedSetting<T> | undefined): EffectiveSetting<T> {
  if (inspected?.globalValue !== undefined) return { value: inspected.globalValue, origin: 'user' };
  return { value: inspected?.defaultValue, origin: 'default' };
}

/** VS Code's own precedence (folder, workspace, user, default). */
export function workspaceLevelValue<T>(inspected: InspectedSetting<T> | undefined): EffectiveSetting<T> {
  if (inspected?.workspaceFolderValue !== undefined) return { value: inspected.workspaceFolderValue, origin: 'workspaceFolder' };
  if (inspected?.workspaceValue !== undefined) return { value: inspected.workspaceValue, origin: 'workspace' };
  return userLevelValue(inspected);
}

/**
 * The effective value of `key` under the rules above. `image` is returned at VS Code's precedence here; the
 * caller decides (with the user's confirmation) whether a workspace's image is used.
 */
export function effectiveSetting<T>(key: string, inspected: InspectedSetting<T> | undefined): EffectiveSetting<T> {
  if (isMachineScoped(key)) return userLevelValue(inspected);
  if ((ADDITIVE_KEYS as readonly string[]).includes(key)) {
    const levels = [inspected?.globalValue ?? inspected?.defaultValue, inspected?.workspaceValue, inspected?.workspaceFolderValue];
    if (levels.some((level) => level !== undefined && !Array.isArray(level))) return workspaceLevelValue(inspected);
    const union = [...new Set(levels.flatMap((level) => (level as unknown[] | undefined) ?? []))];
    return { value: union as T, origin: workspaceLevelValue(inspected).origin };
  }
  if ((USER_TRUE_WINS_KEYS as readonly string[]).includes(key) && inspected?.globalValue === true) {
    return { value: true as T, origin: 'user' };
  }
  return workspaceLevelValue(inspected);
}
