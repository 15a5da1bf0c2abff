/**
 * How every client starts the engine server's Node process: VS Code's language client, the command line, the
 * tests and the benchmark. Memory settings measured on the 50k-file / 500 MB workspace (docs/benchmarks.md,
 * "server peak RSS"): the server streams hundreds of MB through short-lived buffers, and with Node's defaults
 * its peak RSS was ~1.4× what it holds.
 * - `--max-semi-space-size=2` (MiB; Node 20's default is 16): a smaller young generation, collected more often,
 *   so garbage does not pile up to 3 × 16 MiB before a scavenge (~30 MiB of the peak).
 * - glibc's `MALLOC_MMAP_THRESHOLD_` fixed at 128 KiB: the tar's 256 KiB chunks and large file reads are mapped
 *   and unmapped instead of raising glibc's sliding threshold and being kept in its heap (~30 MiB). Other C
 *   libraries ignore it. A value the user's environment already has is kept.
 */
export const SERVER_EXEC_ARGV: readonly string[] = ['--max-semi-space-size=2'];

/** The variables to add to the server's environment (nothing the given environment already sets). */
export function serverEnvAdditions(env: NodeJS.ProcessEnv): Record<string, string> {
  return env.MALLOC_MMAP_THRESHOLD_ === undefined ? { MALLOC_MMAP_THRESHOLD_: String(128 * 1024) } : {};
}
