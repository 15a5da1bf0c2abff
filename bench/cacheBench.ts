// Bench section `caches`: `npm ci` in a new box with a warm package cache against the first, cold one, both
// through the box's egress gateway to the test's HTTPS registry stand-in (test/engine/egressInternet.ts: nothing
// leaves the machine). The stand-in serves PACKAGES generated packages; the lockfile pins each by URL and integrity.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tarStream from 'tar-stream';
import type { BoxSettings } from '../src/shared/protocol';
import { Box } from '../src/core/box/box';
import { clearCaches, listCaches } from '../src/core/cache/cacheVolumes';
import type { DockerEngine } from '../src/core/docker/dockerEngine';
import { createTestInternet } from '../test/engine/egressInternet';
import { TEST_IMAGES } from '../test/engine/engineHarness';
import { median } from './benchUtil';
import type { Row } from './report';

const REGISTRY = 'https://registry.test/npm';

function tgz(files: Record<string, string>): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name: `package/${name}`, mode: 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    pack.on('end', () => resolve(gzipSync(Buffer.concat(chunks))));
    pack.on('error', reject);
  });
}

/** The registry's files (a tar for the stand-in's /tmp), and the project's package.json and lockfile. */
async function generatedRegistry(count: number): Promise<{ files: Readable; manifest: string; lock: string }> {
  const registry = tarStream.pack();
  const dependencies: Record<string, string> = {};
  const packages: Record<string, unknown> = {};
  const dirs = new Set<string>();
  const dir = (name: string) => {
    if (!dirs.has(name)) registry.entry({ name, type: 'directory', mode: 0o755 });
    dirs.add(name);
  };
  dir('npm/');
  for (let i = 0; i < count; i++) {
    const name = `bench-cache-${i}`;
    const body = await tgz({
      'package.json': JSON.stringify({ name, version: '1.0.0', main: 'index.js' }),
      'index.js': `module.exports = ${i};\n`,
      'README.md': `# ${name}\n\n${'A generated package for the cache benchmark. '.repeat(60)}\n`,
    });
    dir(`npm/${name}/`);
    dir(`npm/${name}/-/`);
    registry.entry({ name: `npm/${name}/-/${name}-1.0.0.tgz`, mode: 0o644 }, body);
    dependencies[name] = '1.0.0';
    packages[`node_modules/${name}`] = {
      version: '1.0.0',
      resolved: `${REGISTRY}/${name}/-/${name}-1.0.0.tgz`,
      integrity: `sha512-${createHash('sha512').update(body).digest('base64')}`,
    };
  }
  registry.finalize();
  const manifest = JSON.stringify({ name: 'bench-cache', version: '1.0.0', dependencies });
  const lock = JSON.stringify({
    name: 'bench-cache',
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: 'bench-cache', version: '1.0.0', dependencies }, ...packages },
  });
  return { files: registry as unknown as Readable, manifest, lock };
}

/**
 * The cache row: per repetition a fresh workspace (so a cold cache), `npm ci` in its first box, the box removed (as
 * Reset does), then `npm ci` in a second box of the same workspace. Only the `npm ci` itself is timed.
 */
export async function npmCacheRows(
  engine: DockerEngine,
  options: { temp: string; ownerId: string; reps: number; packages: number; settings: BoxSettings; say: (line: string) => void },
): Promise<Row[]> {
  const internet = await createTestInternet(engine, options.ownerId);
  const folders: string[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  const warmRequests: number[] = [];
  try {
    const { files, manifest, lock } = await generatedRegistry(options.packages);
    await engine.call('adding packages to the registry stand-in', (d) =>
      d.getContainer(internet.upstreamContainerId).putArchive(files, { path: '/tmp' }),
    );
    const settings: BoxSettings = { ...options.settings, image: TEST_IMAGES.net, caches: true };
    const npmCi = async (folder: string): Promise<{ ms: number; requests: number }> => {
      const box = await Box.create(engine, settings, { folder, ownerId: options.ownerId, env: [], egress: internet.egress(['registry.test']) });
      try {
        const put = async (command: string, stdin: string) => {
          const r = await box.exec({ command, stdin, outputLimitBytes: 65536, timeoutMs: 60_000 });
          if (r.exitCode !== 0) throw new Error(`${command}: ${r.stderr}`);
        };
        await put('cat > /tmp/ca.pem', internet.caPem);
        await put('cat > package.json', manifest);
        await put('cat > package-lock.json', lock);
        const before = box.egress!.attempts.length;
        const started = process.hrtime.bigint();
        const r = await box.exec({ command: 'npm ci --no-audit --no-fund --cafile /tmp/ca.pem', outputLimitBytes: 65536, timeoutMs: 600_000 });
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        if (r.exitCode !== 0) throw new Error(`npm ci exited ${r.exitCode}: ${r.stderr.slice(-2000)}`);
        return { ms, requests: box.egress!.attempts.slice(before).filter((a) => a.host === 'registry.test').length };
      } finally {
        await box.remove();
      }
    };
    for (let i = 0; i < options.reps; i++) {
      const folder = mkdtempSync(path.join(options.temp, 'npm-cache-'));
      folders.push(folder);
      mkdirSync(folder, { recursive: true });
      writeFileSync(path.join(folder, 'package.json'), manifest);
      writeFileSync(path.join(folder, 'package-lock.json'), lock);
      const first = await npmCi(folder);
      const second = await npmCi(folder);
      options.say(
        `npm ci of ${options.packages} packages: cold ${first.ms.toFixed(0)} ms, warm ${second.ms.toFixed(0)} ms (${second.requests} registry connections)`,
      );
      cold.push(first.ms);
      warm.push(second.ms);
      warmRequests.push(second.requests);
    }
  } finally {
    const names = (await listCaches(engine, new Map()).catch(() => [])).filter((c) => folders.includes(c.folder)).map((c) => c.volumeName);
    if (names.length > 0) await clearCaches(engine, names).catch(() => undefined);
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
    await internet.remove();
  }
  const w = median(warm);
  const c = median(cold);
  return [
    {
      scenario: `npm ci in a new box with a warm package cache (${options.packages} packages, HTTPS registry stand-in through the gateway)`,
      workspace: 'npm-cache',
      ms: w,
      baselines: { 'npm ci, cold cache': c },
      ratio: w / c,
      ratioOf: 'npm ci, cold cache',
      target: 0.3,
      note: `registry connections in the warm run: ${Math.max(...warmRequests)}`,
    },
  ];
}
