import * as vscode from 'vscode';
import type { ImageConsentPrompt } from './imageConsent';
import type { InsecureEnginePrompt } from './engineConsent';
import type { ImageBuildPrompt } from './imageBuildConsent';
import { DEFAULT_IMAGE } from '../core/image/imageSource';

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

/** The modal that asks before a folder's devcontainer.json or `.agent-sandbox/Dockerfile` is built. */
export const askImageBuild: ImageBuildPrompt = async ({ file, builds, ignored }) => {
  const build = vscode.l10n.t('Build Image');
  const refuse = vscode.l10n.t('Use {0}', DEFAULT_IMAGE);
  const ignoredText = ignored.length > 0 ? ` Ignored from the file: ${ignored.join(', ')}.` : '';
  const choice = await vscode.window.showWarningMessage(
    vscode.l10n.t('{0} in this folder asks to build the Agent Sandbox image.', file),
    {
      modal: true,
      detail:
        `It builds ${builds}. Building runs the repository's commands (Dockerfile steps, feature install scripts) on your Docker engine, ` +
        `outside the box's hardening and with the engine's network, and the box then runs the result with a copy of the workspace. ` +
        `Build only if you trust this repository. The box stays hardened whatever the image: run arguments, mounts, privileges, ports ` +
        `and lifecycle commands of the file are not used.${ignoredText} Your answer is kept for this version of the files; a change asks again.`,
    },
    build,
    refuse,
  );
  return choice === build ? true : choice === refuse ? false : undefined;
};
