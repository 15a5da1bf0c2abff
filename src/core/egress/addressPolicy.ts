import { isIP } from 'node:net';

/**
 * Why the gateway refuses to connect to an address, whatever name led to it. Checked on every address every
 * resolution returns, and the gateway then connects to that checked address itself (no second lookup), so a
 * name that changes its answer (DNS rebinding) cannot move a connection onto one of these.
 */
export type AddressRefusal =
  'loopback' | 'private' | 'link-local' | 'metadata' | 'unspecified' | 'multicast' | 'shared' | 'unique-local' | 'reserved' | 'invalid';

export type AddressVerdict = { allowed: true } | { allowed: false; reason: AddressRefusal; range: string };

interface Range {
  /** Network address as bytes (4 or 16). */
  bytes: number[];
  prefix: number;
  reason: AddressRefusal;
  text: string;
}

function v4(text: string, reason: AddressRefusal): Range {
  const [address, prefix] = text.split('/');
  return { bytes: address!.split('.').map(Number), prefix: Number(prefix), reason, text };
}

function v6(text: string, reason: AddressRefusal): Range {
  const [address, prefix] = text.split('/');
  return { bytes: parseIPv6(address!)!, prefix: Number(prefix), reason, text };
}

/**
 * Refused IPv4 ranges, most specific first. Not refused on purpose: 198.18.0.0/15 (benchmarking; never routed
 * on the internet, and proxies in "fake-IP" mode answer every name with one — the engine tests' stand-in
 * internet uses 198.18.0.0/24 for that reason) and the documentation ranges (not routed anywhere).
 */
const IPV4_RANGES: Range[] = [
  v4('169.254.169.254/32', 'metadata'),
  v4('100.100.100.200/32', 'metadata'),
  v4('0.0.0.0/8', 'unspecified'),
  v4('10.0.0.0/8', 'private'),
  v4('100.64.0.0/10', 'shared'),
  v4('127.0.0.0/8', 'loopback'),
  v4('169.254.0.0/16', 'link-local'),
  v4('172.16.0.0/12', 'private'),
  v4('192.0.0.0/24', 'reserved'),
  v4('192.168.0.0/16', 'private'),
  v4('224.0.0.0/4', 'multicast'),
  v4('240.0.0.0/4', 'reserved'),
];

/** Refused IPv6 ranges; the ranges that embed an IPv4 address are judged by that address instead. */
const IPV6_RANGES: Range[] = [
  v6('fd00:ec2::254/128', 'metadata'),
  v6('::/128', 'unspecified'),
  v6('::1/128', 'loopback'),
  v6('64:ff9b:1::/48', 'private'),
  v6('100::/64', 'reserved'),
  v6('2001::/32', 'reserved'),
  v6('fc00::/7', 'unique-local'),
  v6('fe80::/10', 'link-local'),
  v6('fec0::/10', 'private'),
  v6('ff00::/8', 'multicast'),
];

/** IPv6 ranges whose last (or, for 6to4, second and third) 32 bits are an IPv4 address that decides. */
const EMBEDDED_V4: { range: Range; offset: number }[] = [
  { range: v6('::ffff:0:0/96', 'reserved'), offset: 12 }, // IPv4-mapped
  { range: v6('::/96', 'reserved'), offset: 12 }, // IPv4-compatible (deprecated)
  { range: v6('64:ff9b::/96', 'reserved'), offset: 12 }, // NAT64 well-known prefix
  { range: v6('2002::/16', 'reserved'), offset: 2 }, // 6to4
];

function inRange(bytes: number[], range: Range): boolean {
  if (bytes.length !== range.bytes.length) return false;
  let bits = range.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i]! & mask) !== (range.bytes[i]! & mask)) return false;
  }
  return true;
}

/** 16 bytes of an IPv6 address (zone id stripped, embedded dotted quad allowed), or undefined. */
export function parseIPv6(text: string): number[] | undefined {
  const address = text.replace(/%.*$/, '');
  if (isIP(address) !== 6) return undefined;
  let groups = address;
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dotted) {
    const quad = dotted[1]!.split('.').map(Number);
    groups = address.slice(0, -dotted[1]!.length) + '0:0';
    tail.push(...quad);
  }
  const [head, rest] = groups.includes('::') ? groups.split('::') : [groups, undefined];
  const headParts = head ? head.split(':') : [];
  const restParts = rest === undefined ? [] : rest ? rest.split(':') : [];
  const missing = 8 - headParts.length - restParts.length;
  if (rest === undefined ? missing !== 0 : missing < 0) return undefined;
  const parts = [...headParts, ...Array<string>(rest === undefined ? 0 : missing).fill('0'), ...restParts];
  const bytes = parts.flatMap((part) => {
    const value = parseInt(part, 16);
    return [value >> 8, value & 0xff];
  });
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes.length === 16 && bytes.every((b) => Number.isInteger(b) && b >= 0 && b <= 255) ? bytes : undefined;
}

function judge(bytes: number[], ranges: Range[]): AddressVerdict {
  const hit = ranges.find((range) => inRange(bytes, range));
  return hit ? { allowed: false, reason: hit.reason, range: hit.text } : { allowed: true };
}

/** Whether the gateway may connect to this IP address (v4 or v6 text, as a resolver returns it). */
export function classifyAddress(address: string): AddressVerdict {
  const family = isIP(address.replace(/%.*$/, ''));
  if (family === 4) {
    return judge(address.split('.').map(Number), IPV4_RANGES);
  }
  const bytes = family === 6 ? parseIPv6(address) : undefined;
  if (!bytes) {
    return { allowed: false, reason: 'invalid', range: 'not an IP address' };
  }
  for (const { range, offset } of EMBEDDED_V4) {
    // `::` and `::1` are in ::/96 too, but are IPv6's own unspecified and loopback addresses.
    if (inRange(bytes, range) && !(range.text === '::/96' && bytes.slice(12).join('.') in { '0.0.0.0': 1, '0.0.0.1': 1 })) {
      const inner = judge(bytes.slice(offset, offset + 4), IPV4_RANGES);
      return inner.allowed ? inner : { ...inner, range: `${inner.range} inside ${range.text}` };
    }
  }
  return judge(bytes, IPV6_RANGES);
}
