import * as vscode from 'vscode';
import type { BoxSettings, EngineSettings } from '../shared/protocol';
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
    // Machine-scoped (design.md invariant 9): what host data enters the box is never a workspace's choice.
    const gitHistory = config.inspect('gitHistory');
    result.gitHistory = gitHistory?.globalValue ?? gitHistory?.defaultValue;
    return result as Partial<BoxSettings>;
  }

  engine(): EngineSettings {
    const dockerHost = this.config.get<string>('dockerHost', '').trim();
    return dockerHost ? { dockerHost } : {};
  }
}
