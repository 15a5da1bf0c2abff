import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type * as Dockerode from 'dockerode';
import * as tarStream from 'tar-stream';
import {
  buildImageReport,
  executableAt,
  isPinnedByDigest,
  readImageTree,
  resolveInTree,
  toolAt,
  toolKindOfContent,
} from '../../../src/core/docker/imageReport';
import { summarizeImageReport } from '../../../src/core/docker/imageReportText';
import { decidePin, ImageStore } from '../../../src/core/docker/imageStore';
import { registryAuthError, registryOf } from '../../../src/core/docker/dockerEngine';
import { keepAliveProgram, staticElf } from '../../../src/core/box/shellless';
import { SandboxError } from '../../../src/core/errors';

type Entry = {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  mode?: number;
  linkname?: string;
  uid?: number;
  gid?: number;
  content?: Buffer | string;
};

/** A tar of the entries, fed in chunks of `chunkSize` bytes (so a file's content arrives split). */
async function tarOf(entries: Entry[], chunkSize = 1000): Promise<Readable> {
  const pack = tarStream.pack();
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? 'file', mode: e.mode ?? 0o644, linkname: e.linkname, uid: e.uid ?? 0, gid: e.gid ?? 0 };
    if (e.content !== undefined) pack.entry(header, e.content);
    else pack.entry(header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  const all = Buffer.concat(chunks);
  const pieces: Buffer[] = [];
  for (let i = 0; i < all.length; i += chunkSize) pieces.push(all.subarray(i, i + chunkSize));
  return Readable.from(pieces, { objectMode: false });
}

/** Content with `marker` at `offset` (e.g. across a chunk boundary). */
function binaryWith(marker: string, offset: number, size = 4096): Buffer {
  const content = Buffer.alloc(size, 0x7f);
  content.write(marker, offset);
  return content;
}

const inspect = (overrides: Partial<Dockerode.ImageInspectInfo> = {}) =>
  ({
    Id: `sha256:${'a'.repeat(64)}`,
    RepoDigests: [],
    Size: 5 * 1024 * 1024,
    Created: '2026-11-30T10:00:00Z',
    Os: 'linux',
    Architecture: 'amd64',
    Config: { User: 'nonroot' },
    ...overrides,
  }) as unknown as Dockerode.ImageInspectInfo;

suite('unit: image report from an image file-system tar', () => {
  test('a marker split across two chunks of a binary is found', async () => {
    const split = (text: string, at: number) => Readable.from([Buffer.from(text.slice(0, at)), Buffer.from(text.slice(at))], { objectMode: false });
    assert.equal(await toolKindOfContent(split('\x7fELF...find (GNU findutils) 4.9', 16), 'find'), 'gnu');
    assert.equal(await toolKindOfContent(split('\x7fELF...BusyBox v1.36', 10), 'busybox'), 'busybox');
    assert.equal(await toolKindOfContent(split('\x7fELF...GNU tar', 12), 'find'), 'other', "GNU tar's marker does not make a find GNU");
  });

  test('a busybox-style tree: /bin/sh and find are links to busybox, tar a hard link to it', async () => {
    const tree = await readImageTree(
      await tarOf([
        { name: 'bin/', type: 'directory', mode: 0o755 },
        { name: 'bin/busybox', mode: 0o755, content: binaryWith('BusyBox v1.36', 482) },
        { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
        { name: 'usr/bin/find', type: 'symlink', linkname: '/bin/busybox' },
        { name: 'bin/tar', type: 'link', linkname: 'bin/busybox' },
      ]),
    );
    assert.equal(executableAt(tree, '/bin/sh'), true);
    assert.equal(toolAt(tree, ['/usr/bin/find', '/bin/find']), 'busybox');
    assert.equal(toolAt(tree, ['/usr/bin/tar', '/bin/tar']), 'busybox');
    assert.equal(tree.entries, 5);
  });

  test('a Debian-style tree (usrmerge): /bin is a link to usr/bin, sh to dash, GNU find and tar by their own markers', async () => {
    const tree = await readImageTree(
      await tarOf([
        { name: './bin', type: 'symlink', linkname: 'usr/bin' },
        { name: './usr/bin/dash', mode: 0o755, content: 'ELF dash' },
        { name: './usr/bin/sh', type: 'symlink', linkname: 'dash' },
        { name: './usr/bin/find', mode: 0o755, content: binaryWith('find (GNU findutils) 4.9.0', 100) },
        { name: './usr/bin/tar', mode: 0o755, content: binaryWith('tar (GNU tar) 1.35', 3000) },
      ]),
    );
    assert.equal(resolveInTree(tree, '/bin/sh'), 'usr/bin/dash');
    assert.equal(executableAt(tree, '/bin/sh'), true);
    assert.equal(toolAt(tree, ['/usr/bin/find', '/bin/find']), 'gnu');
    assert.equal(toolAt(tree, ['/bin/tar']), 'gnu');
  });

  test('no shell: /bin/sh missing, or not executable, or a dangling or looping link; an unknown find is "other"', async () => {
    const tree = await readImageTree(
      await tarOf([
        { name: 'usr/bin/hello', mode: 0o755, content: 'ELF' },
        { name: 'usr/bin/find', mode: 0o755, content: 'some other find' },
        { name: 'bin/sh', mode: 0o644, content: '#!' },
        { name: 'loop/a', type: 'symlink', linkname: 'b' },
        { name: 'loop/b', type: 'symlink', linkname: 'a' },
      ]),
    );
    assert.equal(executableAt(tree, '/bin/sh'), false, 'a /bin/sh without an execute bit is no shell');
    assert.equal(resolveInTree(tree, '/loop/a'), undefined);
    assert.equal(toolAt(tree, ['/usr/bin/find']), 'other');
    assert.equal(toolAt(tree, ['/usr/bin/tar', '/bin/tar']), 'none');
    const empty = await readImageTree(await tarOf([{ name: 'usr/bin/hello', mode: 0o755, content: 'ELF' }]));
    assert.equal(executableAt(empty, '/bin/sh'), false);
  });

  test('setuid and setgid regular files are listed with mode and owner; a setgid directory is not', async () => {
    const tree = await readImageTree(
      await tarOf([
        { name: 'usr/bin/passwd', mode: 0o4755, uid: 0, gid: 0, content: 'x' },
        { name: 'usr/bin/wall', mode: 0o2755, uid: 0, gid: 5, content: 'x' },
        { name: 'usr/bin/plain', mode: 0o755, content: 'x' },
        { name: 'var/mail/', type: 'directory', mode: 0o2775 },
      ]),
    );
    assert.deepEqual(tree.setuid, ['/usr/bin/passwd 4755 0:0', '/usr/bin/wall 2755 0:5']);
    assert.equal(tree.setuidCount, 2);
  });

  test('the report: inspect data plus the tree, and the collect path the session will take', async () => {
    const tree = await readImageTree(
      await tarOf([
        { name: 'bin/sh', mode: 0o755, content: 'sh' },
        { name: 'usr/bin/find', mode: 0o755, content: binaryWith('GNU findutils', 10) },
        { name: 'usr/bin/tar', mode: 0o755, content: binaryWith('GNU tar', 10) },
      ]),
    );
    const report = buildImageReport('node:22', inspect({ RepoDigests: [`node@sha256:${'b'.repeat(64)}`] }), tree, 42);
    assert.equal(report.hasShell, true);
    assert.equal(report.collectPath, "a GNU find listing, then changed files through the image's tar");
    assert.equal(report.platform, 'linux/amd64');
    assert.equal(report.user, 'nonroot');
    assert.equal(report.pinnedByDigest, false);
    assert.equal(report.inspectedAt, 42);
    assert.equal(
      summarizeImageReport(report),
      'sha256:bbbbbbbbbbbb, 5.0 MB, linux/amd64, built 2026-11-30, user nonroot, /bin/sh, find gnu, tar gnu, no setuid/setgid files, reference is a tag',
    );
    const shellLess = buildImageReport(`app@sha256:${'c'.repeat(64)}`, inspect({ Config: {} as never }), await readImageTree(await tarOf([])));
    assert.equal(shellLess.hasShell, false);
    assert.match(shellLess.collectPath, /no \/bin\/sh/);
    assert.equal(shellLess.pinnedByDigest, true);
    assert.match(summarizeImageReport(shellLess), /local id, no registry digest.*user root \(unset\).*no shell.*reference pinned by digest/);
  });

  test('digest references', () => {
    assert.equal(isPinnedByDigest(`ghcr.io/o/i@sha256:${'d'.repeat(64)}`), true);
    assert.equal(isPinnedByDigest(`ghcr.io/o/i:1@sha256:${'d'.repeat(64)}`), true);
    assert.equal(isPinnedByDigest(`sha256:${'d'.repeat(64)}`), true);
    assert.equal(isPinnedByDigest('node:22-bookworm'), false);
    assert.equal(isPinnedByDigest('localhost:5000/sha256'), false);
  });
});

suite('unit: image pinning', () => {
  const [a, b] = [`sha256:${'1'.repeat(64)}`, `sha256:${'2'.repeat(64)}`];

  test('first use pins, a moved tag keeps the pin and says where the tag went, unpinned follows', () => {
    assert.deepEqual(decidePin('img:1', a, undefined, true), { use: 'current', pin: a });
    assert.deepEqual(decidePin('img:1', a, a, true), { use: 'pinned', id: a });
    assert.deepEqual(decidePin('img:1', b, a, true), { use: 'pinned', id: a, movedTo: b });
    assert.deepEqual(decidePin('img:1', undefined, a, true), { use: 'pinned', id: a }, 'a tag removed since keeps the pin');
    assert.deepEqual(decidePin('img:1', b, a, false), { use: 'current' });
    assert.deepEqual(decidePin('img:1', undefined, undefined, true), { use: 'missing' });
    assert.deepEqual(decidePin(`img@sha256:${'3'.repeat(64)}`, b, undefined, true), { use: 'current' }, 'a digest reference is its own pin');
  });

  test('pins persist in the storage directory and can be forgotten', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'image-store-'));
    try {
      await new ImageStore(dir).setPin('img:1', a);
      assert.equal(await new ImageStore(dir).pinned('img:1'), a);
      const store = new ImageStore(dir);
      await store.setPin('img:1', undefined);
      assert.equal(await new ImageStore(dir).pinned('img:1'), undefined);
      // Without a directory: memory only.
      const memory = new ImageStore();
      await memory.setPin('img:1', b);
      assert.equal(await memory.pinned('img:1'), b);
      assert.equal(await new ImageStore().pinned('img:1'), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

suite('unit: registry credentials errors', () => {
  test('the registry of a reference', () => {
    assert.equal(registryOf('node:22'), 'docker.io');
    assert.equal(registryOf('library/node:22'), 'docker.io');
    assert.equal(registryOf('dhi.io/node:22'), 'dhi.io');
    assert.equal(registryOf('localhost:5000/app'), 'localhost:5000');
    assert.equal(registryOf('ghcr.io/org/app@sha256:abc'), 'ghcr.io');
  });

  test('an auth refusal names docker login for that registry; other failures are left as they are', () => {
    const refused = new SandboxError('engine-error', 'Pulling image dhi.io/node:22 failed: unauthorized: authentication required');
    const error = registryAuthError('dhi.io/node:22', refused);
    assert.ok(error);
    assert.match(error.message, /refused by dhi\.io.*`docker login dhi\.io`/);
    const denied = Object.assign(new Error('(HTTP code 404) unexpected'), {
      statusCode: 404,
      json: { message: "pull access denied for private/app, repository does not exist or may require 'docker login'" },
    });
    assert.match(registryAuthError('private/app', denied)?.message ?? '', /`docker login docker\.io`/);
    assert.equal(
      registryAuthError('node:22', new SandboxError('engine-error', 'Pulling image node:22 failed: filesystem layer verification failed')),
      undefined,
    );
    assert.equal(registryAuthError('node:22', new SandboxError('cancelled', 'unauthorized was cancelled')), undefined);
  });
});

suite('unit: the keep-alive of a shell-less box', () => {
  test('a valid static ELF64 executable for x86-64', () => {
    const elf = staticElf(Buffer.from([0xc3]), 0x3e);
    assert.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
    assert.equal(elf.readUInt16LE(18), 0x3e);
    assert.equal(elf.readBigUInt64LE(24), 0x400078n, 'entry right after the headers');
    assert.equal(elf.length, 121);
    assert.throws(
      () => keepAliveProgram('arm64', 'img:1'),
      (error: SandboxError) => error.reason === 'no-shell' && /-dev tag/.test(error.message),
    );
  });

  test('runs, ignores the signals a box process could send it, and dies only by SIGKILL', async function () {
    if (process.platform !== 'linux' || process.arch !== 'x64') this.skip();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keepalive-'));
    try {
      const file = path.join(dir, 'keepalive');
      await fs.writeFile(file, keepAliveProgram('amd64', 'test'), { mode: 0o755 });
      const child = spawn(file, [], { stdio: 'ignore' });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
      await new Promise((r) => setTimeout(r, 200));
      for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGPIPE', 'SIGALRM'] as const) child.kill(signal);
      const early = await Promise.race([exited, new Promise((r) => setTimeout(() => r('alive'), 300))]);
      assert.equal(early, 'alive', 'the keep-alive survived the polite signals');
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
