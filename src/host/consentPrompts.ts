import * as vscode from 'vscode';
import type { ImageConsentPrompt } from './imageConsent';
import type { InsecureEnginePrompt } from './engineConsent';

/** The modal that asks whether a workspace may choose the box's image. */
export const askWorkspaceImage: ImageConsentPrompt = async ({ image, where, fallback }) => {
  const allow = 'Use This Image';
  const refuse = `Use ${fallback}`;
  const choice = await vscode.window.showWarningMessage(
    vscode.l10n.t('This workspace sets the Agent Sandbox image to "{0}".', image),
    {
      modal: true,
      detail:
        `Set in ${where}. The image runs with a copy of the workspace and the variables of agentSandbox.envAllowlist inside it. ` +
        `Use it only if you trust where it comes from. Your choice is remembered for this workspace and image.`,
    },
    allow,
    refuse,
  );
  return choice === allow ? true : choice === refuse ? false : undefined;
};

/** The modal that asks before the engine server talks plain TCP to a remote engine. */
export const askInsecureEngine: InsecureEnginePrompt = async (address) => {
  const allow = 'Send Unencrypted';
  const choice = await vscode.window.showWarningMessage(
    vscode.l10n.t('The Docker engine at {0} is reached over plain TCP without TLS.', address),
    {
      modal: true,
      detail:
        `The workspace and passed variables would travel unencrypted to ${address}; anyone on the network path can read or change them. ` +
        `Prefer TLS (DOCKER_TLS_VERIFY, a Docker context with TLS) or ssh://. Your choice is remembered for this address.`,
    },
    allow,
  );
  return choice === allow;
};
