import * as vscode from 'vscode';
import type { BoxSettings, EgressSettings, EngineSettings } from '../shared/protocol';
import { Disposable } from '../core/lifecycle';

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
] as const satisfies readonly (keyof BoxSettings)[];

/** Keys of `EgressSettings`; machine-scoped in package.json. */
const EGRESS_KEYS = ['network', 'allowedHosts', 'networkPresets', 'gatewayImage', 'gatewayNetwork', 'gatewayDns'] as const satisfies readonly (keyof EgressSettings)[];

/**
 * The one typed accessor for the extension's settings. It owns the keys and the change event; validation
 * happens in the engine server, whose errors name the offending `agentSandbox.*` key.
 */
export class SandboxSettings extends Disposable {
  private readonly changeEmitter = this._register(new vscode.EventEmitter<void>());
  /** Fires when any `agentSandbox.*` setting changes. */
  readonly onDidChange = this.changeEmitter.event;

  constructor() {
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

  /** Box settings the user set explicitly; the server fills in defaults for the rest. */
  box(): Partial<BoxSettings> {
    const config = this.config;
    const result: Partial<Record<keyof BoxSettings, unknown>> = {};
    for (const key of BOX_KEYS) {
      const inspected = config.inspect(key);
      const value =
        inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue ?? inspected?.defaultValue;
      if (value !== undefined) result[key] = value;
    }
    return result as Partial<BoxSettings>;
  }

  /**
   * Network settings: machine-scoped, so only the user's own (global) values count; a workspace or folder value
   * is ignored even if VS Code would apply it, so a repository can never widen where the box connects.
   */
  egress(): Partial<EgressSettings> {
    const config = this.config;
    const result: Partial<Record<keyof EgressSettings, unknown>> = {};
    for (const key of EGRESS_KEYS) {
      const value = config.inspect(key)?.globalValue;
      if (value !== undefined) result[key] = value;
    }
    return result as Partial<EgressSettings>;
  }

  engine(): EngineSettings {
    const dockerHost = this.config.get<string>('dockerHost', '').trim();
    return dockerHost ? { dockerHost } : {};
  }
}
