import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type * as Dockerode from 'dockerode';
import type { BoxSettings } from '../../shared/protocol';
import { SandboxError } from '../errors';
import { schemaEnum, schemaItemPattern, schemaRange } from './settingsSchema';
import { sha256 } from '../util/hash';
import type { CacheMounts } from '../cache/cacheVolumes';

export const DEFAULT_BOX_SETTINGS: BoxSettings = Object.freeze({
  image: 'auto',
  memoryMiB: 2048,
  cpus: 2,
  pidsLimit: 512,
  workspaceSizeMiB: 2048,
  workspaceVolume: 'tmpfs',
  tmpSizeMiB: 512,
  runtime: '',
  envAllowlist: Object.freeze([]) as unknown as string[],
  exclude: Object.freeze([]) as unknown as string[],
  useGitignore: false,
  runTimeoutSeconds: 600,
  outputLimitKiB: 1024,
  idleTimeoutMinutes: 30,
  maxFileSizeMiB: 100,
  gitHistory: 'fresh',
  pinImageDigest: true,
  caches: true,
  cacheSizeMiB: 4096,
}) as BoxSettings;

/** The uid and gid every process in the box runs as, and that owns `/workspace`, `/home/sandbox`. */
export const BOX_UID = 1000;
export const BOX_GID = 1000;
export const BOX_USER = `${BOX_UID}:${BOX_GID}`;
export const WORKSPACE_DIR = '/workspace';
export const BOX_HOME = '/home/sandbox';
export const BOX_TERM = 'xterm-256color';

/** Labels on every container and volume the extension creates; `managed` is what finds them all. */
export const LABEL_MANAGED = 'dev.agent-sandbox.managed';
export const LABEL_FOLDER = 'dev.agent-sandbox.folder';
export const LABEL_OWNER = 'dev.agent-sandbox.owner';
export const LABEL_OWNER_PID = 'dev.agent-sandbox.owner-pid';
/** Host name of the owner process: a pid only means something on the machine that issued it. */
export const LABEL_OWNER_HOST = 'dev.agent-sandbox.owner-host';
/** On containers: the name of their workspace volume. */
export const LABEL_VOLUME = 'dev.agent-sandbox.volume';

/**
 * The box's main process. Box processes run as the same uid and could kill a bare `sleep infinity`
 * (`killall sleep`), which would stop the box; this loop outlives its sleeps and ignores polite signals
 * (including those the init forwards). It works with busybox and GNU sleep alike.
 */
export const KEEPALIVE_SCRIPT = 'trap "" TERM INT HUP QUIT USR1 USR2; while :; do sleep 86400; done';

/** Names the box owns; the allowlist cannot bring them in from the host. */
const RESERVED_ENV = new Set(['HOME', 'PATH']);
const ENV_NAME = schemaItemPattern('envAllowlist');
const RUNTIME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

// Docker's reference grammar (distribution/reference), without the case-folding exceptions.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const IMAGE_REFERENCE = new RegExp(`^${NAME}(?::${TAG})?(?:@${DIGEST})?$`);

export function isImageReference(value: string): boolean {
  return value.length <= 512 && IMAGE_REFERENCE.test(value);
}

type IntegerKey =
  | 'memoryMiB'
  | 'pidsLimit'
  | 'workspaceSizeMiB'
  | 'tmpSizeMiB'
  | 'runTimeoutSeconds'
  | 'outputLimitKiB'
  | 'idleTimeoutMinutes'
  | 'maxFileSizeMiB'
  | 'cacheSizeMiB';

/**
 * Inclusive ranges, from package.json's schema (the one source; see settingsSchema.ts). Lower bounds there
 * leave room for the box's own helpers (init, exec, the tree killer) and a Node process (memory 64 MiB).
 */
const UNITS: Record<IntegerKey, string> = {
  memoryMiB: 'MiB',
  pidsLimit: 'processes',
  workspaceSizeMiB: 'MiB',
  tmpSizeMiB: 'MiB',
  runTimeoutSeconds: 'seconds (0 = none)',
  outputLimitKiB: 'KiB',
  idleTimeoutMinutes: 'minutes (0 = never)',
  maxFileSizeMiB: 'MiB',
  cacheSizeMiB: 'MiB',
};
export const INTEGER_RANGES = Object.fromEntries(
  (Object.keys(UNITS) as IntegerKey[]).map((key) => [key, { ...schemaRange(key), unit: UNITS[key] }]),
) as Record<IntegerKey, { min: number; max: number; unit: string }>;
export const CPUS_RANGE = schemaRange('cpus');
const WORKSPACE_VOLUMES = schemaEnum('workspaceVolume');

function invalid(key: keyof BoxSettings, message: string): SandboxError {
  return new SandboxError('invalid-setting', `agentSandbox.${key}: ${message}`, { setting: `agentSandbox.${key}` });
}

/**
 * Fills in defaults and checks every value; the first bad one throws `invalid-setting` naming the key and
 * the valid range. Unknown keys are ignored (a newer client may send more than this server knows).
 */
export function validateBoxSettings(partial: Partial<BoxSettings>): BoxSettings {
  if (partial === null || typeof partial !== 'object' || Array.isArray(partial)) {
    throw new SandboxError('invalid-setting', 'Box settings must be an object of agentSandbox.* values.');
  }
  const value = <K extends keyof BoxSettings>(key: K): unknown => (partial[key] === undefined ? DEFAULT_BOX_SETTINGS[key] : partial[key]);

  const image = value('image');
  if (typeof image !== 'string' || !image.trim()) {
    throw invalid('image', 'must be an image reference such as node:22-bookworm.');
  }
  if (!isImageReference(image.trim())) {
    throw invalid(
      'image',
      `"${image}" is not a valid image reference (expected e.g. node:22-bookworm, ghcr.io/org/image:tag or name@sha256:…; lower-case repository names).`,
    );
  }

  const integers = {} as Record<IntegerKey, number>;
  for (const key of Object.keys(INTEGER_RANGES) as IntegerKey[]) {
    const v = value(key);
    const { min, max, unit } = INTEGER_RANGES[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw invalid(key, `${JSON.stringify(v)} is not valid; use a whole number from ${min} to ${max} ${unit}.`);
    }
    integers[key] = v;
  }

  const cpus = value('cpus');
  if (typeof cpus !== 'number' || !Number.isFinite(cpus) || cpus < CPUS_RANGE.min || cpus > CPUS_RANGE.max) {
    throw invalid(
      'cpus',
      `${JSON.stringify(cpus)} is not valid; use a number of cores from ${CPUS_RANGE.min} to ${CPUS_RANGE.max} (fractions allowed).`,
    );
  }

  const workspaceVolume = value('workspaceVolume');
  if (!WORKSPACE_VOLUMES.includes(workspaceVolume) || (workspaceVolume !== 'tmpfs' && workspaceVolume !== 'disk')) {
    throw invalid(
      'workspaceVolume',
      `${JSON.stringify(workspaceVolume)} is not valid; use ${WORKSPACE_VOLUMES.map((v) => JSON.stringify(v)).join(' or ')}.`,
    );
  }

  const runtime = value('runtime');
  if (typeof runtime !== 'string' || (runtime !== '' && !RUNTIME_NAME.test(runtime))) {
    throw invalid('runtime', `${JSON.stringify(runtime)} is not a runtime name; use e.g. "runsc", or "" for the engine's default.`);
  }

  const envAllowlist = value('envAllowlist');
  if (!Array.isArray(envAllowlist)) {
    throw invalid('envAllowlist', 'must be a list of environment variable names.');
  }
  for (const name of envAllowlist) {
    if (typeof name !== 'string' || !ENV_NAME.test(name)) {
      throw invalid(
        'envAllowlist',
        `${JSON.stringify(name)} is not an environment variable name (letters, digits and _; not starting with a digit).`,
      );
    }
    if (RESERVED_ENV.has(name)) {
      throw invalid('envAllowlist', `${name} is set by the box itself and cannot come from the host.`);
    }
  }

  const exclude = value('exclude');
  if (!Array.isArray(exclude) || exclude.some((glob) => typeof glob !== 'string' || !glob.trim())) {
    throw invalid('exclude', 'must be a list of non-empty glob patterns, e.g. ["dist/**", "*.log"].');
  }

  const useGitignore = value('useGitignore');
  if (typeof useGitignore !== 'boolean') {
    throw invalid('useGitignore', 'must be true or false.');
  }

  const gitHistory = value('gitHistory');
  if (gitHistory !== 'none' && gitHistory !== 'fresh' && gitHistory !== 'full') {
    throw invalid('gitHistory', `${JSON.stringify(gitHistory)} is not valid; use "fresh", "none" or "full".`);
  }

  const pinImageDigest = value('pinImageDigest');
  if (typeof pinImageDigest !== 'boolean') {
    throw invalid('pinImageDigest', 'must be true or false.');
  }
  const caches = value('caches');
  if (typeof caches !== 'boolean') {
    throw invalid('caches', 'must be true or false.');
  }

  return {
    image: image.trim(),
    memoryMiB: integers.memoryMiB,
    cpus,
    pidsLimit: integers.pidsLimit,
    workspaceSizeMiB: integers.workspaceSizeMiB,
    workspaceVolume,
    tmpSizeMiB: integers.tmpSizeMiB,
    runtime,
    envAllowlist: [...(envAllowlist as string[])],
    exclude: [...(exclude as string[])],
    useGitignore,
    runTimeoutSeconds: integers.runTimeoutSeconds,
    outputLimitKiB: integers.outputLimitKiB,
    idleTimeoutMinutes: integers.idleTimeoutMinutes,
    maxFileSizeMiB: integers.maxFileSizeMiB,
    gitHistory,
    pinImageDigest,
    caches,
    cacheSizeMiB: integers.cacheSizeMiB,
  };
}

/** `NAME=value` for each allowlisted variable present in `hostEnv`; nothing else from the host. */
export function allowlistedEnv(allowlist: readonly string[], hostEnv: Record<string, string | undefined>): string[] {
  return allowlist.filter((name) => !RESERVED_ENV.has(name) && hostEnv[name] !== undefined).map((name) => `${name}=${hostEnv[name]}`);
}

export interface BoxOwner {
  /** Absolute path of the workspace folder. */
  folder: string;
  /** Id of the server instance that created the box. */
  ownerId: string;
  /** Pid of that server process. */
  ownerPid: number;
  /** Host name of the machine the server runs on. */
  ownerHost: string;
}

export function boxLabels(owner: BoxOwner): Record<string, string> {
  return {
    [LABEL_MANAGED]: 'true',
    [LABEL_FOLDER]: owner.folder,
    [LABEL_OWNER]: owner.ownerId,
    [LABEL_OWNER_PID]: String(owner.ownerPid),
    [LABEL_OWNER_HOST]: owner.ownerHost,
  };
}

/** A container name and volume name for a folder: readable, unique per box. */
export function boxNames(folder: string): { name: string; volumeName: string } {
  const base =
    path
      .basename(folder)
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-')
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
      .slice(0, 32) || 'folder';
  const digest = sha256(folder).slice(0, 8);
  const name = `agent-sandbox-${base}-${digest}-${randomBytes(3).toString('hex')}`;
  return { name, volumeName: `${name}-workspace` };
}

/**
 * The workspace volume. `tmpfs`: a local volume mounted as tmpfs, owned by the box user and capped in size;
 * it is a volume (not a `--tmpfs` mount) because only volumes are reachable by the archive API.
 * `disk`: a plain local volume (its size cannot be capped by the local driver; see Box.create for ownership).
 */
export function volumeCreateOptions(
  settings: BoxSettings,
  options: { volumeName: string; labels: Record<string, string> },
): Dockerode.VolumeCreateOptions {
  if (settings.workspaceVolume === 'disk') {
    return { Name: options.volumeName, Driver: 'local', Labels: options.labels };
  }
  return {
    Name: options.volumeName,
    Driver: 'local',
    DriverOpts: {
      type: 'tmpfs',
      device: 'tmpfs',
      o: `size=${settings.workspaceSizeMiB}m,uid=${BOX_UID},gid=${BOX_GID},mode=0755,nosuid,nodev`,
    },
    Labels: options.labels,
  };
}

/**
 * The hardened box. Every field here is checked from inside a running box by test/engine/boxHardening.test.ts.
 * `/tmp` and `$HOME` keep `exec`: tools unpack and run helpers there, and `/workspace` is executable anyway.
 */
export function containerCreateOptions(
  settings: BoxSettings,
  options: { name: string; volumeName: string; labels: Record<string, string>; env: string[]; caches?: CacheMounts },
): Dockerode.ContainerCreateOptions {
  for (const entry of options.env) {
    const name = entry.slice(0, entry.indexOf('='));
    if (entry.indexOf('=') <= 0 || !ENV_NAME.test(name) || RESERVED_ENV.has(name)) {
      throw new SandboxError('invalid-setting', `agentSandbox.envAllowlist: ${JSON.stringify(entry)} cannot be passed into the box.`, {
        setting: 'agentSandbox.envAllowlist',
      });
    }
  }
  const memoryBytes = settings.memoryMiB * 1024 * 1024;
  const hostConfig: Dockerode.HostConfig = {
    ReadonlyRootfs: true,
    Tmpfs: {
      '/tmp': `rw,exec,nosuid,nodev,size=${settings.tmpSizeMiB}m,mode=1777`,
      [BOX_HOME]: `rw,exec,nosuid,nodev,size=${settings.tmpSizeMiB}m,mode=0755,uid=${BOX_UID},gid=${BOX_GID}`,
    },
    Mounts: [
      {
        Type: 'volume',
        Source: options.volumeName,
        Target: WORKSPACE_DIR,
        // The image's own /workspace content must not leak into the mirror.
        VolumeOptions: { NoCopy: true } as NonNullable<Dockerode.MountSettings['VolumeOptions']>,
      },
      // Package caches of this workspace (see src/core/cache/cacheVolumes.ts); no copy of the image's content either.
      ...(options.caches?.volumes ?? []).map((cache) => ({
        Type: 'volume' as const,
        Source: cache.volumeName,
        Target: cache.target,
        VolumeOptions: { NoCopy: true } as NonNullable<Dockerode.MountSettings['VolumeOptions']>,
      })),
    ],
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    NetworkMode: 'none',
    PidsLimit: settings.pidsLimit,
    Memory: memoryBytes,
    MemorySwap: memoryBytes,
    NanoCpus: Math.round(settings.cpus * 1e9),
    Init: true,
    Privileged: false,
    IpcMode: 'private',
    RestartPolicy: { Name: 'no' },
    AutoRemove: false,
  };
  if (settings.runtime) {
    hostConfig.Runtime = settings.runtime;
  }
  if (isGvisorRuntime(settings.runtime)) {
    Object.assign(hostConfig, gvisorHostLimits(settings));
  }
  return {
    name: options.name,
    Image: settings.image,
    User: BOX_USER,
    WorkingDir: WORKSPACE_DIR,
    Hostname: 'agent-sandbox',
    Env: [`HOME=${BOX_HOME}`, `TERM=${BOX_TERM}`, ...options.env, ...(options.caches?.env ?? [])],
    Entrypoint: [],
    Cmd: ['/bin/sh', '-c', KEEPALIVE_SCRIPT],
    Labels: { ...options.labels, [LABEL_VOLUME]: options.volumeName },
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    OpenStdin: false,
    Tty: false,
    NetworkDisabled: true,
    HostConfig: hostConfig,
  };
}

/** Whether a runtime name is gVisor's (`runsc`, or a name registered for it such as `runsc-kvm`, `gvisor`). */
export function isGvisorRuntime(runtime: string): boolean {
  return /runsc|gvisor/i.test(runtime);
}

/**
 * Host pids per process in a gVisor box, measured with runsc 20221219 on the ptrace platform: each process in the
 * sandbox is a stub process plus threads of the Sentry (gVisor's kernel) on the host (~8 each, ~65 for an idle box).
 */
const GVISOR_HOST_PIDS_PER_PROCESS = 10;
const GVISOR_HOST_PIDS_BASE = 256;
/**
 * The Sentry's own memory is charged to the box's cgroup (an idle box ~14 MiB, 64 sleeping processes ~60 MiB): a
 * box limited to exactly memoryMiB would lose its kernel, and all its processes, well before its programs used it.
 */
export const GVISOR_MEMORY_OVERHEAD_MIB = 128;

/**
 * Host limits of a gVisor box. The host's pids cgroup counts the Sentry's threads, not the box's processes, and
 * when it runs out the Sentry dies and takes the whole box with it. So the box's process limit is enforced by
 * gVisor's own kernel instead (`RLIMIT_NPROC`: every process in the box runs as uid 1000 in a kernel of its own,
 * so it bounds the box), and the host cgroup only gets a backstop far above what that many processes need.
 * Memory gets the Sentry's share on top (memory = memory+swap as under runc).
 */
export function gvisorHostLimits(
  settings: Pick<BoxSettings, 'pidsLimit' | 'memoryMiB'>,
): Pick<Dockerode.HostConfig, 'PidsLimit' | 'Ulimits' | 'Memory' | 'MemorySwap'> {
  const memoryBytes = (settings.memoryMiB + GVISOR_MEMORY_OVERHEAD_MIB) * 1024 * 1024;
  return {
    PidsLimit: GVISOR_HOST_PIDS_BASE + settings.pidsLimit * GVISOR_HOST_PIDS_PER_PROCESS,
    Ulimits: [{ Name: 'nproc', Soft: settings.pidsLimit, Hard: settings.pidsLimit }],
    Memory: memoryBytes,
    MemorySwap: memoryBytes,
  };
}
