import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeSet, ErrorData } from '../../shared/protocol';
import { Disposable } from '../../core/lifecycle';
import type { EngineClient } from '../engineClient';
import { errorReason, showEngineError } from '../errorMessages';
import { errorText } from '../../core/util/errorText';
import type { RunEvents } from '../runEvents';
import type { SandboxSettings } from '../settings';
import { pickWorkspaceFolder } from '../workspaceFolders';
import { networkPhrase } from '../../core/tools/toolText';
import { agentEnvStatus, agentNetworkNotes, type AgentCliEntry } from './agentClis';
import type { ModelKeyStore } from '../secrets/modelKeyStore';
import { MODEL_PROVIDERS } from '../../core/egress/modelProviders';
import { SandboxPseudoterminal, type SandboxTerminalOptions } from './sandboxPseudoterminal';

/** Id of the contributed terminal profile (`contributes.terminal.profiles`). */
export const TERMINAL_PROFILE_ID = 'agentSandbox.terminal';
/** Theme colour (`contributes.colors`) of a sandboxed terminal's tab: never mistaken for a host terminal. */
const TERMINAL_COLOR_ID = 'agentSandbox.sandboxTerminal';
/** Context key: the active terminal is a sandboxed one (shows the Collect Changes title action). */
const ACTIVE_CONTEXT_KEY = 'agentSandbox.sandboxTerminalActive';

export interface SandboxTerminalsDeps {
  engine: EngineClient;
  runEvents: RunEvents;
  log: vscode.LogOutputChannel;
  /** The agent CLIs and the allowlist (user settings only: a workspace cannot name commands or variables). */
  settings: SandboxSettings;
  /** Which model keys are stored (names only are read here), for the terminal's first lines. */
  modelKeys?: ModelKeyStore;
}

/** Arguments of `agentSandbox.openTerminal` and `agentSandbox.runAgentCli` when called programmatically. */
export interface OpenTerminalArgs {
  /** Absolute path of the workspace folder; the active one when omitted. */
  folder?: string;
}

export interface RunAgentCliArgs extends OpenTerminalArgs {
  /** Name of an entry of `agentSandbox.agentClis`; asked for when omitted. */
  name?: string;
}

/**
 * The sandboxed terminal: the "Agent Sandbox" terminal profile, `Open Sandboxed Terminal`, `Run Agent CLI in
 * Sandbox…` and `Collect Changes` for a terminal that still runs.
 */
export class SandboxTerminals extends Disposable {
  private readonly terminals = new Map<vscode.Terminal, SandboxPseudoterminal>();
  private readonly unclaimed = new Set<SandboxPseudoterminal>();

  constructor(private readonly deps: SandboxTerminalsDeps) {
    super();
    this._register(
      vscode.window.registerTerminalProfileProvider(TERMINAL_PROFILE_ID, {
        provideTerminalProfile: async () => {
          const folder = (await pickWorkspaceFolder())?.uri.fsPath;
          if (!folder) {
            void vscode.window.showWarningMessage(
              vscode.l10n.t("Agent Sandbox: open a folder first; the sandboxed terminal runs in a workspace folder's box."),
            );
            return undefined;
          }
          return new vscode.TerminalProfile(this.terminalOptions({ folder }));
        },
      }),
    );
    this._register(vscode.window.onDidOpenTerminal((terminal) => this.claim(terminal)));
    this._register(
      vscode.window.onDidCloseTerminal((terminal) => {
        const pty = this.terminals.get(terminal);
        this.terminals.delete(terminal);
        // The session may still be collecting; it disposes itself once its end is recorded.
        if (pty) void pty.ended.finally(() => pty.dispose());
        this.updateContext();
      }),
    );
    this._register(vscode.window.onDidChangeActiveTerminal(() => this.updateContext()));
    const command = (id: string, fn: (...args: never[]) => unknown) => this._register(vscode.commands.registerCommand(id, fn));
    command('agentSandbox.openTerminal', (args?: OpenTerminalArgs) => this.openTerminal(args));
    command('agentSandbox.runAgentCli', (args?: RunAgentCliArgs) => this.runAgentCli(args));
    command('agentSandbox.terminal.collect', (arg?: unknown) => this.collect(arg));
  }

  override dispose(): void {
    for (const pty of [...this.terminals.values(), ...this.unclaimed]) pty.dispose();
    super.dispose();
  }

  /** The pseudoterminal behind a terminal, when it is a sandboxed one (for tests and other commands). */
  sandboxOf(terminal: vscode.Terminal): SandboxPseudoterminal | undefined {
    return this.terminals.get(terminal);
  }

  /** `Agent Sandbox: Open Sandboxed Terminal`: a shell in the folder's box. Returns the terminal. */
  async openTerminal(args?: OpenTerminalArgs): Promise<vscode.Terminal | undefined> {
    const folder = args?.folder ?? (await pickWorkspaceFolder())?.uri.fsPath;
    if (!folder) {
      void vscode.window.showWarningMessage(
        vscode.l10n.t("Agent Sandbox: open a folder first; the sandboxed terminal runs in a workspace folder's box."),
      );
      return undefined;
    }
    return this.create({ folder });
  }

  /** `Agent Sandbox: Run Agent CLI in Sandbox…`: an agent CLI from the setting, in a sandboxed terminal. */
  async runAgentCli(args?: RunAgentCliArgs): Promise<vscode.Terminal | undefined> {
    const { entries, problems } = this.deps.settings.agentClis();
    for (const problem of problems) this.deps.log.warn(`[terminal] ${problem}`);
    if (entries.length === 0) {
      const choice = await vscode.window.showWarningMessage(
        vscode.l10n.t('Agent Sandbox: no agent CLI is configured.'),
        vscode.l10n.t('Open Settings'),
      );
      if (choice) await vscode.commands.executeCommand('workbench.action.openSettings', 'agentSandbox.agentClis');
      return undefined;
    }
    let entry: AgentCliEntry | undefined;
    if (args?.name) {
      entry = entries.find((e) => e.name === args.name);
      if (!entry) throw new Error(`No entry named "${args.name}" in agentSandbox.agentClis.`);
    } else {
      const picked = await vscode.window.showQuickPick(
        entries.map((e) => ({ label: e.name, description: e.command, detail: e.env.length ? `needs ${e.env.join(', ')}` : undefined, entry: e })),
        {
          title: 'Run Agent CLI in Sandbox',
          placeHolder: vscode.l10n.t('Runs in the box with its prompts off; the box has {0}', networkPhrase(this.deps.settings.egress())),
          ignoreFocusOut: true,
        },
      );
      entry = picked?.entry;
    }
    if (!entry) return undefined;
    const folder = args?.folder ?? (await pickWorkspaceFolder())?.uri.fsPath;
    if (!folder) {
      void vscode.window.showWarningMessage(vscode.l10n.t("Agent Sandbox: open a folder first; the agent runs in a workspace folder's box."));
      return undefined;
    }
    // Names only: values never appear in a log, a terminal or the history.
    const network = this.deps.settings.egress().network === 'allowlist' ? 'allowlist' : 'none';
    const storedKeys = (await this.deps.modelKeys?.providers()) ?? [];
    const notes = agentNetworkNotes(entry, network, storedKeys);
    // A key the gateway adds is not needed in the box: its variable gets the placeholder, not the host's value.
    const gatewayKeyVariables =
      network === 'allowlist' && entry.provider && storedKeys.includes(entry.provider) ? MODEL_PROVIDERS[entry.provider].keyVariables : [];
    const status = agentEnvStatus(
      { ...entry, env: entry.env.filter((name) => !gatewayKeyVariables.includes(name)) },
      this.deps.settings.envAllowlist(),
      process.env,
    );
    if (status.passed.length) notes.push(`Passed into the box: ${status.passed.join(', ')}.`);
    if (status.notAllowlisted.length)
      notes.push(`Not passed (add to agentSandbox.envAllowlist, then reset the box): ${status.notAllowlisted.join(', ')}.`);
    if (status.unset.length) notes.push(`Allowlisted but not set in VS Code's environment: ${status.unset.join(', ')}.`);
    this.deps.log.info(`[terminal] ${entry.name}: passing ${status.passed.join(', ') || 'no variables'}`);
    return this.create({ folder, command: entry.command, agent: entry.name, notes });
  }

  /** `Agent Sandbox: Collect Changes`: brings what a running sandboxed terminal changed into the review now. */
  async collect(arg?: unknown): Promise<ChangeSet | undefined> {
    const pty =
      (typeof arg === 'string' ? [...this.terminals.values()].find((p) => p.folder === arg) : undefined) ??
      (vscode.window.activeTerminal ? this.terminals.get(vscode.window.activeTerminal) : undefined) ??
      [...this.terminals.values()].find((p) => p.isRunning);
    if (!pty) {
      void vscode.window.showInformationMessage(vscode.l10n.t('Agent Sandbox: no sandboxed terminal is open.'));
      return undefined;
    }
    try {
      const changeSet = await pty.collectNow();
      const n = changeSet.changes.length;
      void vscode.window.showInformationMessage(
        vscode.l10n.t(
          'Agent Sandbox: {0} file{1} changed in the box of {2}; they are in the review.',
          n,
          n === 1 ? '' : 's',
          path.basename(pty.folder),
        ),
      );
      return changeSet;
    } catch (error) {
      await showEngineError(error, this.deps.log);
      return undefined;
    }
  }

  private create(options: SandboxTerminalOptions): vscode.Terminal {
    const terminal = vscode.window.createTerminal(this.terminalOptions(options));
    this.claim(terminal);
    terminal.show();
    return terminal;
  }

  private terminalOptions(options: SandboxTerminalOptions): vscode.ExtensionTerminalOptions {
    const pty = new SandboxPseudoterminal({ ...this.deps, onStartFailed: (error) => void this.showStartError(error) }, options);
    this.unclaimed.add(pty);
    return {
      name: options.agent ? `${options.agent} (sandbox)` : `Agent Sandbox: ${path.basename(options.folder)}`,
      pty,
      iconPath: new vscode.ThemeIcon('shield'),
      color: new vscode.ThemeColor(TERMINAL_COLOR_ID),
      isTransient: true,
    };
  }

  private claim(terminal: vscode.Terminal): void {
    const pty = (terminal.creationOptions as vscode.ExtensionTerminalOptions).pty;
    if (!(pty instanceof SandboxPseudoterminal) || !this.unclaimed.has(pty)) return;
    this.unclaimed.delete(pty);
    this.terminals.set(terminal, pty);
    // However the terminal was asked for (profile menu, command, SCM button), it becomes the active, focused
    // terminal: VS Code leaves a profile's terminal behind the current one, and what the user typed next then
    // ran on the host.
    terminal.show(false);
    this.updateContext();
  }

  private updateContext(): void {
    const active = vscode.window.activeTerminal;
    void vscode.commands.executeCommand('setContext', ACTIVE_CONTEXT_KEY, active !== undefined && this.terminals.has(active));
  }

  /** A missing CLI or shell names the image setting; other errors get the usual actions. */
  private async showStartError(error: unknown): Promise<void> {
    const setting = (error as { data?: Partial<ErrorData> }).data?.setting;
    if (errorReason(error) === 'not-found' && setting) {
      this.deps.log.error(`[terminal] ${errorText(error)}`);
      const choice = await vscode.window.showErrorMessage(vscode.l10n.t('Agent Sandbox: {0}', errorText(error)), vscode.l10n.t('Open Settings'));
      if (choice) await vscode.commands.executeCommand('workbench.action.openSettings', setting);
      return;
    }
    await showEngineError(error, this.deps.log);
  }
}
