// Generated workspaces for the benchmark: deterministic (seeded), nested folders, a realistic size mix with
// about 10% binary files. The average file is ~10 KB, so 50k files come to ~500 MB as the target says.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

/** What a generated tree holds. */
export interface GeneratedTree {
  root: string;
  /** Workspace-relative paths of the regular files, in creation order. */
  files: string[];
  bytes: number;
  binaryFiles: number;
}

/** Mulberry32: small, fast, and the same on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  'const',
  'function',
  'return',
  'import',
  'export',
  'value',
  'result',
  'options',
  'await',
  'async',
  'if',
  'else',
  'for',
  'of',
  'new',
  'this',
  'items',
  'path',
  'string',
  'number',
];
const TEXT_EXTENSIONS = ['.ts', '.js', '.json', '.md', '.css', '.html', '.py', '.txt', '.yml'];
const BINARY_EXTENSIONS = ['.png', '.woff2', '.gz', '.jpg', '.wasm'];

/**
 * Size of a text file: most are small source files, some medium, a few large (bundles, lockfiles, data).
 * Mean ≈ 10 KB.
 */
function textSize(rand: () => number): number {
  const r = rand();
  if (r < 0.6) return 200 + Math.floor(rand() * 3800); // 0.2–4 KB
  if (r < 0.92) return 4_000 + Math.floor(rand() * 12_000); // 4–16 KB
  if (r < 0.997) return 20_000 + Math.floor(rand() * 40_000); // 20–60 KB
  return 200_000 + Math.floor(rand() * 800_000); // 0.2–1 MB
}

function binarySize(rand: () => number): number {
  const r = rand();
  if (r < 0.7) return 500 + Math.floor(rand() * 15_500); // icons, fonts
  if (r < 0.99) return 16_000 + Math.floor(rand() * 48_000);
  return 200_000 + Math.floor(rand() * 200_000);
}

function textContent(rand: () => number, size: number): Buffer {
  // One random line pattern repeated with a varying counter: compressible and diff-able like source code.
  const lines: string[] = [];
  let length = 0;
  let n = 0;
  const base = Array.from({ length: 8 }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ');
  while (length < size) {
    const line = `${'  '.repeat(n % 4)}${base} ${n} ${Math.floor(rand() * 1e9).toString(36)};\n`;
    lines.push(line);
    length += line.length;
    n += 1;
  }
  return Buffer.from(lines.join('')).subarray(0, size);
}

function binaryContent(rand: () => number, size: number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) {
    buffer.writeUInt32LE(Math.floor(rand() * 4294967296), Math.min(i, size - 4));
  }
  buffer[0] = 0; // a NUL early on: every binary sniffer calls it binary
  return buffer;
}

/**
 * Writes `fileCount` files under `root`: folders nest up to four levels, 5–40 files each, like a source tree
 * with packages, modules and assets.
 */
export function generateTree(root: string, fileCount: number, seed = 42): GeneratedTree {
  const rand = seededRandom(seed + fileCount);
  mkdirSync(root, { recursive: true });
  const files: string[] = [];
  let bytes = 0;
  let binaryFiles = 0;
  const directories: string[] = [''];
  let current = '';
  let leftInDirectory = 0;
  for (let i = 0; i < fileCount; i++) {
    if (leftInDirectory === 0) {
      // New folder: under a random existing one that is not too deep.
      let parent = directories[Math.floor(rand() * directories.length)];
      if (parent.split('/').length >= 4) parent = '';
      current = parent === '' ? `pkg${directories.length}` : `${parent}/mod${directories.length}`;
      directories.push(current);
      mkdirSync(path.join(root, current), { recursive: true });
      leftInDirectory = 5 + Math.floor(rand() * 36);
    }
    leftInDirectory -= 1;
    const binary = rand() < 0.1;
    const extension = binary
      ? BINARY_EXTENSIONS[Math.floor(rand() * BINARY_EXTENSIONS.length)]
      : TEXT_EXTENSIONS[Math.floor(rand() * TEXT_EXTENSIONS.length)];
    const rel = `${current}/file${i}${extension}`;
    const content = binary ? binaryContent(rand, binarySize(rand)) : textContent(rand, textSize(rand));
    writeFileSync(path.join(root, rel), content);
    files.push(rel);
    bytes += content.length;
    if (binary) binaryFiles += 1;
  }
  writeFileSync(path.join(root, 'package.json'), '{ "name": "bench-tree", "version": "1.0.0" }\n');
  files.push('package.json');
  return { root, files, bytes: bytes + 44, binaryFiles };
}
