import * as vscode from 'vscode';
import type { ErrorData, ErrorReason } from '../shared/protocol';
import { errorText } from '../core/util/errorText';

/** Where a user without a Docker engine learns to install one (Docker Desktop, or the engine on Linux). */
export const DOCKER_INSTALL_URL = 'https://docs.docker.com/get-started/get-docker/';

/** The typed reason of an error from the engine server, if it carried one. */
export function errorReason(error: unknown): ErrorReason | undefined {
  const data = (error as { data?: Partial<ErrorData> } | undefined)?.data;
  return typeof data?.reason === 'string' ? data.reason : undefined;
}

/**
 * Shows an engine error with the action that fixes it: pull a missing image, check the engine, open the
 * offending setting. Cancellation is not an error worth a message.
 */
export async function showEngineError(error: unknown, log: vscode.LogOutputChannel): Promise<void> {
  const reason = errorReason(error);
  const message = errorText(error);
  if (reason === 'cancelled') return;
  log.error(`[host] ${reason ?? 'error'}: ${message}`);
  switch (reason) {
    case 'image-missing': {
      const choice = await vscode.window.showErrorMessage(
        vscode.l10n.t('Agent Sandbox: {0}', message),
        vscode.l10n.t('Pull Image'),
        vscode.l10n.t('Open Settings'),
      );
      if (choice === vscode.l10n.t('Pull Image')) await vscode.commands.executeCommand('agentSandbox.pullImage');
      if (choice === vscode.l10n.t('Open Settings')) await vscode.commands.executeCommand('workbench.action.openSettings', 'agentSandbox.image');
      return;
    }
    case 'engine-unreachable': {
      const choice = await vscode.window.showErrorMessage(
        vscode.l10n.t('Agent Sandbox: {0}', message),
        vscode.l10n.t('Retry'),
        vscode.l10n.t('Install Docker…'),
        vscode.l10n.t('Open Settings'),
      );
      if (choice === vscode.l10n.t('Retry')) await vscode.commands.executeCommand('agentSandbox.checkEngine');
      if (choice === vscode.l10n.t('Install Docker…')) await vscode.env.openExternal(vscode.Uri.parse(DOCKER_INSTALL_URL));
      if (choice === vscode.l10n.t('Open Settings')) await vscode.commands.executeCommand('workbench.action.openSettings', 'agentSandbox.dockerHost');
      return;
    }
    case 'insecure-engine':
    case 'ssh-host-key':
    case 'ssh-failed': {
      const choice = await vscode.window.showErrorMessage(
        vscode.l10n.t('Agent Sandbox: {0}', message),
        vscode.l10n.t('Open Settings'),
        vscode.l10n.t('Show Log'),
      );
      if (choice === vscode.l10n.t('Open Settings')) await vscode.commands.executeCommand('workbench.action.openSettings', 'agentSandbox.dockerHost');
      if (choice === vscode.l10n.t('Show Log')) log.show(true);
      return;
    }
    case 'image-build-failed':
    case 'image-build-unconfirmed':
    case 'docker-cli-missing': {
      const choice = await vscode.window.showErrorMessage(
        vscode.l10n.t('Agent Sandbox: {0}', message),
        vscode.l10n.t('Show Log'),
        vscode.l10n.t('Open Settings'),
      );
      if (choice === vscode.l10n.t('Show Log')) log.show(true);
      if (choice === vscode.l10n.t('Open Settings')) await vscode.commands.executeCommand('workbench.action.openSettings', 'agentSandbox.image');
      return;
    }
    case 'invalid-setting':
    case 'workspace-full': {
      const setting = (error as { data?: ErrorData }).data?.setting ?? 'agentSandbox';
      const choice = await vscode.window.showErrorMessage(vscode.l10n.t('Agent Sandbox: {0}', message), vscode.l10n.t('Open Settings'));
      if (choice) await vscode.commands.executeCommand('workbench.action.openSettings', setting);
      return;
    }
    default: {
      const choice = await vscode.window.showErrorMessage(vscode.l10n.t('Agent Sandbox: {0}', message), vscode.l10n.t('Show Log'));
      if (choice) log.show(true);
    }
  }
}
