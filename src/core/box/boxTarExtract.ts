import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { SandboxError } from '../errors';
import type { Box } from './box';
import { sink, streamEnd, type BoxHelperResult } from './boxExec';
import { pipeRecyclingChunks } from '../workspace/tarWriter';

/** A whole-workspace extraction may take long on a big tree; the same bound as the engine's archive API. */
const EXTRACT_TIMEOUT_MS = 10 * 60_000;
/** Stderr kept from the box's tar (for messages only). */
const STDERR_CAP = 64 * 1024;
/** Written by the script once it found a tar and is about to read the archive from stdin. */
const READY = 'R';

/** Written once the extraction succeeded and the follow-up script (if any) is about to run. */
const FOLLOW_UP = 'L';

/**
 * Extracts a tar from stdin into `/workspace` with the image's own tar (GNU, busybox or bsdtar), run by the box
 * user like every exec: the box's own process writes only where the box user could anyway, so nothing new is
 * trusted. `umask 0` and `-p` keep the modes of the headers (busybox applies the umask otherwise). It first says
 * it is ready, so an image without tar (or without a shell) is found before any byte of the workspace is packed.
 * When tar succeeded and a follow-up script is given (`$1`), it says so and runs it in the same exec (a second
 * exec costs a round trip to the engine and back): its exit status becomes the exec's.
 */
export const EXTRACT_TAR_SCRIPT = `
export PATH=/usr/bin:/bin LC_ALL=C
command -v tar >/dev/null 2>&1 || exit 127
cd /workspace || exit 3
umask 0
printf ${READY}
tar -xpf - || exit $?
[ -n "$1" ] || exit 0
umask 022
printf ${FOLLOW_UP}
exec /bin/sh -c "$1" agent-sandbox-helper
`;

/** A script run by the extraction's own exec once the workspace is in (see `EXTRACT_TAR_SCRIPT`). */
export interface ExtractFollowUp {
  script: string;
  /** Its stdout is kept up to this many bytes; beyond, its result is dropped (`followUp` undefined). */
  maxStdoutBytes: number;
}

/**
 * Streams the tar `makeTar` returns into `tar -x` run in the box (see `EXTRACT_TAR_SCRIPT`): about half the
 * time of the engine's archive API, which first spools the whole archive. `makeTar` is called only once the box
 * said its tar is ready; `no-tar` (nothing packed, nothing sent) means the image has no tar or no shell and the
 * caller uses `Box.putArchive` instead. A tar that fails (a full disk, a name it refuses) fails the call with its
 * own message. With `followUp`, that script runs once the extraction succeeded and its result comes back (the
 * mirror takes the box listing for its stamps this way).
 */
export async function extractWithBoxTar(
  box: Box,
  makeTar: () => Readable,
  signal?: AbortSignal,
  followUp?: ExtractFollowUp,
): Promise<{ kind: 'no-tar' } | { kind: 'extracted'; followUp?: BoxHelperResult }> {
  return box.engine.call(
    'extracting the workspace in the box',
    async (docker, abortSignal) => {
      const exec = await docker.getContainer(box.containerId).exec({
        Cmd: ['/bin/sh', '-c', EXTRACT_TAR_SCRIPT, 'agent-sandbox-mirror', followUp?.script ?? ''],
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        abortSignal,
      } as Dockerode.ExecCreateOptions);
      const stream = (await exec.start({ hijack: true, stdin: true, abortSignal })) as NodeJS.ReadWriteStream & { destroy(error?: Error): void };
      // Stdout: the ready mark, then (tar done, follow-up started) its mark and the follow-up's own output.
      const stdout: Buffer[] = [];
      let stdoutBytes = 0;
      let stdoutOverflow = false;
      let stderr = '';
      let ready: () => void = () => undefined;
      const readySeen = new Promise<boolean>((resolve) => (ready = () => resolve(true)));
      docker.modem.demuxStream(
        stream,
        sink((chunk) => {
          if (stdoutBytes === 0 && chunk.length > 0 && chunk[0] === READY.charCodeAt(0)) ready();
          stdoutBytes += chunk.length;
          if (stdoutBytes > 2 + (followUp?.maxStdoutBytes ?? 0)) stdoutOverflow = true;
          else stdout.push(chunk);
        }),
        sink((chunk) => {
          if (stderr.length < STDERR_CAP) stderr += chunk.toString('utf8');
        }),
      );
      let tar: Readable | undefined;
      let tarFailure: unknown;
      const end = streamEnd(stream);
      const ended = end.done;
      const onAbort = (): void => {
        tar?.destroy();
        stream.destroy();
      };
      abortSignal.addEventListener('abort', onAbort, { once: true });
      try {
        const started = await Promise.race([readySeen, ended.then(() => false)]);
        if (started) {
          tar = makeTar();
          // Packing may have failed (or been cancelled) before anyone read it.
          if (tar.destroyed) throw tar.errored ?? new SandboxError('cancelled', 'Sending the workspace to the box was cancelled.');
          tar.on('error', (error) => {
            tarFailure ??= error;
            stream.destroy();
          });
          // Ending the tar half-closes the hijacked connection, which closes the box tar's stdin. Each chunk goes
          // back to the tar writer once the socket wrote it (see `recycleTarChunk`).
          pipeRecyclingChunks(tar, stream);
          await ended;
          // The stream's own error when it failed first (a tar that failed destroys it without one).
          const failure = end.error ?? tarFailure;
          if (failure) throw failure;
        }
        const info = await exec.inspect({ abortSignal });
        const exitCode = info.Running ? null : info.ExitCode;
        if (!started) {
          if (exitCode === 126 || exitCode === 127) return { kind: 'no-tar' };
          throw new SandboxError('engine-error', `The box could not start its tar to receive the workspace (exit ${exitCode}): ${stderr.trim()}`);
        }
        const out = Buffer.concat(stdout);
        const followedUp = out.length >= 2 && out[1] === FOLLOW_UP.charCodeAt(0);
        if (followedUp) {
          return { kind: 'extracted', followUp: stdoutOverflow ? undefined : { exitCode, stdout: out.subarray(2), stderr } };
        }
        if (exitCode === 137) {
          // SIGKILL: the box's memory limit (what its tar writes into an in-memory /workspace counts against it).
          throw new SandboxError(
            'engine-error',
            'The box\'s tar was killed while extracting the workspace (exit 137): the box ran out of memory, and what its tar writes into the in-memory /workspace counts against agentSandbox.memoryMiB. Raise agentSandbox.memoryMiB, or set agentSandbox.workspaceVolume to "disk".',
          );
        }
        if (exitCode !== 0) {
          throw new SandboxError('engine-error', `The box's tar could not extract the workspace (exit ${exitCode}): ${stderr.trim()}`);
        }
        return { kind: 'extracted' };
      } finally {
        abortSignal.removeEventListener('abort', onAbort);
      }
    },
    { signal, timeoutMs: EXTRACT_TIMEOUT_MS },
  );
}
