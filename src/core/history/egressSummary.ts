// What a run contacted through the box's egress gateway, summed per host, and its wording for the history
// and the review. Pure (no Node, no DOM): the webview bundle imports it too.
import type { EgressAttempt, EgressReason } from '../../shared/protocol';
import type { EgressHostSummary, RunEgress } from './historyRecord';

/** Hosts named one by one in the short line; the rest are counted. */
const LINE_HOSTS = 3;

/** `host` for port 443, else `host:port`. */
export function hostLabel(summary: { host: string; port: number }): string {
  return summary.port === 443 ? summary.host : `${summary.host}:${summary.port}`;
}

/** Attempts summed per host and port: counts by decision, the reasons of refusals and failures, bytes; most attempts first. */
export function summarizeAttempts(attempts: readonly EgressAttempt[]): EgressHostSummary[] {
  const byHost = new Map<string, EgressHostSummary>();
  for (const attempt of attempts) {
    const key = `${attempt.host}\n${attempt.port}`;
    let summary = byHost.get(key);
    if (!summary) {
      summary = { host: attempt.host, port: attempt.port, allowed: 0, denied: 0, failed: 0, reasons: [], bytesUp: 0, bytesDown: 0 };
      byHost.set(key, summary);
    }
    summary[attempt.decision]++;
    if (attempt.decision !== 'allowed' && !summary.reasons.includes(attempt.reason)) summary.reasons.push(attempt.reason);
    summary.bytesUp += attempt.bytesUp;
    summary.bytesDown += attempt.bytesDown;
  }
  const total = (s: EgressHostSummary): number => s.allowed + s.denied + s.failed;
  return [...byHost.values()].sort((a, b) => total(b) - total(a) || hostLabel(a).localeCompare(hostLabel(b)));
}

/**
 * A run's egress from the gateway's attempts: those that named the run (its proxy user), and — labelled apart,
 * since nothing says whose they were — those that named no run and started while it ran. Undefined when both
 * are empty.
 */
export function runEgress(attempts: readonly EgressAttempt[], run: { id: string; startedAt: number; endedAt: number }): RunEgress | undefined {
  const own = attempts.filter((a) => a.runId === run.id);
  const unnamed = attempts.filter((a) => {
    if (a.runId !== undefined) return false;
    const start = Date.parse(a.start);
    return start >= run.startedAt && start <= run.endedAt;
  });
  if (own.length === 0 && unnamed.length === 0) return undefined;
  return { hosts: summarizeAttempts(own), ...(unnamed.length ? { unattributed: summarizeAttempts(unnamed) } : {}) };
}

function listed(hosts: readonly EgressHostSummary[], count: (s: EgressHostSummary) => number): string {
  const named = hosts.filter((s) => count(s) > 0);
  const shown = named.slice(0, LINE_HOSTS).map((s) => `${hostLabel(s)} ×${count(s)}`);
  return named.length > LINE_HOSTS ? `${shown.join(', ')} and ${named.length - LINE_HOSTS} more` : shown.join(', ');
}

/** The short line, e.g. `contacted registry.npmjs.org ×12 · denied evil.example ×1`; empty when nothing was attempted. */
export function egressLine(egress: RunEgress | undefined): string {
  if (!egress) return '';
  const parts: string[] = [];
  const contacted = listed(egress.hosts, (s) => s.allowed);
  const denied = listed(egress.hosts, (s) => s.denied);
  const failed = listed(egress.hosts, (s) => s.failed);
  if (contacted) parts.push(`contacted ${contacted}`);
  if (denied) parts.push(`denied ${denied}`);
  if (failed) parts.push(`failed ${failed}`);
  const unnamed = (egress.unattributed ?? []).reduce((n, s) => n + s.allowed + s.denied + s.failed, 0);
  if (unnamed > 0) parts.push(`${unnamed} more from the box naming no run`);
  return parts.join(' · ');
}

const REASON_WORDS: Record<EgressReason, string> = {
  allowlisted: 'allowed',
  'not-allowlisted': 'not in the allowlist',
  'refused-address': 'resolved to a refused address',
  'resolve-failed': 'did not resolve',
  'connect-failed': 'connection failed',
  'host-mismatch': 'Host header named another host',
  'bad-request': 'not a proxy request',
  'upgrade-refused': 'protocol upgrade refused',
  'too-many-connections': 'connection limit reached',
  'offline-run': 'an offline run was running',
  'provider-key': 'model API, key added by the gateway',
  'no-provider-key': 'model API, no key stored',
};

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** One host in full, e.g. `registry.npmjs.org: 12 allowed, 1 denied (not in the allowlist) · ↑ 3.1 KiB ↓ 1.2 MiB`. */
export function hostDetail(summary: EgressHostSummary): string {
  const counts = [
    summary.allowed ? `${summary.allowed} allowed` : '',
    summary.denied ? `${summary.denied} denied` : '',
    summary.failed ? `${summary.failed} failed` : '',
  ].filter(Boolean);
  const why = summary.reasons.length ? ` (${summary.reasons.map((r) => REASON_WORDS[r] ?? r).join(', ')})` : '';
  return `${hostLabel(summary)}: ${counts.join(', ')}${why} · ↑ ${bytes(summary.bytesUp)} ↓ ${bytes(summary.bytesDown)}`;
}

/** The hosts of a run's egress as text the history filter searches. */
export function egressSearchText(egress: RunEgress | undefined): string {
  if (!egress) return '';
  return [...egress.hosts, ...(egress.unattributed ?? [])].map((s) => hostLabel(s)).join('\n');
}
