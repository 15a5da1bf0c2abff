// Upstream stand-ins for the end-to-end agent tests, on the stand-in internet of test/engine/egressInternet.ts:
// the Anthropic Messages API (as api.anthropic.com) and the npm registry (as registry.npmjs.org), each a container
// running a program of test/standIns with a certificate from the test CA for its real name. The real services
// are unreachable from the test machine, and no test may send traffic off it: the gateway resolves these names
// through Docker's embedded DNS on the test network, so they reach the stand-ins and nothing else.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import type { RecordedMessagesRequest, ScriptedTurn } from '../standIns/messagesApiServer';
import type { RecordedRequest } from '../standIns/standInHttp';
import { REQUEST_LINE_PREFIX } from '../standIns/standInHttp';
import { ROOT, waitUntilListening, type TestInternet } from './egressInternet';

/** The real Claude Code CLI, built by scripts/build-test-images.sh (on top of the net image). */
export const CLAUDE_IMAGE = 'agent-sandbox-test/claude';

const STAND_IN_PROGRAMS = path.join(ROOT, 'out', 'test', 'standIns');

export interface StandIn {
  containerId: string;
  /** The requests it received so far, as it logged them. */
  requests<T extends RecordedRequest = RecordedRequest>(): Promise<T[]>;
}

/** The stdout of a container's log (the engine frames each write with an 8-byte header when there is no TTY). */
function stdoutOf(log: Buffer): string {
  const parts: Buffer[] = [];
  for (let at = 0; at + 8 <= log.length;) {
    const size = log.readUInt32BE(at + 4);
    if (log[at] === 1) parts.push(log.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Runs `program` (a compiled file of test/standIns) as `hostNames` on the test internet, with `files` under /tmp. */
async function startStandIn(
  engine: DockerEngine,
  internet: TestInternet,
  options: { name: string; program: string; hostNames: string[]; env?: string[]; files?: Record<string, Buffer | string> },
): Promise<StandIn> {
  const { keyPem, certPem } = internet.issueCertificate(options.hostNames);
  const pack = tarStream.pack();
  const entries: Record<string, Buffer | string> = { ...options.files };
  for (const file of ['standInHttp.js', `${options.program}.js`]) entries[`standins/${file}`] = fs.readFileSync(path.join(STAND_IN_PROGRAMS, file));
  const directories = new Set<string>();
  for (const [name, content] of Object.entries(entries)) {
    for (let dir = path.posix.dirname(name); dir !== '.' && !directories.has(dir); dir = path.posix.dirname(dir)) directories.add(dir);
    pack.entry({ name, mode: 0o644 }, content);
  }
  for (const dir of directories) pack.entry({ name: `${dir}/`, type: 'directory', mode: 0o755 });
  pack.finalize();
  const containerId = await internet.runOnNetwork(options.name, ['node', `/tmp/standins/${options.program}.js`], {
    env: [`TLS_KEY=${keyPem}`, `TLS_CERT=${certPem}`, ...(options.env ?? [])],
    aliases: options.hostNames,
    archive: pack as unknown as Readable,
  });
  await waitUntilListening(engine, containerId);
  return {
    containerId,
    requests: async <T extends RecordedRequest>() => {
      const log = await engine.call('reading a stand-in log', (d) => d.getContainer(containerId).logs({ stdout: true, stderr: false }));
      return stdoutOf(log as unknown as Buffer)
        .split('\n')
        .filter((line) => line.startsWith(REQUEST_LINE_PREFIX))
        .map((line) => JSON.parse(line.slice(REQUEST_LINE_PREFIX.length)) as T);
    },
  };
}

/** The name the Messages API stand-in answers to; create the internet without it (`createTestInternet`'s `withoutNames`). */
export const MESSAGES_API_HOST = 'api.anthropic.com';

/** The Messages API stand-in as api.anthropic.com, playing `script` (see test/standIns/messagesApiServer.ts). */
export async function startMessagesApi(
  engine: DockerEngine,
  internet: TestInternet,
  script: ScriptedTurn[],
): Promise<StandIn & { conversation(): Promise<RecordedMessagesRequest[]> }> {
  const standIn = await startStandIn(engine, internet, {
    name: 'anthropic-api',
    program: 'messagesApiServer',
    hostNames: [MESSAGES_API_HOST],
    env: [`STAND_IN_SCRIPT=${JSON.stringify(script)}`],
  });
  return { ...standIn, conversation: () => standIn.requests<RecordedMessagesRequest>() };
}

/** A real published package: its tarball, as npm's cache holds it, and the lockfile entry that pins it. */
export interface RealPackage {
  name: string;
  version: string;
  tarball: Buffer;
  integrity: string;
}

/**
 * Takes `name` at the version this repository's own lockfile pins, from npm's cache (`npm pack --offline`: no
 * network; `npm ci` of this repository put it there), so the bytes are those the real registry serves.
 */
export function realPackageFromCache(name: string): RealPackage {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version: string; integrity: string }>;
  };
  const pinned = lock.packages[`node_modules/${name}`];
  if (!pinned) throw new Error(`${name} is not in this repository's package-lock.json`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'as-real-package-'));
  try {
    let packed: { filename: string; integrity: string }[];
    try {
      packed = JSON.parse(
        execFileSync('npm', ['pack', `${name}@${pinned.version}`, '--offline', '--json', '--pack-destination', dir], {
          cwd: dir,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      ) as typeof packed;
    } catch (error) {
      throw new Error(`${name}@${pinned.version} is not in npm's cache (run \`npm ci\` in the repository first): ${(error as Error).message}`);
    }
    const tarball = fs.readFileSync(path.join(dir, packed[0]!.filename));
    if (packed[0]!.integrity !== pinned.integrity)
      throw new Error(`npm's cache holds ${name}@${pinned.version} with integrity ${packed[0]!.integrity}, the lockfile says ${pinned.integrity}`);
    return { name, version: pinned.version, tarball, integrity: pinned.integrity };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The npm registry stand-in as registry.npmjs.org, serving `pkg` (its document and its tarball). */
export async function startNpmRegistry(engine: DockerEngine, internet: TestInternet, pkg: RealPackage): Promise<StandIn> {
  const tarballName = `${pkg.name}-${pkg.version}.tgz`;
  const document = {
    name: pkg.name,
    'dist-tags': { latest: pkg.version },
    versions: {
      [pkg.version]: {
        name: pkg.name,
        version: pkg.version,
        dist: { tarball: `https://registry.npmjs.org/${pkg.name}/-/${tarballName}`, integrity: pkg.integrity },
      },
    },
  };
  return startStandIn(engine, internet, {
    name: 'npm-registry',
    program: 'npmRegistryServer',
    hostNames: ['registry.npmjs.org'],
    files: { [`registry/${pkg.name}/index.json`]: JSON.stringify(document), [`registry/${pkg.name}/-/${tarballName}`]: pkg.tarball },
  });
}

/** A project's package.json and package-lock.json (version 3) that pin exactly `pkg`, as `npm install` writes them. */
export function lockedProject(pkg: RealPackage): Record<string, string> {
  const manifest = { name: 'locked-project', version: '1.0.0', private: true, dependencies: { [pkg.name]: pkg.version } };
  const lock = {
    name: manifest.name,
    version: manifest.version,
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: manifest.name, version: manifest.version, dependencies: manifest.dependencies },
      [`node_modules/${pkg.name}`]: {
        version: pkg.version,
        resolved: `https://registry.npmjs.org/${pkg.name}/-/${pkg.name}-${pkg.version}.tgz`,
        integrity: pkg.integrity,
      },
    },
  };
  return { 'package.json': `${JSON.stringify(manifest, null, 2)}\n`, 'package-lock.json': `${JSON.stringify(lock, null, 2)}\n` };
}

/** The workspace file the scripted conversation reads and edits, before and after. */
export const GREETING_FILE = 'greeting.md';
export const GREETING_BEFORE = '# Greeting\n\nHello from the workspace.\n';
export const GREETING_AFTER = '# Greeting\n\nHello from Claude Code, edited in the box.\n';
/** The file the conversation's Bash call writes, and what it holds (the box user, in the workspace). */
export const RAN_FILE = 'ran.txt';
export const RAN_TEXT = 'ran as uid 1000 in /workspace';
/** The conversation's last words, which `claude -p` prints. */
export const CLAUDE_FINAL_TEXT = `Done: ${GREETING_FILE} edited and ${RAN_FILE} written.`;

/**
 * The Bash call's command: it marks that it runs (`/tmp/tool-running`), waits until the test has looked into the
 * box (`/tmp/scan-done`, at most a minute), then writes `RAN_FILE`. The CLI is alive all that time.
 */
const WAITING_COMMAND = `touch /tmp/tool-running; for i in $(seq 600); do [ -e /tmp/scan-done ] && break; sleep 0.1; done; echo "ran as uid $(id -u) in $(pwd)" > ${RAN_FILE} && cat ${RAN_FILE}`;

/** What the stand-in model asks Claude Code to do: read and edit a file, run a command, then report. */
export const CLAUDE_SCRIPT: ScriptedTurn[] = [
  { tool: { name: 'Read', input: { file_path: `/workspace/${GREETING_FILE}` } } },
  {
    tool: {
      name: 'Edit',
      input: {
        file_path: `/workspace/${GREETING_FILE}`,
        old_string: 'Hello from the workspace.',
        new_string: 'Hello from Claude Code, edited in the box.',
      },
    },
  },
  { tool: { name: 'Bash', input: { command: WAITING_COMMAND, description: 'Record who ran and where' } } },
  { text: CLAUDE_FINAL_TEXT },
];

/** The CLI's command line, prompts off; the stand-in does not read the prompt, the CLI sends it. */
export const CLAUDE_COMMAND = `claude -p "Greet from the box in ${GREETING_FILE}, then record who ran you in ${RAN_FILE}." --dangerously-skip-permissions`;
