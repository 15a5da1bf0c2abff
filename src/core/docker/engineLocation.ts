import { existsSync, readFileSync } from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import type * as Dockerode from 'dockerode';
import { SandboxError } from '../errors';
import { SshAgent, sshTargetOf, type SshDialOptions } from './sshDialer';
import { sha256 } from '../util/hash';

/** Where the Docker engine is and how to talk to it. */
export interface EngineLocation {
  /** Engine address, e.g. `unix:///var/run/docker.sock`, `tcp://host:2376`, `npipe:////./pipe/docker_engine`. */
  host: string;
  /** Where `host` came from: `setting`, `DOCKER_HOST`, `DOCKER_CONTEXT`, `context:<name>` or `default`. */
  source: string;
  /** TLS material (file paths) for `tcp://` hosts; absent for plain connections. */
  tls?: { ca?: string; cert?: string; key?: string; verify: boolean };
}

export interface EngineLocationInput {
  /** The `agentSandbox.dockerHost` setting; empty or absent means "like the docker CLI". */
  setting?: string;
  env: Record<string, string | undefined>;
  homeDir: string;
  platform: NodeJS.Platform;
}

const UNIX_DEFAULT = 'unix:///var/run/docker.sock';
const NPIPE_DEFAULT = 'npipe:////./pipe/docker_engine';

export function defaultEngineHost(platform: NodeJS.Platform): string {
  return platform === 'win32' ? NPIPE_DEFAULT : UNIX_DEFAULT;
}

/**
 * Finds the engine in the docker CLI's order: the setting, `DOCKER_HOST`, `DOCKER_CONTEXT`, the config's
 * `currentContext`, then the platform default. Reads only the docker config folder; never connects.
 */
export function resolveEngineLocation(input: EngineLocationInput): EngineLocation {
  const { env, platform } = input;
  const setting = input.setting?.trim();
  if (setting) {
    return { host: normalizeHost(setting, 'agentSandbox.dockerHost'), source: 'setting' };
  }
  const configDir = env.DOCKER_CONFIG?.trim() || path.join(input.homeDir, '.docker');
  const dockerHost = env.DOCKER_HOST?.trim();
  if (dockerHost) {
    const host = normalizeHost(dockerHost, 'DOCKER_HOST');
    const tls = tlsFromEnv(host, env, configDir);
    return tls ? { host, source: 'DOCKER_HOST', tls } : { host, source: 'DOCKER_HOST' };
  }
  const envContext = env.DOCKER_CONTEXT?.trim();
  if (envContext) {
    return fromContext(envContext, 'DOCKER_CONTEXT', configDir, platform);
  }
  const current = readCurrentContext(configDir);
  if (current) {
    return fromContext(current, `context:${current}`, configDir, platform);
  }
  return { host: defaultEngineHost(platform), source: 'default' };
}

/** The folder name the docker CLI uses for a context: the SHA-256 of its name. */
export function contextDigest(name: string): string {
  return sha256(name);
}

function normalizeHost(value: string, origin: string): string {
  // The CLI accepts `host:port` without a scheme and treats it as tcp.
  const host = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `tcp://${value}`;
  const scheme = host.slice(0, host.indexOf('://')).toLowerCase();
  if (!['unix', 'tcp', 'npipe', 'ssh', 'http', 'https'].includes(scheme)) {
    throw new SandboxError(
      'invalid-setting',
      `${origin} "${value}" is not a Docker engine address. Use unix:///path/to/docker.sock, tcp://host:port, ssh://user@host or npipe:////./pipe/docker_engine.`,
      origin.startsWith('agentSandbox.') ? { setting: origin } : {},
    );
  }
  return host;
}

/** `DOCKER_TLS_VERIFY` turns on verified TLS; `DOCKER_CERT_PATH` alone gives TLS without verification (docker's client library). */
function tlsFromEnv(host: string, env: Record<string, string | undefined>, configDir: string): EngineLocation['tls'] {
  if (!host.startsWith('tcp://') && !host.startsWith('https://')) {
    return undefined;
  }
  const verify = !!env.DOCKER_TLS_VERIFY;
  const certPath = env.DOCKER_CERT_PATH?.trim();
  if (!verify && !certPath) {
    return undefined;
  }
  const dir = certPath || configDir;
  return {
    ca: path.join(dir, 'ca.pem'),
    cert: path.join(dir, 'cert.pem'),
    key: path.join(dir, 'key.pem'),
    verify,
  };
}

function readCurrentContext(configDir: string): string | undefined {
  const file = path.join(configDir, 'config.json');
  if (!existsSync(file)) {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new SandboxError(
      'engine-unreachable',
      `The Docker config ${file} is not valid JSON, so the current Docker context cannot be read. Fix the file or set agentSandbox.dockerHost.`,
      { cause: error },
    );
  }
  const current = (parsed as { currentContext?: unknown } | null)?.currentContext;
  return typeof current === 'string' && current.trim() ? current.trim() : undefined;
}

function fromContext(name: string, source: string, configDir: string, platform: NodeJS.Platform): EngineLocation {
  if (name === 'default') {
    return { host: defaultEngineHost(platform), source };
  }
  const digest = contextDigest(name);
  const metaFile = path.join(configDir, 'contexts', 'meta', digest, 'meta.json');
  if (!existsSync(metaFile)) {
    throw new SandboxError(
      'engine-unreachable',
      `Docker context "${name}" (from ${source === 'DOCKER_CONTEXT' ? 'DOCKER_CONTEXT' : `${path.join(configDir, 'config.json')}`}) does not exist in ${path.join(configDir, 'contexts')}. ` +
        `Run \`docker context ls\` and \`docker context use <name>\`, or set agentSandbox.dockerHost.`,
    );
  }
  let meta: { Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } } };
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8'));
  } catch (error) {
    throw new SandboxError(
      'engine-unreachable',
      `Docker context "${name}" has an unreadable ${metaFile}. Recreate the context or set agentSandbox.dockerHost.`,
      { cause: error },
    );
  }
  const endpoint = meta.Endpoints?.docker;
  if (typeof endpoint?.Host !== 'string' || !endpoint.Host) {
    throw new SandboxError(
      'engine-unreachable',
      `Docker context "${name}" has no docker endpoint host in ${metaFile}. Recreate the context or set agentSandbox.dockerHost.`,
    );
  }
  const host = normalizeHost(endpoint.Host, `Docker context "${name}"`);
  const tlsDir = path.join(configDir, 'contexts', 'tls', digest, 'docker');
  const file = (base: string): string | undefined => {
    const full = path.join(tlsDir, base);
    return existsSync(full) ? full : undefined;
  };
  const ca = file('ca.pem');
  const cert = file('cert.pem');
  const key = file('key.pem');
  const skipVerify = endpoint.SkipTLSVerify === true;
  const tls = ca || cert || key || skipVerify ? { ca, cert, key, verify: !skipVerify } : undefined;
  return tls ? { host, source, tls } : { host, source };
}

/** Turns a location into dockerode options. Reads the TLS files, so it may throw for missing ones. */
export function dockerodeOptions(location: EngineLocation, dial: { ssh?: SshDialOptions } = {}): Dockerode.DockerOptions {
  const { host } = location;
  const schemeEnd = host.indexOf('://');
  const scheme = host.slice(0, schemeEnd).toLowerCase();
  const rest = host.slice(schemeEnd + 3);
  if (scheme === 'unix') {
    return { socketPath: rest || '/var/run/docker.sock' };
  }
  if (scheme === 'npipe') {
    // npipe:////./pipe/docker_engine → //./pipe/docker_engine
    return { socketPath: rest.replace(/^\/\//, '//') || '//./pipe/docker_engine' };
  }
  const url = new URL(`${scheme === 'tcp' ? 'tcp' : scheme}://${rest}`);
  if (scheme === 'ssh') {
    // The system ssh, not dockerode's built-in ssh2 client (which checks no known_hosts): see sshDialer.ts.
    // The URL's host only names the engine in HTTP headers; every connection goes through the agent.
    const agent = new SshAgent(sshTargetOf(host), dial.ssh);
    return { protocol: 'http', host: 'docker', port: 80, agent } as Dockerode.DockerOptions;
  }
  const tls = location.tls;
  const useTls = scheme === 'https' || !!tls;
  const options: Dockerode.DockerOptions = {
    protocol: useTls ? 'https' : 'http',
    host: url.hostname,
    port: url.port || (useTls ? 2376 : 2375),
  };
  if (tls) {
    const read = (file: string | undefined, what: string): Buffer | undefined => {
      if (!file) {
        return undefined;
      }
      try {
        return readFileSync(file);
      } catch (error) {
        throw new SandboxError(
          'engine-unreachable',
          `The TLS ${what} for ${host} cannot be read from ${file}. Check DOCKER_CERT_PATH or the Docker context's TLS files.`,
          { cause: error },
        );
      }
    };
    options.ca = read(tls.ca, 'CA certificate');
    options.cert = read(tls.cert, 'client certificate');
    options.key = read(tls.key, 'client key');
    if (!tls.verify) {
      // Like `--tlsverify=false`: the connection is encrypted but the server certificate is not checked.
      (options as Dockerode.DockerOptions & { agent?: https.Agent }).agent = new https.Agent({
        rejectUnauthorized: false,
        cert: options.cert,
        key: options.key,
      });
      options.ca = undefined;
    }
  }
  return options;
}

/** Whether a host name or IP literal is the local machine's loopback (traffic never leaves it). */
export function isLoopbackHost(hostname: string): boolean {
  const name = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (/^127(?:\.\d{1,3}){3}$/.test(name) || /^::ffff:127(?:\.\d{1,3}){3}$/.test(name)) return true;
  return name === '::1' || /^(?:0{1,4}:){7}0{0,3}1$/.test(name) || name === '0:0:0:0:0:0:0:1';
}

/**
 * `host:port` when the location sends the engine API unencrypted beyond loopback (`tcp://` or `http://`
 * without TLS to another machine), else `undefined`. Such an engine receives the workspace tar and the passed
 * variables in plain text, so the server refuses it until the user allowed that address.
 */
export function insecureEngineAddress(location: EngineLocation): string | undefined {
  const schemeEnd = location.host.indexOf('://');
  const scheme = location.host.slice(0, schemeEnd).toLowerCase();
  if ((scheme !== 'tcp' && scheme !== 'http') || location.tls) return undefined;
  let url: URL;
  try {
    url = new URL(`http://${location.host.slice(schemeEnd + 3)}`);
  } catch {
    return undefined; // dockerodeOptions reports the malformed address
  }
  if (isLoopbackHost(url.hostname)) return undefined;
  return `${url.hostname}:${url.port || 2375}`;
}

/** Throws `insecure-engine` (naming the address) for an unencrypted remote engine the user did not allow. */
export function assertEngineAllowed(location: EngineLocation, allowInsecureHosts: readonly string[] = []): void {
  const address = insecureEngineAddress(location);
  if (address === undefined || allowInsecureHosts.includes(address)) return;
  throw new SandboxError(
    'insecure-engine',
    `The Docker engine at ${location.host}${location.source === 'default' ? '' : ` (from ${location.source})`} is plain TCP without TLS on another machine: ` +
      `the workspace and passed variables would travel unencrypted. Nothing was sent. Allow ${address} once, or use TLS (DOCKER_TLS_VERIFY, a Docker context with TLS) or ssh://.`,
    { address },
  );
}
