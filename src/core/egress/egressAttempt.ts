/**
 * One attempt to leave the box through its gateway, allowed or not: the audit record. The gateway writes one
 * JSON line per attempt on its stdout when the attempt ends (a denied one at once); the engine server reads
 * them from the gateway container's log stream. Types only, plus the parser the reader uses.
 */
export interface EgressAttempt {
  /** Sequence number within this gateway, from 1. */
  seq: number;
  /** The run it belongs to, when the client named one (proxy user name `run-<id>`); not proof of origin. */
  runId?: string;
  /** `connect`: an HTTP CONNECT tunnel (HTTPS, no TLS interception); `http`: a plain HTTP proxy request. */
  kind: 'connect' | 'http';
  /** `CONNECT`, or the plain request's method. */
  method: string;
  /** The host asked for, normalized (lower case, punycode, no trailing dot); raw text when invalid. */
  host: string;
  port: number;
  /** Plain HTTP only: the path asked for (query cut off: it may carry tokens). */
  path?: string;
  decision: 'allowed' | 'denied' | 'failed';
  /** Why: see `EgressReason`. */
  reason: EgressReason;
  /** For a person: the allowlist entry used, the refused address range, the connect error. */
  detail: string;
  /** The address connected to (allowed) or refused (refused-address). */
  address?: string;
  /** Plain HTTP only: the status the upstream (or the gateway) answered. */
  status?: number;
  /** Bytes from the box towards the host, and back (tunnel payload; for plain HTTP, bodies). */
  bytesUp: number;
  bytesDown: number;
  /** ISO times. */
  start: string;
  end: string;
}

export type EgressReason =
  /** Allowed by an allowlist entry (named in `detail`). */
  | 'allowlisted'
  /** No allowlist entry allows this host and port. */
  | 'not-allowlisted'
  /** The name resolved to a refused address (loopback, private, link-local, metadata, …). */
  | 'refused-address'
  /** The name did not resolve (or not within the gateway's time limit). */
  | 'resolve-failed'
  /** Every checked address refused the connection or did not answer in time. */
  | 'connect-failed'
  /** Plain HTTP whose Host header names another host than the request line. */
  | 'host-mismatch'
  /** Not a proxy request the gateway understands (origin-form URL, https:// in a plain request, bad target). */
  | 'bad-request'
  /** Protocol upgrades (WebSocket) over plain HTTP: use CONNECT (wss://) instead. */
  | 'upgrade-refused'
  /** The gateway's connection limit was reached. */
  | 'too-many-connections';

const REASONS = new Set<EgressReason>([
  'allowlisted',
  'not-allowlisted',
  'refused-address',
  'resolve-failed',
  'connect-failed',
  'host-mismatch',
  'bad-request',
  'upgrade-refused',
  'too-many-connections',
]);

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isText = (value: unknown, max = 2048): value is string => typeof value === 'string' && value.length <= max;

/**
 * Reads one line of the gateway's log. Returns the attempt when the line is a well-formed record
 * (`{"type":"attempt",…}`), otherwise undefined: the gateway's other lines (ready, errors) and anything
 * malformed are not attempts.
 */
export function parseAttemptLine(line: string): EgressAttempt | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object' || value.type !== 'attempt') return undefined;
  const a = value.attempt as Record<string, unknown> | undefined;
  if (
    !a ||
    !isCount(a.seq) ||
    (a.kind !== 'connect' && a.kind !== 'http') ||
    !isText(a.method, 32) ||
    !isText(a.host, 300) ||
    !isCount(a.port) ||
    (a.decision !== 'allowed' && a.decision !== 'denied' && a.decision !== 'failed') ||
    !REASONS.has(a.reason as EgressReason) ||
    !isText(a.detail) ||
    !isCount(a.bytesUp) ||
    !isCount(a.bytesDown) ||
    !isText(a.start, 40) ||
    !isText(a.end, 40) ||
    (a.runId !== undefined && !isText(a.runId, 64)) ||
    (a.path !== undefined && !isText(a.path)) ||
    (a.address !== undefined && !isText(a.address, 64)) ||
    (a.status !== undefined && !isCount(a.status))
  ) {
    return undefined;
  }
  return a as unknown as EgressAttempt;
}
