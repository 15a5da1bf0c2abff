/**
 * How every client starts the engine server's Node process: VS Code's language client, the command line, the
 * tests and the benchmark. Memory settings measured on the 50k-file / 500 MB workspace (docs/benchmarks.md,
 * "server peak RSS", mirror and first run): the server streams hundreds of MB through short-lived objects, and
 * with V8's defaults the garbage they leave in the old generation waits for a full collection.
 * - `--optimize-for-size`: V8's heap sized for memory rather than throughput (a small young generation, old
 *   generation collected sooner). Peak RSS 171–187 MiB with only a 2 MiB young generation, 148–156 MiB with
 *   this, ensureBox equally fast within the noise (9.5–12 s either way).
 * - glibc's `MALLOC_MMAP_THRESHOLD_` fixed at 128 KiB: large file reads are mapped and unmapped instead of
 *   raising glibc's sliding threshold and being kept in its heap (~5 MiB at the peak now that the tar's chunks
 *   are reused; ~30 MiB before). Other C libraries ignore it. A value the user's environment has is kept.
 */
export const SERVER_EXEC_ARGV: readonly string[] = ['--optimize-for-size'];

/** The variables to add to the server's environment (nothing the given environment already sets). */
export function serverEnvAdditions(env: NodeJS.ProcessEnv): Record<string, string> {
  return env.MALLOC_MMAP_THRESHOLD_ === undefined ? { MALLOC_MMAP_THRESHOLD_: String(128 * 1024) } : {};
}
