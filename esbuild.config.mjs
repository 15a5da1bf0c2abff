// Bundles the extension host entry and the engine server into dist/ (CommonJS, Node 20), and the Run History
// webview into media/ (browser IIFE + CSS, with the codicon font copied from @vscode/codicons).
// `--production` minifies and drops source maps; `--watch` rebuilds on change.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as esbuild from 'esbuild';

const require = createRequire(import.meta.url);

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/**
 * dockerode → docker-modem → ssh2 tries optional native add-ons inside try/catch (`cpu-features`,
 * `sshcrypto.node`). They must match VS Code's Electron ABI, so we never ship them: each is replaced by a
 * module that throws, which ssh2 already treats as "not available" and falls back to pure JS.
 */
const noNativeAddons = {
  name: 'no-native-addons',
  setup(build) {
    build.onResolve({ filter: /^cpu-features$|\.node$/ }, (args) => ({ path: args.path, namespace: 'no-native-addon' }));
    build.onLoad({ filter: /.*/, namespace: 'no-native-addon' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`native add-on ${args.path} is not bundled`)});`,
      loader: 'js',
    }));
  },
};

/**
 * Parts of dockerode this extension never calls, left out of the bundles (≈ 650 KiB): BuildKit sessions and
 * their output decoder (gRPC + protobuf; we never build images through the engine) and docker-modem's own
 * ssh2 client (`ssh://` engines go through the system ssh, src/core/docker/sshDialer.ts, with protocol
 * "http" and our agent). Each is replaced by a function that throws if it were ever called.
 */
const UNUSED_DOCKER_PARTS = { 'dockerode/lib': ['./session', './buildkit'], 'docker-modem/lib': ['./ssh'] };
const noUnusedDockerParts = {
  name: 'no-unused-docker-parts',
  setup(build) {
    build.onResolve({ filter: /^\.\/(session|buildkit|ssh)$/ }, (args) => {
      const owner = Object.keys(UNUSED_DOCKER_PARTS).find((dir) => args.importer.split(path.sep).join('/').includes(`/node_modules/${dir}/`));
      if (!owner || !UNUSED_DOCKER_PARTS[owner].includes(args.path)) return undefined;
      return { path: `${owner}/${args.path.slice(2)}`, namespace: 'unused-docker-part' };
    });
    build.onLoad({ filter: /.*/, namespace: 'unused-docker-part' }, (args) => ({
      contents: `module.exports = function () { throw new Error(${JSON.stringify(`${args.path} is not bundled with Agent Sandbox`)}); };`,
      loader: 'js',
    }));
  },
};

/**
 * The Dev Containers CLI (`@devcontainers/cli`, a devDependency: already one bundled file, never imported) ships as
 * is in dist/devcontainers-cli/, copied here at build time:
 * the engine server runs it with Node to build a folder's dev container (src/core/image/folderImage.ts). Its
 * package.json comes along (the CLI reads its own version from it), and its licence notices.
 */
const DEVCONTAINERS_CLI_FILES = ['devcontainer.js', 'dist/spec-node/devContainersSpecCLI.js', 'package.json', 'scripts/updateUID.Dockerfile', 'LICENSE.txt', 'ThirdPartyNotices.txt'];
const copyDevcontainersCli = {
  name: 'copy-devcontainers-cli',
  setup(build) {
    build.onEnd(() => {
      const from = path.dirname(require.resolve('@devcontainers/cli/package.json'));
      for (const file of DEVCONTAINERS_CLI_FILES) {
        const to = path.join('dist', 'devcontainers-cli', file);
        fs.mkdirSync(path.dirname(to), { recursive: true });
        fs.copyFileSync(path.join(from, file), to);
      }
    });
  },
};

/** Marks a bundle executable (a `bin` run directly, `./dist/cli.js`). */
function executable(file) {
  return { name: 'executable', setup: (build) => build.onEnd(() => fs.chmodSync(file, 0o755)) };
}

/** @type {esbuild.BuildOptions} */
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  plugins: [noNativeAddons, noUnusedDockerParts],
  external: ['vscode'],
};

/**
 * The Run History panel's front end: a browser bundle and its stylesheet in media/, next to the codicon font
 * and stylesheet copied from @vscode/codicons (the webview may load nothing but media/, so no CDN).
 */
const copyCodicons = {
  name: 'copy-codicons',
  setup(build) {
    build.onEnd(() => {
      const from = path.join(path.dirname(require.resolve('@vscode/codicons/package.json')), 'dist');
      for (const file of ['codicon.css', 'codicon.ttf']) fs.copyFileSync(path.join(from, file), path.join('media', file));
    });
  },
};
const webview = {
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: 'es2022',
  sourcemap: false,
  minify: production,
  logLevel: 'warning',
  entryPoints: [
    { in: 'src/webview/history/main.ts', out: 'history' },
    { in: 'src/webview/history/history.css', out: 'history' },
  ],
  outdir: 'media',
  plugins: [copyCodicons],
};

const builds = [
  { ...common, entryPoints: { extension: 'src/extension.ts', languageClient: 'src/host/languageClient.ts' }, outdir: 'dist' },
  { ...common, entryPoints: { server: 'src/server/main.ts' }, outdir: 'dist', plugins: [...common.plugins, copyDevcontainersCli] },
  // The command line (`agent-sandbox`, the package's bin): plain Node 20, spawns dist/server.js next to it.
  { ...common, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'dist', banner: { js: '#!/usr/bin/env node' }, plugins: [noNativeAddons, executable('dist/cli.js')] },
  // The egress gateway and relay: runs inside their containers (node only, no dependencies), never in VS Code.
  { ...common, entryPoints: { gateway: 'src/gateway/main.ts' }, outdir: 'dist', plugins: [] },
  webview,
];

if (watch) {
  for (const options of builds) {
    const context = await esbuild.context(options);
    await context.watch();
  }
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
}
