// Shared set-up for engine-tier tests: a real engine or a clear failure, test images, and cleanup of
// everything a suite created (by owner label), so a failed test leaves no box behind.
import * as os from 'node:os';
import type { BoxSettings } from '../../src/shared/protocol';
import { DockerEngine } from '../../src/core/docker/dockerEngine';
import { resolveEngineLocation } from '../../src/core/docker/engineLocation';
import { DEFAULT_BOX_SETTINGS, LABEL_MANAGED, LABEL_OWNER } from '../../src/core/box/boxConfig';
import type { Box } from '../../src/core/box/box';
import type { ExecOptions, ExecOutcome } from '../../src/core/box/boxRun';

export const TEST_IMAGES = {
  /** busybox-static only; /bin/sh is busybox ash. */
  busybox: 'agent-sandbox-test/busybox',
  /** busybox + bash (as /bin/sh) + node + git. */
  node: 'agent-sandbox-test/node',
  /** busybox + bash (as /bin/sh) + node + git + curl; /etc/hosts before DNS. The egress tests' image. */
  net: 'agent-sandbox-test/net',
} as const;

/**
 * Connects to the engine the docker CLI would use (DOCKER_HOST etc.) and checks the test images exist.
 * Throws with what to do when either is missing: engine tests fail, they never skip.
 */
export async function connectTestEngine(): Promise<DockerEngine> {
  const location = resolveEngineLocation({ env: process.env, homeDir: os.homedir(), platform: process.platform });
  const engine = new DockerEngine(location, { defaultTimeoutMs: 30_000 });
  try {
    await engine.version({ timeoutMs: 10_000 });
  } catch (error) {
    throw new Error(
      `Engine tests need a running Docker engine, and none answered at ${location.host} (${location.source}): ${(error as Error).message}\n` +
        'Start the private one with `eval "$(bash scripts/start-docker-engine.sh)"` (it prints the DOCKER_HOST to export).',
    );
  }
  for (const image of Object.values(TEST_IMAGES)) {
    if (!(await engine.inspectImage(image))) {
      throw new Error(`Engine tests need the image ${image}; build it with \`bash scripts/build-test-images.sh\`.`);
    }
  }
  return engine;
}

/** Small, fast settings for test boxes. */
export function testSettings(overrides: Partial<BoxSettings> = {}): BoxSettings {
  return {
    ...DEFAULT_BOX_SETTINGS,
    image: TEST_IMAGES.busybox,
    memoryMiB: 256,
    cpus: 1,
    pidsLimit: 128,
    workspaceSizeMiB: 64,
    tmpSizeMiB: 32,
    // Package caches outlive boxes and their owners; suites that test them turn them on (test/engine/caches.test.ts).
    caches: false,
    ...overrides,
  };
}

/** A unique owner id per suite, so cleanup removes exactly what that suite made. */
export function testOwnerId(suite: string): string {
  return `engine-test-${suite}-${process.pid}-${Date.now().toString(36)}`;
}

/** Removes every container and volume labelled with this owner id. Never throws. */
export async function removeEverythingOwnedBy(engine: DockerEngine | undefined, ownerId: string): Promise<void> {
  if (!engine) {
    return;
  }
  const label = [`${LABEL_MANAGED}=true`, `${LABEL_OWNER}=${ownerId}`];
  try {
    const containers = await engine.call('listing test containers', (d) => d.listContainers({ all: true, filters: { label } }));
    for (const c of containers) {
      await engine.call('removing a test container', (d) => d.getContainer(c.Id).remove({ force: true })).catch(() => undefined);
    }
    const volumes = await engine.call('listing test volumes', (d) => d.listVolumes({ filters: { label } }));
    for (const v of volumes.Volumes ?? []) {
      await engine.call('removing a test volume', (d) => d.getVolume(v.Name).remove()).catch(() => undefined);
    }
  } catch {
    // Teardown must not hide the test's own failure.
  }
}

/** Runs a shell command in the box with a 1 MiB cap and a 60 s timeout unless told otherwise. */
export function sh(box: Box, command: string, options: Partial<ExecOptions> = {}): Promise<ExecOutcome> {
  return box.exec({ command, outputLimitBytes: 1024 * 1024, timeoutMs: 60_000, ...options });
}

/** Like `sh`, but fails unless the command exits 0; returns stdout. */
export async function shOk(box: Box, command: string, options: Partial<ExecOptions> = {}): Promise<string> {
  const result = await sh(box, command, options);
  if (result.outcome !== 'exited' || result.exitCode !== 0) {
    throw new Error(`\`${command}\` ended ${result.outcome} with exit ${result.exitCode}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
  return result.stdout;
}
