import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ChangeSet, ExecResult } from '../../shared/protocol';
import type { EngineClient } from '../engineClient';
import { errorReason, showEngineError } from '../errorMessages';
import { errorText } from '../../core/util/errorText';
import { applyChanges, flaggedPaths, type ApplyOutcome } from '../review/applyChanges';
import type { RunEndChoice } from '../review/runEndPrompt';
import { networkPhrase, runNotes } from '../../core/tools/toolText';
import type { SandboxSettings } from '../settings';
import type { RunEvents } from '../runEvents';
import { pickWorkspaceFolder } from '../workspaceFolders';

/** What to do with the changes once the run ends; `ask` shows the notification with the three choices. */
export type RunDecision = 'ask' | 'apply' | 'discard' | 'keep';

/** Arguments of `agentSandbox.runCommand` when called programmatically (a string is just the command). */
export interface RunCommandArgs {
  command: string;
  /** Absolute path of the workspace folder; the active one when omitted. */
  folder?: string;
  cwd?: string;
  timeoutSeconds?: number;
  /** `none`: run offline even when the box may reach allowed hosts (`ExecRequest.Params.network`). */
  network?: 'none';
  decision?: RunDecision;
  /**
   * When the image is missing: `ask` (default) offers to pull it and then runs the command; `pull` pulls it
   * without asking (callers that decided already, tests); `fail` reports the error.
   */
  imageMissing?: 'ask' | 'pull' | 'fail';
}

/** What the command returns, so callers (agents, tests, keybindings) can act on it. */
export interface RunCommandResult {
  result: ExecResult;
  changeSet: ChangeSet;
  decision: 'applied' | 'discarded' | 'kept';
  applied?: ApplyOutcome;
}

export interface RunCommandDeps {
  engine: EngineClient;
  runEvents: RunEvents;
  log: vscode.LogOutputChannel;
  output: vscode.OutputChannel;
  /** The user's network settings, for the prompt's words on what the box can reach. */
  settings?: Pick<SandboxSettings, 'egress'>;
  /** The run-end question (a notification that stays until answered); see `ReviewController.askRunEnd`. */
  review?: { askRunEnd(folder: string, paths: readonly string[], message: string, title: string): Promise<RunEndChoice> };
}

/**
 * `Agent Sandbox: Run Command in Sandbox…`: runs a command in the folder's box with its output streamed to
 * the "Agent Sandbox: Run Output" channel, collects what it changed and offers Review / Apply All / Discard.
 */
export async function runCommandInSandbox(deps: RunCommandDeps, args?: string | RunCommandArgs): Promise<RunCommandResult | undefined> {
  const request: Partial<RunCommandArgs> = typeof args === 'string' ? { command: args } : (args ?? {});
  const folder = request.folder ?? (await pickWorkspaceFolder())?.uri.fsPath;
  if (!folder) {
    void vscode.window.showWarningMessage(vscode.l10n.t('Agent Sandbox: open a folder first; the sandbox mirrors a workspace folder.'));
    return undefined;
  }
  const command =
    request.command ??
    (await vscode.window.showInputBox({
      title: 'Run Command in Sandbox',
      prompt: vscode.l10n.t(
        'Runs in the box of {0} ({1}); changes come back for review',
        path.basename(folder),
        request.network === 'none' ? 'offline' : networkPhrase(deps.settings?.egress() ?? {}),
      ),
      placeHolder: 'npm test',
      ignoreFocusOut: true,
    }));
  if (!command) return undefined;

  const { engine, output } = deps;
  try {
    const run = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Agent Sandbox', cancellable: true },
      async (progress, token) => {
        const progressToken = engine.newProgressToken();
        const sub = engine.onProgress((p) => {
          if (p.token === progressToken) progress.report({ message: p.total ? `${p.message} ${percent(p.done, p.total)}` : p.message });
        });
        try {
          progress.report({ message: 'Preparing the box…' });
          await engine.ensureBox({ folder, progressToken }, token);
          const runId = `host-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
          output.appendLine(`$ ${command}`);
          output.show(true);
          const outputSub = engine.onOutput((chunk) => {
            if (chunk.runId === runId) output.append(chunk.text);
          });
          const cancelSub = token.onCancellationRequested(() => void engine.cancelRun(runId));
          progress.report({ message: `Running: ${command}` });
          deps.runEvents.fireStarted({ runId, folder, source: 'command', command, cwd: request.cwd, startedAt: Date.now() });
          let result: ExecResult | undefined;
          try {
            result = await engine.exec({
              folder,
              command,
              cwd: request.cwd,
              timeoutSeconds: request.timeoutSeconds,
              runId,
              ...(request.network ? { network: request.network } : {}),
            });
            output.appendLine(`\n[${describeOutcome(result)} in ${(result.durationMs / 1000).toFixed(1)} s]`);
            for (const note of runNotes(result)) output.appendLine(`[${note}]`);
            progress.report({ message: 'Collecting changes…' });
            const changeSet = await engine.collectAfterRun(folder, result);
            deps.runEvents.fireEnded({ runId, folder, result, changeSet, endedAt: Date.now() });
            return { result, changeSet };
          } catch (error) {
            deps.runEvents.fireEnded({
              runId,
              folder,
              result,
              error: { reason: errorReason(error), message: errorText(error) },
              endedAt: Date.now(),
            });
            throw error;
          } finally {
            outputSub.dispose();
            cancelSub.dispose();
          }
        } finally {
          sub.dispose();
        }
      },
    );
    return await decide(deps, command, run.result, run.changeSet, request.decision ?? 'ask');
  } catch (error) {
    const imageMissing = request.imageMissing ?? 'ask';
    if (errorReason(error) === 'image-missing' && imageMissing !== 'fail') {
      // Nothing ran yet (the box could not be created): once the image is pulled, the same run goes on. The
      // prompt (or the pull command's own error) has told the user already.
      deps.log.warn(`[host] ${errorText(error)}`);
      if (await pullMissingImage(imageMissing, errorText(error))) {
        return runCommandInSandbox(deps, { ...request, folder, command, imageMissing: 'fail' });
      }
    } else if (errorReason(error) !== 'cancelled') {
      await showEngineError(error, deps.log);
    }
    if (request.decision && request.decision !== 'ask') throw error;
    return undefined;
  }
}

/** Offers (or, with `pull`, goes straight) to pull the missing image; true when it was pulled. */
async function pullMissingImage(mode: 'ask' | 'pull', message: string): Promise<boolean> {
  if (mode === 'ask') {
    const choice = await vscode.window.showErrorMessage(
      vscode.l10n.t('Agent Sandbox: {0}', message),
      vscode.l10n.t('Pull Image and Run'),
      vscode.l10n.t('Open Settings'),
    );
    if (choice === vscode.l10n.t('Open Settings')) await vscode.commands.executeCommand('workbench.action.openSettings', 'agentSandbox.image');
    if (choice !== vscode.l10n.t('Pull Image and Run')) return false;
  }
  return (await vscode.commands.executeCommand<boolean>('agentSandbox.pullImage')) === true;
}

async function decide(
  deps: RunCommandDeps,
  command: string,
  result: ExecResult,
  changeSet: ChangeSet,
  decision: RunDecision,
): Promise<RunCommandResult> {
  const { engine } = deps;
  const n = changeSet.changes.length;
  for (const conflict of result.conflicts) {
    deps.log.warn(`[host] conflict: ${conflict} changed in the workspace and in the box; the box kept its version`);
  }
  if (changeSet.refused.length > 0) {
    deps.log.warn(
      `[host] refused ${changeSet.refused.length} unsafe entr(ies) from the box: ${changeSet.refused.map((r) => `${r.path} (${r.reason})`).join(', ')}`,
    );
  }
  let choice: RunDecision = decision;
  if (choice === 'ask') {
    if (n === 0) {
      void vscode.window.showInformationMessage(vscode.l10n.t('Agent Sandbox: {0}; no files changed.', describeOutcome(result)));
      return { result, changeSet, decision: 'kept' };
    }
    const message = `${describeOutcome(result)}; ${n} file${n === 1 ? '' : 's'} changed in the box.`;
    choice = deps.review
      ? await deps.review.askRunEnd(
          changeSet.folder,
          changeSet.changes.map((c) => c.path),
          message,
          `Agent Sandbox: ${command}`,
        )
      : 'keep';
  }
  if (choice === 'discard') {
    await engine.discard(changeSet.folder);
    deps.runEvents.fireDecided({ folder: changeSet.folder, paths: changeSet.changes.map((c) => c.path), decision: 'rejected', at: Date.now() });
    return { result, changeSet, decision: 'discarded' };
  }
  if (choice === 'apply') {
    const flagged = flaggedPaths(changeSet);
    let approveFlagged: string[] = [];
    if (flagged.length > 0 && decision === 'ask') {
      const confirm = await vscode.window.showWarningMessage(
        vscode.l10n.t('These changes can run code on your machine: {0}. Apply them too?', flagged.join(', ')),
        { modal: true, detail: vscode.l10n.t('Choosing "Apply Others" applies everything else and leaves these pending.') },
        vscode.l10n.t('Apply All Including These'),
        vscode.l10n.t('Apply Others'),
      );
      if (!confirm) return { result, changeSet, decision: 'kept' };
      if (confirm === vscode.l10n.t('Apply All Including These')) approveFlagged = flagged;
    }
    const applied = await applyChanges(engine, changeSet, { approveFlagged, label: `Agent Sandbox: ${command}` });
    deps.runEvents.fireDecided({ folder: changeSet.folder, paths: applied.applied, decision: 'accepted', at: Date.now() });
    reportApplied(applied);
    return { result, changeSet, decision: 'applied', applied };
  }
  return { result, changeSet, decision: 'kept' };
}

function reportApplied(outcome: ApplyOutcome): void {
  const parts = [`applied ${outcome.applied.length} change(s)`];
  if (outcome.conflicts.length) parts.push(`${outcome.conflicts.length} conflict(s) left pending: ${outcome.conflicts.join(', ')}`);
  if (outcome.skipped.length) parts.push(`${outcome.skipped.length} skipped: ${outcome.skipped.map((s) => `${s.path} (${s.reason})`).join(', ')}`);
  const message = `Agent Sandbox: ${parts.join('; ')}.`;
  if (outcome.conflicts.length || outcome.skipped.length) void vscode.window.showWarningMessage(message);
  else void vscode.window.showInformationMessage(message);
}

function describeOutcome(result: ExecResult): string {
  switch (result.outcome) {
    case 'exited':
      return `exited with ${result.exitCode}`;
    case 'timeout':
      return 'timed out and was stopped';
    case 'cancelled':
      return 'was cancelled';
    case 'oom':
      return 'was killed: out of memory (raise agentSandbox.memoryMiB)';
    case 'engine-error':
      return `failed: ${result.error ?? 'engine error'}`;
  }
}

function percent(done = 0, total = 1): string {
  return `${Math.min(100, Math.round((done / Math.max(total, 1)) * 100))}%`;
}
