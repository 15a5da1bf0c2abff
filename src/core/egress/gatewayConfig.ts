import * as fs from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import type * as Dockerode from 'dockerode';
import type { EgressSettings } from '../../shared/protocol';
import { SandboxError } from '../errors';
import { isImageReference } from '../box/boxConfig';
import { buildAllowlist, type AllowRule } from './allowlist';

export const DEFAULT_EGRESS_SETTINGS: EgressSettings = Object.freeze({
  network: 'none',
  allowedHosts: Object.freeze([]) as unknown as string[],
  networkPresets: Object.freeze([]) as unknown as string[],
  gatewayImage: '',
  gatewayNetwork: 'bridge',
  gatewayDns: Object.freeze([]) as unknown as string[],
  gatewayCaFile: '',
}) as EgressSettings;

/** What the gateway program reads from `AGENT_SANDBOX_GATEWAY`. */
export interface GatewayConfig {
  rules: AllowRule[];
  maxConnections: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

/** Egress settings after validation: with `network: "allowlist"`, the rules the gateway enforces. */
export interface ValidatedEgress {
  settings: EgressSettings;
  rules: AllowRule[];
  /** The certificates of `gatewayCaFile`, read when the settings were validated. */
  extraCaPem?: string;
}

/** Where the shared egress volume is mounted in the gateway and the relay (the box never mounts it). */
export const EGRESS_MOUNT = '/egress';
export const GATEWAY_PROGRAM_PATH = `${EGRESS_MOUNT}/bin/gateway.js`;
/** The socket directory is 0700 and owned by the gateway user: only processes running as it can connect. */
export const GATEWAY_SOCKET_DIR = `${EGRESS_MOUNT}/run`;
export const GATEWAY_SOCKET_PATH = `${GATEWAY_SOCKET_DIR}/gateway.sock`;
/**
 * The offline runs in the box (JSON `{"offlineRuns":[…]}`), next to the socket: the engine writes it, then sends
 * the gateway `GATEWAY_OFFLINE_SIGNAL`; the gateway reads it, pauses or resumes, and says so on stdout
 * (`{"type":"offline","offlineRuns":[…]}`). SIGUSR1 is Node's debugger signal, hence SIGUSR2.
 */
export const GATEWAY_OFFLINE_FILE = 'offline.json';
export const GATEWAY_OFFLINE_SIGNAL = 'SIGUSR2';
/** The gateway and the relay run as this user: not root, and not the box's uid 1000. */
export const GATEWAY_UID = 65532;
export const GATEWAY_USER = `${GATEWAY_UID}:${GATEWAY_UID}`;
/** The address the box's proxy variables name: the relay, in the box's own network namespace. */
export const BOX_PROXY_URL = 'http://127.0.0.1:3128';

/** On egress containers: `gateway` or `relay`; boxes have no role label. */
export const LABEL_ROLE = 'dev.agent-sandbox.role';
/** On egress containers: the name of the box they serve. */
export const LABEL_BOX = 'dev.agent-sandbox.box';

export const GATEWAY_LIMITS = {
  memoryMiB: 256,
  pids: 128,
  cpus: 1,
  maxConnections: 256,
  connectTimeoutMs: 15_000,
  idleTimeoutMs: 15 * 60_000,
} as const;
export const RELAY_LIMITS = { memoryMiB: 128, pids: 64, cpus: 0.5 } as const;

const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function invalid(key: keyof EgressSettings, message: string): SandboxError {
  return new SandboxError('invalid-setting', `agentSandbox.${key}: ${message}`, { setting: `agentSandbox.${key}` });
}

/**
 * Fills in defaults and checks every egress value; the first bad one throws `invalid-setting` naming its key.
 * `runtime` is the box's: the relay shares the box's network namespace, which is not verified for runtimes
 * with their own network stack (gVisor), so that combination is refused rather than left to fail open or silently.
 */
export function validateEgressSettings(partial: Partial<EgressSettings> | undefined, runtime = ''): ValidatedEgress {
  const input = partial ?? {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new SandboxError('invalid-setting', 'Egress settings must be an object of agentSandbox.* values.');
  }
  const value = <K extends keyof EgressSettings>(key: K): unknown => (input[key] === undefined ? DEFAULT_EGRESS_SETTINGS[key] : input[key]);
  const network = value('network');
  if (network !== 'none' && network !== 'allowlist') {
    throw invalid('network', `${JSON.stringify(network)} is not valid; use "none" (no network) or "allowlist".`);
  }
  const rules = buildAllowlist(value('allowedHosts'), value('networkPresets'));
  const gatewayImage = value('gatewayImage');
  if (typeof gatewayImage !== 'string' || (gatewayImage.trim() !== '' && !isImageReference(gatewayImage.trim()))) {
    throw invalid(
      'gatewayImage',
      `${JSON.stringify(gatewayImage)} is not an image reference; use e.g. node:22-bookworm-slim, or "" for the box image.`,
    );
  }
  const gatewayNetwork = value('gatewayNetwork');
  if (
    typeof gatewayNetwork !== 'string' ||
    !NETWORK_NAME.test(gatewayNetwork) ||
    gatewayNetwork === 'none' ||
    gatewayNetwork === 'host' ||
    gatewayNetwork.startsWith('container:')
  ) {
    throw invalid(
      'gatewayNetwork',
      `${JSON.stringify(gatewayNetwork)} is not valid; name a Docker network the gateway can reach the internet through (default "bridge"; not "host" or "none").`,
    );
  }
  const gatewayDns = value('gatewayDns');
  if (!Array.isArray(gatewayDns) || gatewayDns.some((address) => typeof address !== 'string' || !isIP(address))) {
    throw invalid('gatewayDns', `must be a list of resolver IP addresses, e.g. ["1.1.1.1"], or [] for the engine's default.`);
  }
  const gatewayCaFile = value('gatewayCaFile');
  if (typeof gatewayCaFile !== 'string') throw invalid('gatewayCaFile', 'must be the path of a PEM file, or "" for none.');
  const extraCaPem = gatewayCaFile.trim() ? readGatewayCaFile(gatewayCaFile.trim()) : undefined;
  if (network === 'allowlist' && runtime) {
    throw invalid(
      'network',
      `"allowlist" is not supported with agentSandbox.runtime "${runtime}": the egress relay joins the box's network namespace on the host, ` +
        "and a runtime with a network stack of its own (gVisor's runsc keeps it inside its kernel) hides the box's 127.0.0.1 from it, so no proxy could be reached. " +
        'Use agentSandbox.network "none" with this runtime, or the default runtime ("") to allow hosts (README, "gVisor", says what an allowlist under gVisor needs).',
    );
  }
  return {
    settings: {
      network,
      allowedHosts: [...(value('allowedHosts') as string[])],
      networkPresets: [...(value('networkPresets') as string[])],
      gatewayImage: gatewayImage.trim(),
      gatewayNetwork,
      gatewayDns: [...(gatewayDns as string[])],
      gatewayCaFile: gatewayCaFile.trim(),
    },
    rules,
    ...(extraCaPem ? { extraCaPem } : {}),
  };
}

/** The PEM text of `agentSandbox.gatewayCaFile`; a missing, unreadable or certificate-less file names the setting. */
function readGatewayCaFile(file: string): string {
  if (!path.isAbsolute(file))
    throw invalid('gatewayCaFile', `${JSON.stringify(file)} is not an absolute path; give the full path of a PEM file of CA certificates.`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw invalid(
      'gatewayCaFile',
      `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); fix the path or clear the setting.`,
    );
  }
  if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(text) || text.length > 4 * 1024 * 1024) {
    throw invalid('gatewayCaFile', `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give a file of CA certificates in PEM form.`);
  }
  return text;
}

/**
 * The box's proxy variables: every common spelling, so curl, git, npm, pip and Node (with
 * NODE_USE_ENV_PROXY) use the relay. Loopback stays direct: it is the box's own.
 */
export function boxProxyEnv(): string[] {
  const noProxy = 'localhost,127.0.0.1,::1';
  return [
    `HTTP_PROXY=${BOX_PROXY_URL}`,
    `HTTPS_PROXY=${BOX_PROXY_URL}`,
    `http_proxy=${BOX_PROXY_URL}`,
    `https_proxy=${BOX_PROXY_URL}`,
    `NO_PROXY=${noProxy}`,
    `no_proxy=${noProxy}`,
    'NODE_USE_ENV_PROXY=1',
  ];
}

/** The proxy variables emptied: an offline run's tools then try no proxy (the paused gateway would refuse them). */
export function offlineProxyEnv(): string[] {
  return boxProxyEnv().map((pair) => pair.slice(0, pair.indexOf('=') + 1));
}

/**
 * A run's own proxy variables: the same relay, with the run id as the proxy user name (`run-<id>`), so the
 * gateway can tell which run an attempt came from. Empty for ids the gateway would not accept. It is what the
 * client says, not proof: any process in the box may use any user name.
 */
export function runProxyEnv(runId: string | undefined): string[] {
  if (!runId || !/^[A-Za-z0-9._-]{1,60}$/.test(runId)) return [];
  const url = BOX_PROXY_URL.replace('://', `://run-${runId}@`);
  return [`HTTP_PROXY=${url}`, `HTTPS_PROXY=${url}`, `http_proxy=${url}`, `https_proxy=${url}`];
}

function hardenedHostConfig(limits: { memoryMiB: number; pids: number; cpus: number }): Dockerode.HostConfig {
  const memory = limits.memoryMiB * 1024 * 1024;
  return {
    ReadonlyRootfs: true,
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    PidsLimit: limits.pids,
    Memory: memory,
    MemorySwap: memory,
    NanoCpus: Math.round(limits.cpus * 1e9),
    Init: true,
    Privileged: false,
    IpcMode: 'private',
    RestartPolicy: { Name: 'no' },
    AutoRemove: false,
    Tmpfs: { '/tmp': 'rw,noexec,nosuid,nodev,size=16m,mode=1777' },
  };
}

/** The gateway: the only container of a box with a network; it mounts the egress volume read-write. */
export function gatewayCreateOptions(options: {
  name: string;
  image: string;
  network: string;
  volumeName: string;
  labels: Record<string, string>;
  config: GatewayConfig;
  /** Resolvers for the gateway (the engine's default when absent); the tests point it at nothing external. */
  dns?: string[];
  /** `name:address` lines for the gateway's /etc/hosts (tests: names that resolve to refused addresses). */
  extraHosts?: string[];
}): Dockerode.ContainerCreateOptions {
  const hostConfig = hardenedHostConfig(GATEWAY_LIMITS);
  hostConfig.NetworkMode = options.network;
  hostConfig.Mounts = [{ Type: 'volume', Source: options.volumeName, Target: EGRESS_MOUNT, VolumeOptions: { NoCopy: true } as never }];
  if (options.dns) hostConfig.Dns = options.dns;
  if (options.extraHosts) hostConfig.ExtraHosts = options.extraHosts;
  return egressContainer(options, hostConfig, 'gateway', [`AGENT_SANDBOX_GATEWAY=${JSON.stringify(options.config)}`]);
}

/**
 * The relay: joins the box's network namespace (so only that box sees its 127.0.0.1:3128) and mounts the
 * egress volume read-only (a unix socket can be connected to on a read-only mount).
 */
export function relayCreateOptions(options: {
  name: string;
  image: string;
  boxContainerId: string;
  volumeName: string;
  labels: Record<string, string>;
}): Dockerode.ContainerCreateOptions {
  const hostConfig = hardenedHostConfig(RELAY_LIMITS);
  hostConfig.NetworkMode = `container:${options.boxContainerId}`;
  hostConfig.Mounts = [
    { Type: 'volume', Source: options.volumeName, Target: EGRESS_MOUNT, ReadOnly: true, VolumeOptions: { NoCopy: true } as never },
  ];
  return egressContainer(options, hostConfig, 'relay', []);
}

/** The create options both egress containers share: the program in its role, as the gateway user, attached. */
function egressContainer(
  options: { name: string; image: string; labels: Record<string, string> },
  hostConfig: Dockerode.HostConfig,
  role: 'gateway' | 'relay',
  env: string[],
): Dockerode.ContainerCreateOptions {
  return {
    name: options.name,
    Image: options.image,
    User: GATEWAY_USER,
    WorkingDir: '/tmp',
    Entrypoint: [],
    Cmd: ['node', GATEWAY_PROGRAM_PATH, role],
    Env: [...env, 'HOME=/tmp', 'NODE_OPTIONS='],
    Labels: options.labels,
    // The gateway reads its keys and updates on stdin (see src/gateway/main.ts); the relay reads nothing.
    AttachStdin: role === 'gateway',
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: role === 'gateway',
    StdinOnce: false,
    Tty: false,
    HostConfig: hostConfig,
  };
}

/**
 * The egress volume: the program and the socket. A plain local volume, not tmpfs: the program is put in
 * before the gateway first starts, and a tmpfs volume mounted only for that archive call would lose it.
 */
export function egressVolumeCreateOptions(options: { volumeName: string; labels: Record<string, string> }): Dockerode.VolumeCreateOptions {
  return { Name: options.volumeName, Driver: 'local', Labels: options.labels };
}
