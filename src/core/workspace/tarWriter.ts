import { Readable, type Writable } from 'node:stream';

/** One tar member's header as `TarWriter` writes it (POSIX ustar, with a pax record for what ustar cannot hold). */
export interface TarMember {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  /** Permission bits written as given (0 stays 0). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds are kept. */
  mtime: Date;
  /** Files only. */
  size?: number;
  /** Symlinks only. */
  linkname?: string;
}

const BLOCK = 512;
/** Output is handed on in chunks of about this size: one socket write per chunk, not three per member. */
const CHUNK_BYTES = 256 * 1024;
/** Octal fields of 12 bytes hold 11 digits: files from 8 GiB on carry their size in a pax record. */
const USTAR_SIZE_LIMIT = 8 ** 11;
const ZEROS = Buffer.alloc(BLOCK * 2);
const TYPEFLAG = { file: '0', directory: '5', symlink: '2' } as const;

/**
 * Writes a tar stream member by member into a Node `Readable` with backpressure: `await writer.member(...)`
 * resolves once the output has room again. It builds the bytes itself (tar-stream's per-member stream costs
 * about as much CPU as reading a small file, and hands the socket three small writes per member).
 */
export class TarWriter {
  readonly readable: Readable;
  /** The chunk being filled and how much of it is. */
  private current: Buffer | undefined;
  private used = 0;
  /** The readable said it is full: wait for it to ask for more before writing on. */
  private full = false;
  private resume: (() => void) | undefined;

  /** `bufferBytes`: how much output may wait for a reader (at least two chunks). */
  constructor(bufferBytes = 0) {
    this.readable = new Readable({
      highWaterMark: Math.max(CHUNK_BYTES * 2, bufferBytes),
      read: () => {
        const resume = this.resume;
        this.resume = undefined;
        resume?.();
      },
    });
  }

  get destroyed(): boolean {
    return this.readable.destroyed;
  }

  /** Writes a member's header and, for a file, its whole content (`size` must equal its length). */
  async member(member: TarMember, content?: Buffer): Promise<void> {
    this.header(member);
    if (content !== undefined && content.length > 0) {
      await this.body(content);
      await this.endBody(content.length);
    } else {
      await this.flushIfFull();
    }
  }

  /** Writes a header only; a file's content follows through `body`, then `endBody` with its total size. */
  header(member: TarMember): void {
    const name = member.type === 'directory' && !member.name.endsWith('/') ? `${member.name}/` : member.name;
    const size = member.type === 'file' ? (member.size ?? 0) : 0;
    const pax: [string, string][] = [];
    const split = splitName(name);
    if (split === undefined) pax.push(['path', name]);
    const linkname = member.linkname ?? '';
    if (Buffer.byteLength(linkname) > 100) pax.push(['linkpath', linkname]);
    if (size >= USTAR_SIZE_LIMIT) pax.push(['size', String(size)]);
    if (pax.length > 0) {
      const records = Buffer.concat(pax.map(([key, value]) => paxRecord(key, value)));
      this.push(
        encodeHeader({
          name: 'PaxHeader',
          prefix: '',
          typeflag: 'x',
          mode: 0o644,
          uid: 0,
          gid: 0,
          size: records.length,
          mtime: member.mtime,
          linkname: '',
        }),
      );
      this.push(records);
      this.pad(records.length);
    }
    this.push(
      encodeHeader({
        // Cut at 100 bytes by the write when a pax record carries the whole (readers take the pax one).
        name: split?.name ?? name,
        prefix: split?.prefix ?? '',
        typeflag: TYPEFLAG[member.type],
        mode: member.mode,
        uid: member.uid,
        gid: member.gid,
        size: size >= USTAR_SIZE_LIMIT ? 0 : size,
        mtime: member.mtime,
        linkname,
      }),
    );
  }

  /** Part of the current file's content. */
  async body(chunk: Buffer): Promise<void> {
    this.push(chunk);
    await this.flushIfFull();
  }

  /** Pads the current file's content of `size` bytes to whole blocks. */
  async endBody(size: number): Promise<void> {
    this.pad(size);
    await this.flushIfFull();
  }

  /** Writes the end-of-archive blocks and ends the stream. */
  finish(): void {
    this.push(ZEROS);
    this.flush();
    if (!this.readable.destroyed) this.readable.push(null);
  }

  destroy(error?: Error): void {
    this.readable.destroy(error);
    this.resume?.();
  }

  private pad(size: number): void {
    const rest = size % BLOCK;
    if (rest !== 0) this.push(ZEROS.subarray(0, BLOCK - rest));
  }

  /** Copies bytes into fixed-size chunks, handing each on once it is full. */
  private push(bytes: Buffer): void {
    let offset = 0;
    while (offset < bytes.length) {
      this.current ??= takeChunk();
      const copied = bytes.copy(this.current, this.used, offset);
      offset += copied;
      this.used += copied;
      if (this.used === CHUNK_BYTES) this.flush();
    }
  }

  private flush(): void {
    const chunk = this.current;
    if (chunk === undefined || this.used === 0) return;
    const used = this.used;
    this.current = undefined;
    this.used = 0;
    if (this.readable.destroyed) {
      recycleTarChunk(chunk);
      return;
    }
    if (!this.readable.push(used === CHUNK_BYTES ? chunk : chunk.subarray(0, used))) this.full = true;
  }

  private async flushIfFull(): Promise<void> {
    if (!this.full || this.readable.destroyed) return;
    this.full = false;
    await new Promise<void>((resolve) => (this.resume = resolve));
  }
}

/**
 * Output chunks are fixed-size buffers that a consumer may hand back once they are written (`recycleTarChunk`),
 * so a 500 MB mirror goes through a few dozen of them instead of leaving 2,000 dead 256 KiB buffers to the
 * garbage collector: a buffer that waited in a stream queue long enough to be promoted is freed only by a
 * full collection, and until then counts in the engine server's RSS (~40 MiB at the peak of the 50k-file
 * mirror). A chunk is taken from the spares, or made; one handed back is a spare again only if it is one
 * of these chunks and out (so handing one back twice, or one of another stream, does nothing).
 */
const spareChunks: Buffer[] = [];
const chunksOut = new WeakSet<ArrayBufferLike>();
/** Spares kept for the next streams: 8 MiB, the mirror's pack-ahead. */
const MAX_SPARE_CHUNKS = 32;

function takeChunk(): Buffer {
  const chunk = spareChunks.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
  chunksOut.add(chunk.buffer);
  return chunk;
}

/**
 * Hands a chunk read from a `TarWriter` back once nothing refers to its bytes any more (e.g. from a socket
 * write's callback). Anything else (a slice of another buffer, a chunk handed back already) is ignored.
 */
export function recycleTarChunk(chunk: Buffer): void {
  if (chunk.byteOffset !== 0 || chunk.buffer.byteLength !== CHUNK_BYTES || !chunksOut.has(chunk.buffer)) return;
  chunksOut.delete(chunk.buffer);
  if (spareChunks.length < MAX_SPARE_CHUNKS) spareChunks.push(Buffer.from(chunk.buffer, 0, CHUNK_BYTES));
}

/**
 * `source.pipe(dest)` for a tar from `TarWriter` into a socket, handing each chunk back once the socket's write
 * callback says its bytes are out (a failed write keeps it: it may still be referred to). Ends `dest` with the
 * source, like `pipe`; errors are the caller's to watch on both, as with `pipe`.
 */
export function pipeRecyclingChunks(source: Readable, dest: Writable | NodeJS.WritableStream): void {
  source.on('data', (chunk: Buffer) => {
    const more = dest.write(chunk, (error?: Error | null) => {
      if (!error) recycleTarChunk(chunk);
    });
    if (!more) {
      source.pause();
      dest.once('drain', () => source.resume());
    }
  });
  source.once('end', () => dest.end());
}

/** Spare chunks on hand (for tests). */
export function spareTarChunks(): number {
  return spareChunks.length;
}

interface RawHeader {
  name: string;
  prefix: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  linkname: string;
}

function encodeHeader(h: RawHeader): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(h.name, 0, 100, 'utf8');
  writeOctal(block, 100, 8, h.mode & 0o7777);
  writeOctal(block, 108, 8, h.uid);
  writeOctal(block, 116, 8, h.gid);
  writeOctal(block, 124, 12, h.size);
  writeOctal(block, 136, 12, Math.max(0, Math.floor(h.mtime.getTime() / 1000)));
  block.write(h.typeflag, 156, 1, 'latin1');
  block.write(h.linkname, 157, 100, 'utf8');
  block.write('ustar\u000000', 257, 8, 'latin1');
  writeOctal(block, 329, 8, 0);
  writeOctal(block, 337, 8, 0);
  block.write(h.prefix, 345, 155, 'utf8');
  // The checksum is the byte sum with its own field read as spaces: six digits, NUL, space.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i];
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return block;
}

/** `width - 1` octal digits and a NUL. */
function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, '0')}\u0000`, offset, width, 'latin1');
}

/** Splits a name into ustar's prefix (≤ 155 bytes) and name (≤ 100 bytes) at a slash; undefined if it cannot. */
function splitName(name: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  // A directory's trailing slash stays with the name part.
  for (let slash = name.indexOf('/'); slash > 0 && slash < name.length - 1; slash = name.indexOf('/', slash + 1)) {
    const prefix = name.slice(0, slash);
    const rest = name.slice(slash + 1);
    if (Buffer.byteLength(prefix) > 155) return undefined;
    if (Buffer.byteLength(rest) <= 100) return { prefix, name: rest };
  }
  return undefined;
}

/** A pax record: its own length in decimal (counting those digits), the key, the value, a newline. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyBytes = Buffer.byteLength(body);
  let length = bodyBytes + String(bodyBytes).length;
  if (String(length).length !== String(bodyBytes).length) length = bodyBytes + String(length).length;
  return Buffer.from(`${length}${body}`, 'utf8');
}
