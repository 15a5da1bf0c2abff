// Fixture folders for `agentSandbox.image: "auto"` (copied to a temp folder per use) and the resolver as the
// engine server builds it, with the Dev Containers CLI as shipped in dist/.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ImageBuildDecisions } from '../../src/shared/protocol';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { SandboxError } from '../../src/core/errors';
import { FolderImageResolver, type FolderImage } from '../../src/core/image/folderImage';

const root = path.resolve(__dirname, '..', '..', '..');
/** The Dev Containers CLI as the packaged extension ships it (copied by `npm run build`). */
export const DEVCONTAINERS_CLI = path.join(root, 'dist', 'devcontainers-cli', 'devcontainer.js');
/** A tiny Node project with a dev container: Dockerfile, a local feature, run options the box ignores, `node --test` tests. */
export const DEVCONTAINER_PROJECT = path.join(root, 'test', 'fixtures', 'devcontainer-project');

/** A fresh temp copy of a fixture folder (or an empty folder), removed by `dispose`. */
export function fixtureCopy(source?: string): { folder: string; dispose(): void } {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-image-'));
  if (source) fs.cpSync(source, folder, { recursive: true });
  return { folder, dispose: () => fs.rmSync(folder, { recursive: true, force: true }) };
}

export function testResolver(log: string[] = [], options: { dockerPath?: string } = {}): FolderImageResolver {
  assert.ok(fs.existsSync(DEVCONTAINERS_CLI), `${DEVCONTAINERS_CLI} is missing: run "npm run build"`);
  return new FolderImageResolver({ devcontainerCliPath: DEVCONTAINERS_CLI, env: process.env, log: (line) => log.push(line), ...options });
}

/** The decisions of a client that asks and has allowed nothing yet. */
export const ASKING: ImageBuildDecisions = Object.freeze({ allowed: [], refused: [], ask: true }) as ImageBuildDecisions;

/**
 * Resolves `auto` for the folder as a user who confirms would: the first answer is `image-build-unconfirmed`
 * naming the inputs, the second (allowed) builds. Returns the image and the confirmation's request.
 */
export async function confirmAndBuild(
  engine: DockerEngine,
  folder: string,
  options: { resolver?: FolderImageResolver; signal?: AbortSignal; progress?: (message: string, done?: number, total?: number) => void } = {},
) {
  const resolver = options.resolver ?? testResolver();
  const progress = options.progress ?? (() => undefined);
  const unconfirmed = await resolver.resolve({ engine, folder, setting: 'auto', decisions: ASKING, progress }).then(
    () => assert.fail('an unconfirmed build must not go ahead'),
    (error: unknown) => error,
  );
  assert.ok(SandboxError.is(unconfirmed, 'image-build-unconfirmed'), String(unconfirmed));
  const request = unconfirmed.options.imageBuild!;
  const image: FolderImage = await resolver.resolve({
    engine,
    folder,
    setting: 'auto',
    decisions: { allowed: [request.inputHash], refused: [], ask: true },
    progress,
    signal: options.signal,
  });
  return { image, request };
}

/** Removes images a suite built (by reference; never an image it did not make). */
export async function removeBuiltImages(engine: DockerEngine | undefined, references: Iterable<string>): Promise<void> {
  for (const reference of new Set(references)) {
    if (!reference.startsWith('agent-sandbox-built:')) continue;
    await engine?.call('remove image', (d) => d.getImage(reference).remove({ force: true })).catch(() => undefined);
  }
}
