// What `vsce` would put in the .vsix: only the bundles, media, README, LICENSE, CHANGELOG and the manifest.
// Asked of vsce itself (`vsce ls`), so the test follows vsce's own .vscodeignore semantics.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..', '..');
const vsceBin = path.join(path.dirname(require.resolve('@vscode/vsce/package.json')), 'vsce');

const allowed = [
  /^dist\/extension\.js$/,
  /^dist\/languageClient\.js$/,
  /^dist\/server\.js$/,
  /^dist\/gateway\.js$/,
  /^dist\/cli\.js$/,
  // The Dev Containers CLI as published (one bundled file), with its manifest and licence notices.
  /^dist\/devcontainers-cli\/(devcontainer\.js|dist\/spec-node\/devContainersSpecCLI\.js|package\.json|scripts\/updateUID\.Dockerfile|LICENSE\.txt|ThirdPartyNotices\.txt)$/,
  /^media\//,
  /^README\.md$/,
  /^CHANGELOG\.md$/,
  /^LICENSE$/,
  /^package\.json$/,
  /^package\.nls\.json$/,
  /^l10n\/bundle\.l10n\.json$/,
];

function vsceList(folder: string): string[] {
  const out = execFileSync(process.execPath, [vsceBin, 'ls', '--no-dependencies'], { cwd: folder, encoding: 'utf8', timeout: 60_000 });
  return out
    .split('\n')
    .map((line) => line.trim().replace(/\\/g, '/'))
    .filter((line) => line.length > 0)
    .sort();
}

function filesUnder(folder: string, prefix: string): string[] {
  if (!fs.existsSync(folder)) return [];
  return fs.readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const rel = `${prefix}/${entry.name}`;
    return entry.isDirectory() ? filesUnder(path.join(folder, entry.name), rel) : [rel];
  });
}

/** The text of one entry of a zip file (through vsce's own zip reader). */
function readZipEntry(zip: string, name: string): Promise<string> {
  const yauzl = require(require.resolve('yauzl', { paths: [path.dirname(require.resolve('@vscode/vsce/package.json'))] })) as {
    open(file: string, options: { lazyEntries: boolean }, callback: (error: Error | null, zipFile: ZipFile) => void): void;
  };
  interface ZipFile {
    readEntry(): void;
    on(event: 'entry', listener: (entry: { fileName: string }) => void): void;
    on(event: 'end' | 'error', listener: (error?: Error) => void): void;
    openReadStream(entry: { fileName: string }, callback: (error: Error | null, stream: NodeJS.ReadableStream) => void): void;
    close(): void;
  }
  return new Promise((resolve, reject) => {
    yauzl.open(zip, { lazyEntries: true }, (error, zipFile) => {
      if (error) return reject(error);
      zipFile.on('entry', (entry) => {
        if (entry.fileName !== name) return zipFile.readEntry();
        zipFile.openReadStream(entry, (streamError, stream) => {
          if (streamError) return reject(streamError);
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('end', () => {
            zipFile.close();
            resolve(Buffer.concat(chunks).toString('utf8'));
          });
        });
      });
      zipFile.on('end', () => reject(new Error(`${name} is not in ${zip}`)));
      zipFile.on('error', reject);
      zipFile.readEntry();
    });
  });
}

function write(folder: string, rel: string, text = 'x'): void {
  fs.mkdirSync(path.dirname(path.join(folder, rel)), { recursive: true });
  fs.writeFileSync(path.join(folder, rel), text);
}

suite('Packaging: .vsix contents', function () {
  this.timeout(60_000);

  test('the repository packages only the bundles, media, README, LICENSE and the manifest', () => {
    const listed = vsceList(root);
    const stray = listed.filter((file) => !allowed.some((pattern) => pattern.test(file)));
    assert.deepEqual(stray, [], `files that must not ship: ${stray.join(', ')}`);
    for (const required of [
      'package.json',
      'package.nls.json',
      'LICENSE',
      'README.md',
      'dist/extension.js',
      'dist/languageClient.js',
      'dist/server.js',
      'dist/gateway.js',
      'dist/cli.js',
      'dist/devcontainers-cli/devcontainer.js',
      'dist/devcontainers-cli/dist/spec-node/devContainersSpecCLI.js',
    ]) {
      assert.ok(listed.includes(required), `${required} is missing from the package (listed: ${listed.join(', ')})`);
    }
    for (const media of filesUnder(path.join(root, 'media'), 'media')) {
      assert.ok(listed.includes(media), `${media} is missing from the package`);
    }
  });

  test("the vsce step of `npm run package` builds a .vsix from the current tree, its README's links absolute", async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    const step = (manifest.scripts?.package ?? '')
      .split('&&')
      .map((part) => part.trim())
      .find((part) => part.startsWith('vsce package'));
    assert.ok(step, `the "package" script has no \`vsce package\` step: ${manifest.scripts?.package}`);
    const args = step.split(/\s+/).slice(1);
    const out = args.findIndex((arg) => arg === '-o' || arg === '--out');
    if (out >= 0) args.splice(out, 2);
    // Packaged from a copy of what ships, so a `vscode:prepublish` script cannot rebuild dist/ under other tests.
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-vsix-'));
    try {
      const tree = path.join(folder, 'tree');
      for (const rel of ['.vscodeignore', 'README.md', 'CHANGELOG.md', 'LICENSE', 'package.nls.json', 'l10n', 'dist', 'media']) {
        if (fs.existsSync(path.join(root, rel))) fs.cpSync(path.join(root, rel), path.join(tree, rel), { recursive: true });
      }
      const copied = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
      delete copied.scripts?.['vscode:prepublish'];
      fs.writeFileSync(path.join(tree, 'package.json'), JSON.stringify(copied, null, 2));
      const vsix = path.join(folder, 'agent-sandbox.vsix');
      try {
        execFileSync(process.execPath, [vsceBin, ...args, '-o', vsix], { cwd: tree, encoding: 'utf8', timeout: 60_000, stdio: 'pipe' });
      } catch (error) {
        const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
        assert.fail(`\`${step}\` failed:\n${stdout}${stderr}`);
      }
      assert.ok(fs.statSync(vsix).size > 0);
      // The listing shows the packaged README: its images and links must work there, where docs/ is not.
      const readme = await readZipEntry(vsix, 'extension/readme.md');
      const targets = [...readme.matchAll(/\]\(([^)\s]+)[^)]*\)/g)].map((m) => m[1]);
      assert.ok(
        targets.some((t) => /\.png$/.test(t)),
        'the README has its screenshots',
      );
      const relative = targets.filter((t) => !/^(https:\/\/|#|mailto:)/.test(t));
      assert.deepEqual(relative, [], 'relative links in the packaged README (vsce rewrites them only when the manifest names its repository)');
      const repository = (copied as { repository?: { url?: string } }).repository?.url?.replace(/\.git$/, '');
      assert.ok(repository, 'package.json names no repository');
      assert.ok(targets.includes(`${repository}/raw/HEAD/docs/images/review.png`), targets.filter((t) => t.endsWith('.png')).join(', '));
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  test('the .vscodeignore allow-list keeps sources, tests, maps, dependencies and secrets out', () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-vsix-'));
    try {
      fs.copyFileSync(path.join(root, 'package.json'), path.join(folder, 'package.json'));
      fs.copyFileSync(path.join(root, '.vscodeignore'), path.join(folder, '.vscodeignore'));
      const shipped = [
        'LICENSE',
        'README.md',
        'CHANGELOG.md',
        'package.nls.json',
        'l10n/bundle.l10n.json',
        'dist/extension.js',
        'dist/languageClient.js',
        'dist/server.js',
        'dist/gateway.js',
        'media/history.js',
        'media/history.css',
      ];
      const kept = [
        'src/extension.ts',
        'test/unit/a.test.ts',
        'out/src/extension.js',
        'dist/extension.js.map',
        'dist/server.js.map',
        'dist/stray.js',
        'node_modules/dockerode/index.js',
        'scripts/run-tests.mjs',
        '.env',
        'secret.pem',
        '.github/workflows/ci.yml',
        'tsconfig.json',
        'esbuild.config.mjs',
        'package-lock.json',
        'test-results/host.json',
        'agent-sandbox.vsix',
        '.ci/run',
        'test/fixtures/host-workspace/package.json',
        'test/fixtures/host-workspace/README.md',
        '.vscode-test/vscode/LICENSE',
      ];
      for (const rel of [...shipped, ...kept]) write(folder, rel);
      assert.deepEqual(vsceList(folder), [...shipped, 'package.json'].sort());
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
