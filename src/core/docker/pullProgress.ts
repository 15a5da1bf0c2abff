/**
 * Turns the engine's pull events (one JSON object per line of `POST /images/create`) into what a person wants
 * to see: bytes downloaded of the layers' total, with a percentage, and the error the stream ended with, if any.
 * Pure, so the arithmetic is tested without an engine.
 */

/** One event of the engine's pull stream. */
export interface PullEvent {
  /** Layer id (short digest) for per-layer events; absent for overall ones (`Pulling from …`, `Digest: …`). */
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
  /** Set on the event that ends a failed pull (the HTTP status was 200 long before). */
  error?: string;
  errorDetail?: { message?: string };
}

/** What to show after an event: a message, and bytes done and in total when layer sizes are known. */
export interface PullReport {
  message: string;
  done?: number;
  total?: number;
}

/** Statuses after which a layer's download is complete (its bytes all counted). */
const DOWNLOADED = new Set(['Verifying Checksum', 'Download complete', 'Extracting', 'Pull complete']);

export class PullProgress {
  /** Download progress per layer whose size the engine reported. */
  private readonly layers = new Map<string, { current: number; total: number }>();
  private failure: string | undefined;

  /** The error message the stream reported, once it did. */
  get error(): string | undefined {
    return this.failure;
  }

  /** Takes one event; returns what to show, or `undefined` for an error event (see `error`). */
  update(event: PullEvent): PullReport | undefined {
    if (event.error !== undefined || event.errorDetail !== undefined) {
      this.failure ??= event.errorDetail?.message || event.error || 'the engine reported an error';
      return undefined;
    }
    const status = event.status ?? '';
    const layer = event.id ? this.layers.get(event.id) : undefined;
    if (event.id && status === 'Downloading' && event.progressDetail?.total) {
      this.layers.set(event.id, {
        current: Math.min(event.progressDetail.current ?? 0, event.progressDetail.total),
        total: event.progressDetail.total,
      });
    } else if (layer && DOWNLOADED.has(status)) {
      layer.current = layer.total;
    }
    const { done, total } = this.bytes();
    if (total === 0) return { message: event.id ? `${event.id}: ${status}`.trim() : status };
    const extracting = status === 'Extracting' || status === 'Pull complete';
    const what = done >= total && extracting ? 'Extracting layers' : 'Downloading';
    return { message: `${what}: ${formatSize(done)} of ${formatSize(total)} (${percent(done, total)})`, done, total };
  }

  /** Bytes downloaded and in total over the layers whose size is known so far (more may start later). */
  private bytes(): { done: number; total: number } {
    let done = 0;
    let total = 0;
    for (const layer of this.layers.values()) {
      done += layer.current;
      total += layer.total;
    }
    return { done, total };
  }
}

/** `12.3 MiB`, `512 KiB`, `20 B`. */
export function formatSize(bytes: number): string {
  if (bytes >= 1024 * 1024 * 1024) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${bytes} B`;
}

/** `27%`: never 100% before everything is done, never above it. */
export function percent(done: number, total: number): string {
  if (total <= 0) return '0%';
  const value = Math.floor((done / total) * 100);
  return `${Math.min(100, Math.max(0, value))}%`;
}
