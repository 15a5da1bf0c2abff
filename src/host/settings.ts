import * as vscode from 'vscode';
import type { BoxSettings, EgressSettings, EngineSettings } from '../shared/protocol';
import { Disposable } from '../core/lifecycle';
import type { ImageConsent } from './imageConsent';
import { effectiveSetting, userLevelValue, type InspectedSetting, type MachineScopedKey } from './settingScopes';
import { parseAgentClis, type AgentCliEntry } from './terminal/agentClis';

/** The configuration section; every key below is `agentSandbox.<key>` in package.json. */
export const SETTINGS_SECTION = 'agentSandbox';

/** Keys of `BoxSettings` that are VS Code settings of the same name. */
const BOX_KEYS = [
  'image',
  'memoryMiB',
  'cpus',
  'pidsLimit',
  'workspaceSizeMiB',
  'workspaceVolume',
  'tmpSizeMiB',
  'runtime',
  'envAllowlist',
  'exclude',
  'useGitignore',
  'runTimeoutSeconds',
  'outputLimitKiB',
  'idleTimeoutMinutes',
  'maxFileSizeMiB',
  'gitHistory',
  'pinImageDigest',
  'caches',
  'cacheSizeMiB',
] as const satisfies readonly (keyof BoxSettings)[];

/** Keys of `EgressSettings`; each must be machine-scoped (the type refuses one that is not in MACHINE_SCOPED_KEYS). */
const EGRESS_KEYS = [
  'network',
  'allowedHosts',
  'networkPresets',
  'gatewayImage',
  'gatewayNetwork',
  'gatewayDns',
  'gatewayCaFile',
] as const satisfies readonly (keyof EgressSettings & MachineScopedKey)[];

/**
 * The one typed accessor for the extension's settings. It owns the keys, the change event and the scope
 * rules of `settingScopes.ts` (machine-scoped keys come from user settings only; a workspace image needs the
 * user's confirmation); validation happens in the engine server, whose errors name the offending key.
 */
export class SandboxSettings extends Disposable {
  private readonly changeEmitter = this._register(new vscode.EventEmitter<void>());
  /** Fires when any `agentSandbox.*` setting changes. */
  readonly onDidChange = this.changeEmitter.event;

  constructor(private readonly options: { imageConsent?: ImageConsent } = {}) {
    super();
    this._register(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration(SETTINGS_SECTION)) this.changeEmitter.fire();
      }),
    );
  }

  private get config(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration(SETTINGS_SECTION);
  }

  private value<T>(key: string): T | undefined {
    return effectiveSetting<T>(key, this.config.inspect<T>(key) as InspectedSetting<T> | undefined).value;
  }

  /**
   * Box settings the user set explicitly; the server fills in defaults for the rest. The image is the user's
   * (or the default): a workspace's image only comes through `boxForEngine()`, after confirmation.
   */
  box(): Partial<BoxSettings> {
    const result: Partial<Record<keyof BoxSettings, unknown>> = {};
    for (const key of BOX_KEYS) {
      const value = key === 'image' ? userLevelValue(this.config.inspect(key)).value : this.value(key);
      if (value !== undefined) result[key] = value;
    }
    return result as Partial<BoxSettings>;
  }

  /**
   * Network settings: machine-scoped, so only the user's own (global) values count; a workspace or folder value
   * is ignored even if VS Code would apply it, so a repository can never widen where the box connects.
   */
  egress(): Partial<EgressSettings> {
    const result: Partial<Record<keyof EgressSettings, unknown>> = {};
    for (const key of EGRESS_KEYS) {
      const value = this.config.inspect(key)?.globalValue;
      if (value !== undefined) result[key] = value;
    }
    return result as Partial<EgressSettings>;
  }

  /** `box()` with the workspace's image when the user confirmed it for this workspace (asks once). */
  async boxForEngine(): Promise<Partial<BoxSettings>> {
    const box = this.box();
    const consent = this.options.imageConsent;
    if (!consent) return box;
    const image = await consent.resolve(this.config.inspect<string>('image'), workspaceSettingsLocation());
    return image === undefined ? box : { ...box, image };
  }

  /** Where the engine is; `allowInsecure` lists plain-TCP addresses the user allowed. */
  engine(allowInsecure: readonly string[] = []): EngineSettings {
    const dockerHost = (this.value<string>('dockerHost') ?? '').trim();
    return {
      ...(dockerHost ? { dockerHost } : {}),
      ...(allowInsecure.length > 0 ? { allowInsecureHosts: [...allowInsecure] } : {}),
    };
  }

  /** Names of host variables passed into the box (user settings only). */
  envAllowlist(): string[] {
    const value = this.value<unknown>('envAllowlist');
    return Array.isArray(value) ? value.filter((name): name is string => typeof name === 'string') : [];
  }

  /** The agent CLIs offered (user settings only), with problems of malformed entries. */
  agentClis(): { entries: AgentCliEntry[]; problems: string[] } {
    return parseAgentClis(this.value<unknown>('agentClis'));
  }
}

/** Where a workspace-level setting of this window lives, for messages and consent keys. */
function workspaceSettingsLocation(): string {
  const file = vscode.workspace.workspaceFile;
  if (file) return file.scheme === 'file' ? file.fsPath : file.toString();
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  if (!folder) return 'the workspace settings';
  return folder.scheme === 'file'
    ? vscode.Uri.joinPath(folder, '.vscode', 'settings.json').fsPath
    : vscode.Uri.joinPath(folder, '.vscode', 'settings.json').toString();
}
