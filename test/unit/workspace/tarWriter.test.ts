import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { lstatSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeRecyclingChunks, recycleTarChunk, spareTarChunks, TarWriter, type TarMember } from '../../../src/core/workspace/tarWriter';
import { makeTempDir, readTar, removeDir } from '../../builders/trees';

const MTIME = new Date('2024-05-01T10:00:00Z');
const LONG_DIR = `${'deep-directory-'.repeat(8)}é`;
const LONG_FILE = `${'ü'.repeat(60)}.txt`;

function members(): { member: TarMember; content?: Buffer }[] {
  const base = { uid: 1000, gid: 1001, mtime: MTIME };
  return [
    { member: { ...base, name: 'dir', type: 'directory', mode: 0o755 } },
    { member: { ...base, name: 'dir/plain.txt', type: 'file', mode: 0o644 }, content: Buffer.from('plain\n') },
    { member: { ...base, name: 'locked', type: 'file', mode: 0 }, content: Buffer.from('locked\n') },
    { member: { ...base, name: 'sticky', type: 'directory', mode: 0o1777 } },
    { member: { ...base, name: 'empty', type: 'file', mode: 0o600 }, content: Buffer.alloc(0) },
    { member: { ...base, name: 'block', type: 'file', mode: 0o640 }, content: Buffer.alloc(1024, 7) },
    // Fits ustar only split into prefix and name.
    { member: { ...base, name: `${'p'.repeat(120)}`, type: 'directory', mode: 0o700 } },
    { member: { ...base, name: `${'p'.repeat(120)}/short.txt`, type: 'file', mode: 0o644 }, content: Buffer.from('split\n') },
    // Needs a pax path (a 150-byte last component cannot be split) and a pax linkpath.
    { member: { ...base, name: LONG_DIR, type: 'directory', mode: 0o755 } },
    { member: { ...base, name: `${LONG_DIR}/${LONG_FILE}`, type: 'file', mode: 0o755 }, content: Buffer.from('long name\n') },
    { member: { ...base, name: `n${'x'.repeat(150)}`, type: 'file', mode: 0o644 }, content: Buffer.from('x') },
    { member: { ...base, name: 'link', type: 'symlink', mode: 0o777, linkname: `../outside/${'l'.repeat(150)}` } },
    { member: { ...base, name: 'odd \\ name\nwith newline', type: 'file', mode: 0o644 }, content: Buffer.from('odd') },
  ];
}

async function written(list = members()): Promise<Buffer> {
  const writer = new TarWriter();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of writer.readable) chunks.push(chunk as Buffer);
  })();
  for (const { member, content } of list) await writer.member({ ...member, size: content?.length }, content);
  writer.finish();
  await done;
  return Buffer.concat(chunks);
}

suite('TarWriter', () => {
  let root: string;
  setup(async () => {
    root = await makeTempDir('tar-writer');
  });
  teardown(async () => {
    await removeDir(root);
  });

  test('tar-stream reads back every name, type, mode (0 too), owner, mtime, link target and content', async () => {
    const list = members();
    const read = await readTar(Readable.from([await written(list)]));
    assert.equal(read.length, list.length);
    for (const [i, { member, content }] of list.entries()) {
      const { header, content: got } = read[i];
      assert.equal(header.name.replace(/\/$/, ''), member.name);
      assert.equal(header.type, member.type);
      assert.equal(header.mode, member.mode, member.name);
      assert.equal(header.uid, 1000);
      assert.equal(header.gid, 1001);
      assert.equal(header.mtime?.getTime(), MTIME.getTime());
      if (member.type === 'symlink') assert.equal(header.linkname, member.linkname);
      assert.deepEqual(got, content ?? Buffer.alloc(0), member.name);
    }
  });

  test('GNU tar extracts it without a warning, with the same names, modes, mtimes and contents', async () => {
    const archive = path.join(root, 'a.tar');
    writeFileSync(archive, await written());
    const out = path.join(root, 'out');
    execFileSync('mkdir', [out]);
    // stderr is piped: any warning (a bad checksum, an unknown pax key) fails the test.
    const stderr = execFileSync('tar', ['-xpf', archive, '-C', out], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    assert.equal(stderr, '');
    for (const { member, content } of members()) {
      const at = path.join(out, ...member.name.split('/'));
      const stat = lstatSync(at);
      if (member.type === 'symlink') {
        assert.equal(readlinkSync(at), member.linkname);
        continue;
      }
      assert.equal(stat.mode & 0o7777, member.mode, member.name);
      assert.equal(stat.mtimeMs, MTIME.getTime(), member.name);
      if (member.type === 'file') assert.deepEqual(readFileSync(at), content);
    }
  });

  test('large output arrives in chunks of at least 256 KiB, and waits for a slow reader', async () => {
    const writer = new TarWriter();
    let written = 0;
    const producing = (async () => {
      for (let i = 0; i < 400; i++) {
        await writer.member({ name: `f${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: MTIME, size: 9000 }, Buffer.alloc(9000, i));
        written = i + 1;
      }
      writer.finish();
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Nobody reads yet: the writer stops after filling the stream's buffer, long before 400 files.
    assert.ok(written > 0 && written < 200, `wrote ${written} members with no reader`);
    const sizes: number[] = [];
    for await (const chunk of writer.readable) sizes.push((chunk as Buffer).length);
    await producing;
    assert.equal(written, 400);
    assert.ok(
      sizes.slice(0, -1).every((n) => n >= 256 * 1024),
      `chunk sizes ${sizes.join(',')}`,
    );
  });

  /** Streams 300 files of 32 KiB (~10 MiB); `consume` sees each chunk and says whether it hands it back. */
  async function stream(consume: (chunk: Buffer) => boolean): Promise<{ bytes: Buffer; buffers: Set<ArrayBufferLike> }> {
    const writer = new TarWriter();
    const copies: Buffer[] = [];
    const buffers = new Set<ArrayBufferLike>();
    // Flowing mode, as `pipe` reads (an async iterator's `read()` may join chunks into new buffers).
    const reading = new Promise<void>((resolve, reject) => {
      writer.readable.on('data', (buffer: Buffer) => {
        buffers.add(buffer.buffer);
        // What a socket does before its write callback: the bytes are copied out.
        copies.push(Buffer.from(buffer));
        if (consume(buffer)) recycleTarChunk(buffer);
      });
      writer.readable.on('end', resolve);
      writer.readable.on('error', reject);
    });
    for (let i = 0; i < 300; i++) {
      const content = Buffer.alloc(32 * 1024, i % 251);
      await writer.member({ name: `f${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: MTIME, size: content.length }, content);
    }
    writer.finish();
    await reading;
    return { bytes: Buffer.concat(copies), buffers };
  }

  test('chunks handed back once written are reused, and the stream is byte for byte what it is without that', async () => {
    const kept = await stream(() => false);
    const recycled = await stream(() => true);
    assert.ok(kept.buffers.size > 30, `without handing back, each chunk is new (${kept.buffers.size})`);
    assert.ok(recycled.buffers.size < 10, `handed back, a few chunks serve the whole stream (${recycled.buffers.size})`);
    assert.ok(recycled.bytes.equals(kept.bytes), 'the same tar either way');
    const files = (await readTar(Readable.from([recycled.bytes]))).filter((m) => m.header.type === 'file');
    assert.equal(files.length, 300);
    assert.ok(
      files.every((m, i) => m.content.equals(Buffer.alloc(32 * 1024, i % 251))),
      'every file has its own content',
    );
    assert.ok(spareTarChunks() <= 32, 'spares are bounded');
  });

  test('a chunk handed back twice, or a buffer that is no chunk, never becomes a spare twice', async () => {
    let first: Buffer | undefined;
    await stream((chunk) => {
      first ??= chunk;
      return false;
    });
    const before = spareTarChunks();
    recycleTarChunk(first!);
    recycleTarChunk(first!);
    recycleTarChunk(Buffer.alloc(256 * 1024));
    recycleTarChunk(Buffer.allocUnsafeSlow(256 * 1024));
    assert.equal(spareTarChunks(), Math.min(before + 1, 32));
    // Two chunks taken next are distinct buffers even though one was handed back twice.
    const seen: Buffer[] = [];
    await stream((chunk) => (seen.push(chunk), false));
    assert.ok(seen.length > 2 && seen[0].buffer !== seen[1].buffer);
  });

  test('through a real socket with a slow reader, chunks handed back by the write callbacks never change bytes in flight', async () => {
    const contents = Array.from({ length: 160 }, (_, i) => randomBytes(100 * 1024 + i));
    const produce = async (writer: TarWriter) => {
      for (const [i, content] of contents.entries()) {
        await writer.member({ name: `f${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: MTIME, size: content.length }, content);
      }
      writer.finish();
    };
    // The expected bytes, from a writer whose chunks are never handed back.
    const plain = new TarWriter();
    const expected = createHash('sha256');
    const plainDone = new Promise<void>((resolve) => {
      plain.readable.on('data', (chunk: Buffer) => expected.update(chunk));
      plain.readable.on('end', resolve);
    });
    await produce(plain);
    await plainDone;

    const socketPath = path.join(root, 's.sock');
    const received = createHash('sha256');
    let receivedBytes = 0;
    const server = net.createServer((connection) => {
      // A slow reader: the writer's side fills up and waits for 'drain' again and again.
      connection.on('data', (data: Buffer) => {
        received.update(data);
        receivedBytes += data.length;
        connection.pause();
        setTimeout(() => connection.resume(), 1);
      });
      connection.on('end', () => server.emit('done'));
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      const done = new Promise<void>((resolve) => server.once('done', resolve));
      const socket = net.connect(socketPath);
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      const writer = new TarWriter();
      const buffers = new Set<ArrayBufferLike>();
      writer.readable.on('data', (chunk: Buffer) => buffers.add(chunk.buffer));
      pipeRecyclingChunks(writer.readable, socket);
      await produce(writer);
      await done;
      socket.destroy();
      assert.ok(receivedBytes > 15 * 1024 * 1024, `${receivedBytes} bytes`);
      assert.equal(received.digest('hex'), expected.digest('hex'), 'the socket got exactly the tar');
      assert.ok(buffers.size < 40, `chunks were reused (${buffers.size} buffers for ${Math.round(receivedBytes / 262144)} chunks)`);
    } finally {
      server.close();
    }
  });
});
