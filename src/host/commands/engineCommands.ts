import * as vscode from 'vscode';
import { AUTO_IMAGE, DEFAULT_IMAGE } from '../../core/image/imageSource';
import type { EngineReport } from '../../shared/protocol';
import type { EngineClient } from '../engineClient';
import type { SandboxSettings } from '../settings';
import { showEngineError } from '../errorMessages';
import { describeImageReport, summarizeImageReport } from '../../core/docker/imageReportText';
import { pickWorkspaceFolder } from '../workspaceFolders';

export interface EngineCommandDeps {
  engine: EngineClient;
  log: vscode.LogOutputChannel;
  /** The settings accessor, to name the configured image. */
  settings?: SandboxSettings;
}

/** `Agent Sandbox: Check Docker Engine`: engine and API version, runtimes, whether the image is present. */
export async function checkEngine(deps: EngineCommandDeps): Promise<EngineReport | undefined> {
  try {
    const report = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: 'Agent Sandbox: checking the Docker engine' },
      () => deps.engine.checkEngine(),
    );
    const lines = [
      `Docker engine ${report.version} (API ${report.apiVersion}, ${report.os}) at ${report.host} [from ${report.source}]`,
      `Runtimes: ${report.runtimes.join(', ') || '(none reported)'}; default ${report.defaultRuntime || '?'}`,
      `Image ${report.image.reference}: ${report.image.present ? `present (${report.image.id})` : 'not present locally'}`,
      ...(report.image.pinnedId ? [`Pinned to ${report.image.pinnedId} (agentSandbox.pinImageDigest)`] : []),
      ...(report.image.note ? [report.image.note] : []),
      ...(report.image.report ? [`Image report: ${summarizeImageReport(report.image.report)}`] : []),
    ];
    lines.forEach((line) => deps.log.info(`[check] ${line}`));
    report.image.report && describeImageReport(report.image.report).forEach((line) => deps.log.info(`[check] ${line}`));
    const actions = [...(report.image.present ? [] : ['Pull Image']), ...(report.image.note ? ['Follow Image Tag'] : []), 'Show Log'];
    const show = report.image.note ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    // The report is returned at once (callers and tests need not wait for the notification to be dismissed).
    void show(vscode.l10n.t('Agent Sandbox: {0}', lines.join(' · ')), ...actions).then((choice) => {
      if (choice === 'Pull Image') void vscode.commands.executeCommand('agentSandbox.pullImage');
      if (choice === 'Follow Image Tag') void vscode.commands.executeCommand('agentSandbox.followImageTag');
      if (choice === 'Show Log') deps.log.show(true);
    });
    return report;
  } catch (error) {
    await showEngineError(error, deps.log);
    return undefined;
  }
}

/**
 * `Agent Sandbox: Follow Image Tag`: pins the configured image anew to what its tag points to now
 * (`agentSandbox.pinImageDigest`); the next box (after Reset Sandbox for a running one) uses it.
 */
export async function followImageTag(deps: EngineCommandDeps): Promise<EngineReport | undefined> {
  try {
    const report = await deps.engine.followImageTag();
    const message = `${report.image.reference} now follows its tag: ${report.image.id ?? '?'}. A running box keeps its image until Agent Sandbox: Reset Sandbox.`;
    deps.log.info(`[host] ${message}`);
    void vscode.window.showInformationMessage(vscode.l10n.t('Agent Sandbox: {0}', message));
    return report;
  } catch (error) {
    await showEngineError(error, deps.log);
    return undefined;
  }
}

/**
 * `Agent Sandbox: Pull Image`: pulls the configured image (or `image`) with its download size and percentage in
 * the notification's progress bar. True only when the pull completed: a pull that failed midway is an error.
 */
export async function pullImage(deps: EngineCommandDeps, image?: string): Promise<boolean> {
  try {
    const configured = deps.settings?.box().image;
    // `auto` pulls the default image (a folder's own image is built, not pulled).
    const name = image ?? (configured && configured !== AUTO_IMAGE ? configured : DEFAULT_IMAGE);
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Agent Sandbox: pulling ${name}`, cancellable: true },
      async (progress, token) => {
        const progressToken = deps.engine.newProgressToken();
        let shown = 0;
        const sub = deps.engine.onProgress((p) => {
          if (p.token !== progressToken) return;
          // The bar only moves forward; the total grows as the engine starts further layers.
          const now = p.total ? Math.min(100, Math.floor(((p.done ?? 0) / p.total) * 100)) : shown;
          progress.report({ message: p.message, increment: Math.max(0, now - shown) });
          shown = Math.max(shown, now);
        });
        try {
          await deps.engine.pullImage({ image, progressToken }, token);
        } finally {
          sub.dispose();
        }
      },
    );
    deps.log.info(`[host] pulled ${name}`);
    void vscode.window.showInformationMessage(vscode.l10n.t('Agent Sandbox: pulled {0}.', name));
    return true;
  } catch (error) {
    await showEngineError(error, deps.log);
    return false;
  }
}

/**
 * `Agent Sandbox: Reset Sandbox`: removes the folder's box and its pending changes (or every box when asked
 * to). From the palette, pending changes are only dropped after a modal says how many; keeping them means the
 * next box gets them back for review.
 */
export async function resetSandbox(deps: EngineCommandDeps, folderArg?: string | { all: true }): Promise<void> {
  try {
    if (typeof folderArg === 'object' && folderArg.all) {
      await deps.engine.reset(undefined, { discardPending: true });
    } else {
      const folder = typeof folderArg === 'string' ? folderArg : (await pickWorkspaceFolder())?.uri.fsPath;
      if (!folder) return;
      let discardPending = true;
      if (folderArg === undefined) {
        const pending = (await deps.engine.pendingChanges(folder)).changes.length;
        if (pending > 0) {
          const choice = await vscode.window.showWarningMessage(
            vscode.l10n.t('Reset the sandbox? Its box is removed. It has {0} pending change(s).', pending),
            { modal: true },
            vscode.l10n.t('Reset and Discard Changes'),
            vscode.l10n.t('Reset, Keep Changes for Review'),
          );
          if (!choice) return;
          discardPending = choice === vscode.l10n.t('Reset and Discard Changes');
        }
      }
      await deps.engine.reset(folder, { discardPending });
      await vscode.commands.executeCommand('agentSandbox.review.refresh', folder);
    }
    deps.log.info('[host] sandbox reset');
    void vscode.window.setStatusBarMessage('Agent Sandbox: box removed; the next run starts a fresh one', 4000);
  } catch (error) {
    await showEngineError(error, deps.log);
  }
}
