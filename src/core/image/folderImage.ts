import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ImageBuildDecisions, ImageSourceInfo } from '../../shared/protocol';
import type { DockerEngine } from '../docker/dockerEngine';
import type { EngineLocation } from '../docker/engineLocation';
import { SandboxError } from '../errors';
import { buildStep, runBuildProcess } from './buildProcess';
import { describeDevcontainerBuild, ignoredDevcontainerOptions, lifecycleCommands } from './devcontainerOptions';
import { builtImageTag, devcontainerInputs, dockerfileInputs, imageInputHash, type DevcontainerBuildInputs, type ImageInputs } from './imageInputs';
import { AUTO_IMAGE, DEFAULT_IMAGE, findFolderImageSource, sourceFile, type FolderImageSource } from './imageSource';

/** The image a folder's box runs: a reference `Box.create` can use as is (present locally or pulled), and where it came from. */
export interface FolderImage {
  reference: string;
  source: ImageSourceInfo;
}

export type BuildProgress = (message: string, done?: number, total?: number) => void;

/** One `auto` resolution: the folder, the setting, the user's answers, and where progress goes. */
export interface FolderImageRequest {
  engine: DockerEngine;
  folder: string;
  /** `agentSandbox.image`: `auto`, or an image used as is. */
  setting: string;
  decisions: ImageBuildDecisions | undefined;
  progress: BuildProgress;
  signal?: AbortSignal;
}

/** What a folder's file would build, found before anyone is asked. */
interface BuildPlan {
  folder: string;
  /** The file, relative to the folder. */
  file: string;
  found: Exclude<FolderImageSource, { kind: 'default' }>;
  devcontainer?: DevcontainerBuildInputs;
  /** A Docker Compose dev container: not built. */
  compose?: boolean;
  inputs: ImageInputs;
  inputHash: string;
  tag: string;
  builds: string;
  ignored: string[];
  lifecycle: string[];
}

export interface FolderImageOptions {
  /** `dist/devcontainers-cli/devcontainer.js` (the Dev Containers CLI as shipped) or the package's own. */
  devcontainerCliPath: string;
  /** The engine server's environment: PATH finds `docker`; DOCKER_* are replaced by the engine in use. */
  env: Record<string, string | undefined>;
  log: (line: string) => void;
  /** The program that runs the CLI's JavaScript (this Node; VS Code's with ELECTRON_RUN_AS_NODE). */
  nodePath?: string;
  /** The `docker` command line; default `docker` on PATH. */
  dockerPath?: string;
}

/**
 * Chooses and builds the image of one folder's box for `agentSandbox.image: "auto"`: the folder's dev container
 * (through the Dev Containers CLI, the reference implementation), else its `.agent-sandbox/Dockerfile` (through
 * `docker build`), else the default image. A build runs the repository's commands on the engine, outside the
 * box's hardening, so it needs the user's confirmation of its exact inputs (their hash); built images are tagged
 * by that hash and built again only when an input changed.
 */
export class FolderImageResolver {
  constructor(private readonly options: FolderImageOptions) {}

  async resolve(request: FolderImageRequest): Promise<FolderImage> {
    const { folder, setting } = request;
    if (setting !== AUTO_IMAGE) return { reference: setting, source: { kind: 'setting' } };
    const found = findFolderImageSource(folder);
    if (found.kind === 'default') return { reference: DEFAULT_IMAGE, source: { kind: 'default' } };
    const env = this.childEnv(request.engine.location);
    const plan = await this.plan(folder, found, env, request.signal);
    if (plan.compose) {
      return this.fallback(plan, `${plan.file} describes a Docker Compose dev container, which the box cannot run; it uses ${DEFAULT_IMAGE}.`);
    }
    const refusal = this.refusal(request.decisions, plan.inputHash);
    if (refusal === 'ask') {
      throw new SandboxError(
        'image-build-unconfirmed',
        `${plan.file} asks to build ${plan.builds}. Building runs the repository's commands on the Docker engine, so it needs your confirmation once (VS Code asks when a box of this folder starts there), or set agentSandbox.image.`,
        { imageBuild: { folder, file: plan.file, inputHash: plan.inputHash, builds: plan.builds, ignored: plan.ignored } },
      );
    }
    if (refusal) return this.fallback(plan, `${plan.file} was not built (${refusal}); the box uses ${DEFAULT_IMAGE}.`);
    const built = await this.buildUnlessPresent(plan, env, request);
    return this.describe(plan, built, request.engine);
  }

  /** What the folder's file builds: its inputs and their hash, in words, and the options the box will not honour. */
  private async plan(
    folder: string,
    found: Exclude<FolderImageSource, { kind: 'default' }>,
    env: NodeJS.ProcessEnv,
    signal?: AbortSignal,
  ): Promise<BuildPlan> {
    const file = sourceFile(folder, found)!;
    if (found.kind === 'dockerfile') {
      const inputs = dockerfileInputs(folder, found.dockerfile, 'docker build');
      const inputHash = imageInputHash(folder, inputs);
      const builds = `the Dockerfile ${file} (build context ${path.posix.dirname(file)})`;
      return { folder, file, found, inputs, inputHash, tag: builtImageTag(inputs.kind, inputHash), builds, ignored: [], lifecycle: [] };
    }
    const devcontainer = { configFile: found.configFile, configuration: await this.readConfiguration(folder, found.configFile, env, signal) };
    const inputs = devcontainerInputs(folder, devcontainer, `devcontainers-cli ${this.cliVersion()}`);
    const inputHash = imageInputHash(folder, inputs);
    return {
      folder,
      file,
      found,
      devcontainer,
      compose: devcontainer.configuration.dockerComposeFile !== undefined,
      inputs,
      inputHash,
      tag: builtImageTag(inputs.kind, inputHash),
      builds: describeDevcontainerBuild(folder, devcontainer),
      ignored: ignoredDevcontainerOptions(devcontainer.configuration),
      lifecycle: lifecycleCommands(devcontainer.configuration).map((c) => c.name),
    };
  }

  /**
   * Builds the plan's image unless its tag is there already; true when it built. The inputs are hashed again
   * after the build: a file changed meanwhile would leave the tag naming other inputs, so that image is removed.
   */
  private async buildUnlessPresent(plan: BuildPlan, env: NodeJS.ProcessEnv, request: FolderImageRequest): Promise<boolean> {
    const { engine, progress, signal } = request;
    if (await engine.inspectImage(plan.tag, { signal })) {
      this.options.log(`[image] ${plan.folder}: ${plan.file} unchanged since its image ${plan.tag} was built; reusing it`);
      return false;
    }
    await this.checkDockerCli(env, signal);
    this.options.log(`[image] ${plan.folder}: building ${plan.builds} from ${plan.file} as ${plan.tag}`);
    if (plan.devcontainer) await this.buildDevcontainer(plan.folder, plan.devcontainer.configFile, plan.tag, env, progress, signal);
    else if (plan.found.kind === 'dockerfile') await this.buildDockerfile(plan.found.dockerfile, plan.tag, plan.inputHash, env, progress, signal);
    if (imageInputHash(plan.folder, plan.inputs) !== plan.inputHash) {
      await engine.call('removing an image built from changed inputs', (d) => d.getImage(plan.tag).remove({ force: true })).catch(() => undefined);
      throw new SandboxError('image-build-failed', `${plan.file} or a file it builds from changed during the build; nothing was kept. Try again.`);
    }
    return true;
  }

  /** The result: the built tag, what was ignored, and notes (containerEnv in the image, lifecycle commands not run). */
  private async describe(plan: BuildPlan, built: boolean, engine: DockerEngine): Promise<FolderImage> {
    let ignored = plan.ignored;
    const notes: string[] = [];
    const baked = plan.devcontainer ? await this.containerEnvInImage(engine, plan.tag, plan.devcontainer.configuration) : [];
    if (baked.length > 0) {
      ignored = ignored.filter((key) => key !== 'containerEnv');
      notes.push(`containerEnv (${baked.join(', ')}) is part of the image: the Dev Containers CLI wrote it into the image it built.`);
    }
    if (plan.lifecycle.length > 0) {
      notes.push(`Lifecycle commands (${plan.lifecycle.join(', ')}) are not run on their own: run one yourself as a run in the box if you want it.`);
    }
    if (ignored.length > 0) {
      this.options.log(`[image] ${plan.folder}: ${plan.file} options the box does not honour (its hardening is its own): ${ignored.join(', ')}`);
    }
    const source: ImageSourceInfo = { kind: plan.inputs.kind, file: plan.file, inputHash: plan.inputHash, built };
    if (ignored.length > 0) source.ignored = ignored;
    if (notes.length > 0) source.note = notes.join(' ');
    return { reference: plan.tag, source };
  }

  /**
   * The names of containerEnv the built image defines with the file's values: the CLI writes them into images it
   * builds with features, so there they are the image's own variables (from the repository, never from the host).
   */
  private async containerEnvInImage(engine: DockerEngine, tag: string, configuration: Record<string, unknown>): Promise<string[]> {
    const wanted = configuration.containerEnv;
    if (!wanted || typeof wanted !== 'object') return [];
    const env = new Set((await engine.inspectImage(tag))?.Config.Env ?? []);
    const entries = Object.entries(wanted as Record<string, unknown>);
    return entries.every(([name, value]) => env.has(`${name}=${String(value)}`)) ? entries.map(([name]) => name) : [];
  }

  /** Undefined when allowed; `ask` when the client should ask; else why it is not built. */
  private refusal(decisions: ImageBuildDecisions | undefined, inputHash: string): string | undefined {
    if (!decisions) return 'this client cannot confirm a repository image build';
    if (decisions.refused.includes(inputHash)) return 'you declined building it';
    if (!decisions.ask) return 'building a repository image needs a trusted workspace';
    return decisions.allowed.includes(inputHash) ? undefined : 'ask';
  }

  private fallback(plan: BuildPlan, note: string): FolderImage {
    this.options.log(`[image] ${note}`);
    const source: ImageSourceInfo = { kind: 'default', file: plan.file, note };
    if (!plan.compose) source.inputHash = plan.inputHash;
    if (plan.ignored.length > 0) source.ignored = plan.ignored;
    return { reference: DEFAULT_IMAGE, source };
  }

  /**
   * The environment of the CLI and `docker`: the engine this server uses (never another context of the user's),
   * and Node mode for VS Code's runtime.
   */
  private childEnv(location: EngineLocation): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(this.options.env)) {
      if (value !== undefined && !/^DOCKER_(HOST|CONTEXT|TLS_VERIFY|CERT_PATH|TLS)$/.test(name)) env[name] = value;
    }
    env.DOCKER_HOST = location.host;
    if (location.tls) {
      const certDir = path.dirname(location.tls.ca ?? location.tls.cert ?? location.tls.key ?? '.');
      env.DOCKER_CERT_PATH = certDir;
      if (location.tls.verify) env.DOCKER_TLS_VERIFY = '1';
      else env.DOCKER_TLS = '1';
    }
    env.ELECTRON_RUN_AS_NODE = '1';
    // BuildKit (when the CLI has it) writes its steps line by line instead of redrawing a screen.
    env.BUILDKIT_PROGRESS = 'plain';
    return env;
  }

  /** The CLI's version (part of the input hash: another CLI may build another image), from its package.json. */
  private cliVersion(): string {
    try {
      const manifest = JSON.parse(fs.readFileSync(path.join(path.dirname(this.options.devcontainerCliPath), 'package.json'), 'utf8')) as {
        version?: string;
      };
      return manifest.version ?? 'unknown';
    } catch (error) {
      throw this.cliMissing(error);
    }
  }

  private cliMissing(error: unknown): SandboxError {
    return new SandboxError(
      'image-build-failed',
      `The Dev Containers CLI (${this.options.devcontainerCliPath}) could not be started: ${(error as Error).message}. Reinstall the extension.`,
      { cause: error },
    );
  }

  private async readConfiguration(
    folder: string,
    configFile: string,
    env: NodeJS.ProcessEnv,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const result = await this.runCli(
      ['read-configuration', '--workspace-folder', folder, '--config', configFile, '--log-format', 'json'],
      env,
      () => undefined,
      signal,
      `the configuration of ${configFile}`,
    );
    const parsed = lastJson(result.stdout) as { configuration?: Record<string, unknown> } | undefined;
    if (result.code !== 0 || !parsed?.configuration) {
      throw new SandboxError(
        'image-build-failed',
        `${configFile} could not be read by the Dev Containers CLI: ${errorOf(result)}. Fix the file, or set agentSandbox.image to an image.`,
      );
    }
    return parsed.configuration;
  }

  private async buildDevcontainer(
    folder: string,
    configFile: string,
    tag: string,
    env: NodeJS.ProcessEnv,
    progress: BuildProgress,
    signal?: AbortSignal,
  ): Promise<void> {
    const args = ['build', '--workspace-folder', folder, '--config', configFile, '--image-name', tag, '--log-format', 'json', '--no-lockfile'];
    if (this.options.dockerPath) args.push('--docker-path', this.options.dockerPath);
    const result = await this.runCli(args, env, (line) => this.reportLine(cliLogText(line), progress), signal, `the dev container of ${configFile}`);
    const outcome = lastJson(result.stdout) as { outcome?: string } | undefined;
    if (result.code !== 0 || outcome?.outcome !== 'success') {
      throw new SandboxError('image-build-failed', `Building the dev container of ${configFile} failed: ${errorOf(result)}`);
    }
  }

  private async buildDockerfile(
    dockerfile: string,
    tag: string,
    inputHash: string,
    env: NodeJS.ProcessEnv,
    progress: BuildProgress,
    signal?: AbortSignal,
  ): Promise<void> {
    const result = await runBuildProcess({
      command: this.options.dockerPath ?? 'docker',
      args: ['build', '-t', tag, '-f', dockerfile, '--label', `dev.agent-sandbox.image-inputs=${inputHash}`, path.dirname(dockerfile)],
      env,
      onLine: (line) => this.reportLine(line, progress),
      signal,
      what: dockerfile,
    });
    if (result.code !== 0) {
      throw new SandboxError('image-build-failed', `Building ${dockerfile} failed (exit ${result.code}): ${result.lastLines.slice(-8).join(' | ')}`);
    }
  }

  private runCli(args: string[], env: NodeJS.ProcessEnv, onLine: (line: string) => void, signal: AbortSignal | undefined, what: string) {
    return runBuildProcess({
      command: this.options.nodePath ?? process.execPath,
      args: [this.options.devcontainerCliPath, ...args],
      env,
      onLine,
      signal,
      what,
    }).catch((error) => {
      throw SandboxError.is(error) ? error : this.cliMissing(error);
    });
  }

  /** The build's log to the server log, its steps as progress. */
  private reportLine(text: string | undefined, progress: BuildProgress): void {
    if (!text) return;
    for (const line of text.split(/\r?\n/)) {
      const trimmed = line.replace(/\x1b\[[0-9;]*m/g, '').trim();
      if (!trimmed) continue;
      this.options.log(`[image] ${trimmed}`);
      const step = buildStep(trimmed);
      if (step) progress(`Building the image: ${trimmed.slice(0, 120)}`, step.done, step.total);
    }
  }

  /** `docker --version`: a missing command line is a clear error, not the CLI's `spawn docker ENOENT`. */
  private async checkDockerCli(env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<void> {
    const docker = this.options.dockerPath ?? 'docker';
    try {
      const result = await runBuildProcess({ command: docker, args: ['--version'], env, onLine: () => undefined, signal, what: 'docker --version' });
      if (result.code === 0) return;
    } catch (error) {
      if (SandboxError.is(error)) throw error;
    }
    throw new SandboxError(
      'docker-cli-missing',
      `Building the folder's image needs the docker command line ("${docker}"), which was not found on the PATH of the Agent Sandbox engine server. Install Docker's CLI (docker-ce-cli, docker.io or Docker Desktop) and restart VS Code, or set agentSandbox.image to an image that is already built.`,
    );
  }
}

/** The last line of `text` that is a JSON object (the CLI prints its result as the last line of stdout). */
function lastJson(text: string): unknown {
  for (const line of text.trim().split(/\r?\n/).reverse()) {
    try {
      return JSON.parse(line);
    } catch {
      // Not JSON: keep looking.
    }
  }
  return undefined;
}

/** The text of one `--log-format json` line of the CLI (`{"type":"raw","text":"…"}`), or the line itself. */
function cliLogText(line: string): string | undefined {
  if (!line.startsWith('{')) return line;
  try {
    const event = JSON.parse(line) as { type?: string; text?: string; level?: number };
    return event.type === 'start' || event.type === 'stop' ? undefined : event.text;
  } catch {
    return line;
  }
}

function errorOf(result: { stdout: string; lastLines: string[] }): string {
  const outcome = lastJson(result.stdout) as { message?: string; description?: string } | undefined;
  const tail = result.lastLines
    .map(cliLogText)
    .filter((t): t is string => !!t)
    .map((t) => t.replace(/\x1b\[[0-9;]*m/g, '').trim())
    .filter(Boolean)
    .slice(-6);
  return [outcome?.description, outcome?.message, ...tail].filter(Boolean).join(' | ');
}
