import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';

/** Test helpers: real temp directories and real tar streams. */

export async function makeTempDir(label: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `agent-sandbox-${label}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}

/** Writes files (string content) and directories (value `null`) below `root`. */
export async function writeTree(root: string, tree: Record<string, string | Buffer | null>): Promise<void> {
  for (const [relPath, content] of Object.entries(tree)) {
    const absolute = path.join(root, ...relPath.split('/'));
    if (content === null) {
      await fs.mkdir(absolute, { recursive: true });
    } else {
      await fs.mkdir(path.dirname(absolute), { recursive: true });
      await fs.writeFile(absolute, content);
    }
  }
}

export type TarEntrySpec = Partial<tar.Header> & { name: string; content?: string | Buffer };

/** A real tar stream (tar-stream pack) holding the given entries, in order. */
export function tarStream(entries: TarEntrySpec[]): Readable {
  const pack = tar.pack();
  void (async () => {
    for (const { content, ...header } of entries) {
      const body = content === undefined ? undefined : Buffer.from(content);
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry({ mode: header.type === 'directory' ? 0o755 : 0o644, ...header, size: body?.length ?? 0 }, (error) =>
          error ? reject(error) : resolve(),
        );
        if (body !== undefined && body.length > 0) {
          sink.write(body);
        }
        sink.end(undefined);
      });
    }
    pack.finalize();
  })();
  return Readable.from(pack, { objectMode: false });
}

/** Every entry of a tar stream with its body, via tar-stream's extract. */
export async function readTar(stream: Readable): Promise<{ header: tar.Header; content: Buffer }[]> {
  const extract = tar.extract();
  stream.once('error', (error) => extract.destroy(error));
  stream.pipe(extract as unknown as NodeJS.WritableStream);
  const result: { header: tar.Header; content: Buffer }[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) {
      chunks.push(chunk as Buffer);
    }
    result.push({ header: entry.header, content: Buffer.concat(chunks) });
  }
  return result;
}

/**
 * Runs the host's git in a test repository with a fixed identity and dates and no user or system config, so
 * fixtures are the same on every machine. Returns stdout.
 */
export function hostGit(cwd: string, ...args: string[]): string {
  return execFileSync(
    'git',
    ['-c', 'user.name=Ada Lovelace', '-c', 'user.email=ada@example.com', '-c', 'commit.gpgsign=false', '-c', 'init.defaultBranch=main', ...args],
    {
      cwd,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_AUTHOR_DATE: '1700000000 +0100',
        GIT_COMMITTER_DATE: '1700000000 +0100',
      },
    },
  );
}

/**
 * Credential files that reached the box before issue 11 (the deny-list's newer entries), in the spellings a
 * repository has them: the unit test checks the deny-list matches each, the security tier that none enters a box.
 */
export const CREDENTIAL_FILE_SAMPLES: readonly string[] = [
  '.vault-token',
  'infra/prod.tfvars',
  'infra/terraform.tfvars.json',
  'terraform.tfstate',
  'infra/terraform.tfstate.backup',
  'kubeconfig',
  'deploy/kubeconfig.yaml',
  'gcp/service-account.json',
  'gcp/my-service-account-key.json',
  '.boto',
  '.s3cfg',
  'config/secrets.yml',
  'secrets.yaml',
];
