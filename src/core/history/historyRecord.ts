// The shape of one run in the history, shared by the store (core), the recorder (host) and the panel
// (webview). Types only: the webview bundle imports this file too, so it must not pull in Node or `vscode`.
import type { BoxImage, ChangeKind, EgressReason, FlagReason, RunOutcome, RunPolicy } from '../../shared/protocol';

/** Where a run came from (mirrors the host's `RunSource`). */
export type HistorySource = 'command' | 'tool' | 'terminal' | 'mcp';

/**
 * How a run ended as the history sees it: the server's outcomes, plus `running` (not ended yet) and
 * `interrupted` (it never ended: VS Code or the extension stopped while it ran).
 */
export type HistoryOutcome = RunOutcome | 'running' | 'interrupted';

/**
 * A review decision on one file (or one hunk of it). `merged`: a conflict resolved by hand — the developer
 * edited their file taking from the box's, and that merge went into both.
 */
export interface FileDecision {
  decision: 'accepted' | 'rejected' | 'merged';
  /** Epoch milliseconds. */
  at: number;
  /** For hunk-level decisions, the hunk header, e.g. `@@ -3,4 +3,5 @@`. */
  hunk?: string;
}

/** A file this run changed in the box (relative to the state before it), with what was decided about it. */
export interface HistoryFileChange {
  /** Workspace-relative POSIX path (the new path for renames). */
  path: string;
  kind: ChangeKind;
  fromPath?: string;
  binary: boolean;
  /** Why applying it needs a deliberate approval; empty when none. */
  flags: FlagReason[];
  /** Lines added relative to the workspace's version; absent when not counted (binary, too large). */
  added?: number;
  /** Lines removed relative to the workspace's version; absent when not counted. */
  removed?: number;
  /** Decisions in the order they were made; the last one is the current state. */
  decisions: FileDecision[];
}

/** One run in the box. Every field is redacted before it is stored: the file holds nothing the box did not get. */
export interface HistoryRecord {
  /** Same id as the run's (`RunStartedEvent.runId`). */
  id: string;
  /** Absolute path of the workspace folder whose box ran it. */
  folder: string;
  source: HistorySource;
  /** The agent or tool behind it; absent for a person. */
  agent?: string;
  /** The command line or file operation (redacted). */
  command: string;
  /** Working directory relative to `/workspace`. */
  cwd?: string;
  /** Epoch milliseconds. */
  startedAt: number;
  endedAt?: number;
  durationMs?: number;
  outcome: HistoryOutcome;
  /** Exit code; `null` when killed or never started; absent while running. */
  exitCode?: number | null;
  /** Why it failed around running (engine error, cancelled before start): reason and message. */
  error?: { reason?: string; message: string };
  /** Image reference and digest (image id), with the registry digest, the image report's summary and a moved-tag note. */
  image?: BoxImage;
  /** OCI runtime the box used. */
  runtime?: string;
  /** Network, user, limits and the names (never the values) of the host variables passed in. */
  policy?: RunPolicy;
  /** Captured output, redacted and capped (`truncated` says whether anything was cut, here or by the server). */
  output?: { stdout: string; stderr: string; truncated: boolean };
  /** Files the run changed, sorted by path. */
  files: HistoryFileChange[];
  /** Entries from the box that collect refused as unsafe. */
  refused?: number;
  /** Paths changed on both sides at the catch-up before the run (the box's version was kept). */
  conflicts?: string[];
  /** What the run tried to reach through the box's egress gateway (`network: "allowlist"` only); absent when nothing. */
  egress?: RunEgress;
}

/** Attempts to one host and port, summed. */
export interface EgressHostSummary {
  host: string;
  port: number;
  allowed: number;
  denied: number;
  /** Allowed by the list but not reached (did not resolve, connection failed). */
  failed: number;
  /** Why the denied and failed ones were, each once. */
  reasons: EgressReason[];
  bytesUp: number;
  bytesDown: number;
}

/** A run's egress, as recorded when it ended. */
export interface RunEgress {
  /** Attempts that named this run (the run id its proxy variables carry), per host, most first. */
  hosts: EgressHostSummary[];
  /**
   * Attempts that named no run (a process that dropped the run's proxy variables, or reached the proxy
   * directly) and started while this run ran: the box made them, but not necessarily this run.
   */
  unattributed?: EgressHostSummary[];
}

/** The document `Export Run History` writes. */
export interface HistoryExport {
  format: 'agent-sandbox-run-history';
  version: 1;
  /** ISO 8601. */
  exportedAt: string;
  /** Records, newest first. */
  records: HistoryRecord[];
}
