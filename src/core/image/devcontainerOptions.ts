import * as path from 'node:path';
import type { DevcontainerBuildInputs } from './imageInputs';
import { devcontainerDockerBuild } from './imageInputs';

/**
 * The devcontainer.json properties that decide the image (built by the Dev Containers CLI). Everything else is
 * about how a dev container *runs* — its arguments, mounts, privileges, users, ports, environment, lifecycle
 * commands — and the box runs its own way, hardened, whatever the image: those are listed as ignored.
 */
const HONOURED = new Set(['name', 'image', 'build', 'dockerFile', 'context', 'features', 'overrideFeatureInstallOrder', '$schema', 'configFilePath']);

/** Lifecycle commands: never run on their own; the user can run one as a run in the box, where it is seen and reviewed. */
export const LIFECYCLE_COMMANDS = [
  'initializeCommand',
  'onCreateCommand',
  'updateContentCommand',
  'postCreateCommand',
  'postStartCommand',
  'postAttachCommand',
] as const;

/** The configuration's properties the box does not honour, in the file's order. */
export function ignoredDevcontainerOptions(configuration: Record<string, unknown>): string[] {
  return Object.keys(configuration).filter((key) => !HONOURED.has(key) && configuration[key] !== undefined);
}

/** The lifecycle commands the configuration has, as written (a string, an argv list, or named parallel commands). */
export function lifecycleCommands(configuration: Record<string, unknown>): { name: string; command: unknown }[] {
  return LIFECYCLE_COMMANDS.filter((name) => configuration[name] !== undefined).map((name) => ({ name, command: configuration[name] }));
}

/** What a devcontainer.json builds, in words for the confirmation: the base image or Dockerfile, and its features. */
export function describeDevcontainerBuild(folder: string, inputs: DevcontainerBuildInputs): string {
  const { configuration } = inputs;
  const docker = devcontainerDockerBuild(inputs);
  const relative = (file: string) => path.relative(folder, file).split(path.sep).join('/') || '.';
  const base = docker
    ? `the Dockerfile ${relative(docker.dockerfile)} (build context ${relative(docker.context)})`
    : `the image ${typeof configuration.image === 'string' ? configuration.image : '(none)'}`;
  const features = configuration.features && typeof configuration.features === 'object' ? Object.keys(configuration.features) : [];
  return features.length > 0 ? `${base} with the features ${features.join(', ')}` : base;
}
