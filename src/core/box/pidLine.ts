/**
 * Runs and terminals start through a wrapper that prints its own pid on the first line (of stderr for a run,
 * of the TTY for a terminal) before it becomes the command with `exec`, keeping that pid: the handle their
 * process tree is killed by. This reads that line off the front of the stream; everything after it is output.
 * When the first line is not a pid (the wrapper did not run, e.g. no `/bin/sh`), all of it is output: it is
 * the engine's or runtime's message, and nothing is dropped.
 */
export class PidLine {
  /** Resolves with the pid, or undefined when none came (the line was something else, or the stream ended). */
  readonly pid: Promise<number | undefined>;
  private head: Buffer | undefined = Buffer.alloc(0);
  private resolvePid: (pid: number | undefined) => void = () => undefined;

  /** A line longer than this without a newline is not a pid line. */
  private static readonly MAX_BYTES = 64;

  constructor() {
    this.pid = new Promise((resolve) => (this.resolvePid = resolve));
  }

  /** Whether the line is still being read. */
  get pending(): boolean {
    return this.head !== undefined;
  }

  /** Feeds a chunk of the stream; returns the part of it that is output (empty while the line is incomplete). */
  take(chunk: Buffer): Buffer {
    if (this.head === undefined) return chunk;
    const head = Buffer.concat([this.head, chunk]);
    const newline = head.indexOf(0x0a);
    if (newline < 0 && head.length < PidLine.MAX_BYTES) {
      this.head = head;
      return Buffer.alloc(0);
    }
    this.head = undefined;
    // A TTY turns the newline into CR LF.
    const first = newline < 0 ? '' : head.subarray(0, newline).toString('latin1').replace(/\r$/, '');
    if (/^[0-9]+$/.test(first)) {
      this.resolvePid(Number(first));
      return head.subarray(newline + 1);
    }
    this.resolvePid(undefined);
    return head;
  }

  /** The stream ended: what was held back is output, and no pid comes any more. */
  end(): Buffer {
    const rest = this.head ?? Buffer.alloc(0);
    this.head = undefined;
    this.resolvePid(undefined);
    return rest;
  }
}
