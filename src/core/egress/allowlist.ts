import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { SandboxError } from '../errors';
import { NETWORK_PRESETS, type NetworkPresetName } from './networkPresets';

/** The setting a denied request names, so an agent (or its user) knows what would allow it. */
export const ALLOWED_HOSTS_SETTING = 'agentSandbox.allowedHosts';
export const NETWORK_PRESETS_SETTING = 'agentSandbox.networkPresets';

/** A port an allowlist entry without one allows: HTTPS. Plain HTTP (80) must be listed as `host:80`. */
export const DEFAULT_ALLOWED_PORT = 443;

/**
 * One allowlist entry. `exact` matches the host itself; `subdomains` (`*.example.com`) matches every name
 * below `example.com` at any depth but not `example.com` itself (list both when both are wanted).
 */
export interface AllowRule {
  kind: 'exact' | 'subdomains';
  /** Lower-case ASCII (punycode) host name, or an IP literal (IPv6 without brackets); no trailing dot. */
  host: string;
  port: number;
  /** The entry as the user wrote it, for messages and the audit trail. */
  source: string;
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/**
 * Canonical form of a host name or IP literal: lower case, IDN as punycode, no trailing dot, IPv6 without
 * brackets. `undefined` when it is not a valid host (the empty string, spaces, `%`, `/`, `@`, …).
 */
export function normalizeHost(raw: string): string | undefined {
  let host = raw.trim();
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    return isIP(host) === 6 ? host.toLowerCase() : undefined;
  }
  if (isIP(host) === 4) {
    return host;
  }
  if (isIP(host) === 6) {
    return host.toLowerCase();
  }
  if (host.endsWith('.')) {
    host = host.slice(0, -1);
  }
  if (!host || host.length > 253 || /[\s/@%\\?#:[\]]/.test(host)) {
    return undefined;
  }
  const ascii = domainToASCII(host.toLowerCase());
  if (!ascii || ascii.length > 253 || !ascii.split('.').every((label) => LABEL.test(label))) {
    return undefined;
  }
  // A name made of digits and dots that is not a dotted quad (`127.1`, `0x7f.1`) is an address in some
  // resolvers' eyes; never treat it as a name.
  if (/^[0-9.]+$/.test(ascii) || /^0x[0-9a-f]+$/i.test(ascii.split('.').pop() ?? '')) {
    return undefined;
  }
  return ascii;
}

function invalidEntry(entry: unknown, why: string): SandboxError {
  return new SandboxError('invalid-setting', `${ALLOWED_HOSTS_SETTING}: ${JSON.stringify(entry)} ${why}`, { setting: ALLOWED_HOSTS_SETTING });
}

/** Splits `host`, `host:port`, `[v6]`, `[v6]:port`; the port is undefined when not written. */
function splitHostPort(entry: string): { host: string; port?: string } {
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close < 0) return { host: entry };
    const rest = entry.slice(close + 1);
    return rest.startsWith(':')
      ? { host: entry.slice(0, close + 1), port: rest.slice(1) }
      : { host: entry.slice(0, close + 1), port: rest || undefined };
  }
  if (isIP(entry) === 6) return { host: entry };
  const colon = entry.lastIndexOf(':');
  return colon < 0 ? { host: entry } : { host: entry.slice(0, colon), port: entry.slice(colon + 1) };
}

/** Parses a port written by a person or a client: decimal 1–65535, nothing else. */
export function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/**
 * Parses one `agentSandbox.allowedHosts` entry: `host`, `host:port`, `*.domain`, `*.domain:port`, an IPv4
 * literal or a bracketed IPv6 literal. Throws `invalid-setting` naming the setting and what is wrong.
 */
export function parseAllowRule(entry: unknown): AllowRule {
  if (typeof entry !== 'string' || !entry.trim()) {
    throw invalidEntry(entry, 'is not a host; write e.g. "example.com", "example.com:8443" or "*.example.com".');
  }
  const source = entry.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) || source.includes('/')) {
    throw invalidEntry(entry, 'is a URL; write only the host (and a port if not 443), e.g. "example.com" or "example.com:8080".');
  }
  const { host: hostPart, port: portPart } = splitHostPort(source);
  let port = DEFAULT_ALLOWED_PORT;
  if (portPart !== undefined) {
    const parsed = parsePort(portPart);
    if (parsed === undefined) throw invalidEntry(entry, 'has an invalid port; use a number from 1 to 65535.');
    port = parsed;
  }
  if (hostPart.startsWith('*.')) {
    const domain = normalizeHost(hostPart.slice(2));
    if (!domain || isIP(domain)) {
      throw invalidEntry(entry, 'is not a valid wildcard; write "*." followed by a domain name, e.g. "*.example.com".');
    }
    if (!domain.includes('.')) {
      throw invalidEntry(
        entry,
        `would allow every name under the top-level domain "${domain}"; name a registered domain, e.g. "*.example.${domain}".`,
      );
    }
    return { kind: 'subdomains', host: domain, port, source };
  }
  if (hostPart.includes('*')) {
    throw invalidEntry(entry, 'has a "*" that is not a leading "*."; only subdomain wildcards such as "*.example.com" are supported.');
  }
  const host = normalizeHost(hostPart);
  if (!host) {
    throw invalidEntry(entry, 'is not a valid host name or IP address.');
  }
  return { kind: 'exact', host, port, source };
}

/** The rule that allows `host:port` (both already normalized), if any. */
export function findAllowRule(rules: readonly AllowRule[], host: string, port: number): AllowRule | undefined {
  return rules.find((rule) => {
    if (rule.port !== port) return false;
    if (rule.kind === 'exact') return rule.host === host;
    return !isIP(host) && host.endsWith(`.${rule.host}`);
  });
}

/**
 * The allowlist the gateway enforces: the user's entries plus the hosts of each named preset, in that order.
 * Throws `invalid-setting` naming `agentSandbox.allowedHosts` or `agentSandbox.networkPresets`.
 */
export function buildAllowlist(allowedHosts: unknown, presets: unknown): AllowRule[] {
  if (!Array.isArray(allowedHosts)) {
    throw new SandboxError('invalid-setting', `${ALLOWED_HOSTS_SETTING}: must be a list of hosts, e.g. ["example.com", "*.example.org:8443"].`, {
      setting: ALLOWED_HOSTS_SETTING,
    });
  }
  if (!Array.isArray(presets)) {
    throw new SandboxError(
      'invalid-setting',
      `${NETWORK_PRESETS_SETTING}: must be a list of preset names (${Object.keys(NETWORK_PRESETS).join(', ')}).`,
      {
        setting: NETWORK_PRESETS_SETTING,
      },
    );
  }
  const rules = allowedHosts.map(parseAllowRule);
  for (const name of presets) {
    if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(NETWORK_PRESETS, name)) {
      throw new SandboxError(
        'invalid-setting',
        `${NETWORK_PRESETS_SETTING}: ${JSON.stringify(name)} is not a preset; use ${Object.keys(NETWORK_PRESETS)
          .map((p) => `"${p}"`)
          .join(', ')}.`,
        { setting: NETWORK_PRESETS_SETTING },
      );
    }
    for (const host of NETWORK_PRESETS[name as NetworkPresetName]) {
      rules.push({ ...parseAllowRule(host), source: `${host} (preset ${name})` });
    }
  }
  return rules;
}
