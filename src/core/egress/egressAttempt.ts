/**
 * The audit record of one attempt to leave the box (types in the protocol: they travel in
 * `sandbox/egressAttempts`). The gateway writes one JSON line per attempt on its stdout when the attempt ends
 * (a denied one at once); the engine server reads them from the gateway container's output with this parser.
 */
import type { EgressAttempt, EgressReason } from '../../shared/protocol';

export type { EgressAttempt, EgressReason };

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
  'provider-key',
  'no-provider-key',
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
