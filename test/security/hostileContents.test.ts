// Issue 7, "hostile box contents": what a process in the box (or a crafted tar) can leave in /workspace that
// collect must refuse and list, while apply writes nothing outside the workspace and never follows a symlink.
// Every case the box can produce is produced for real in a real box (BoxSession over a temp workspace folder,
// both test images: busybox collects through the full archive, node may use a listing), collected, then applied
// in full (every path, every flag approved). The workspace lives in a temp parent next to sentinels (`outside/`,
// `secret.txt`) and holds symlinks pointing at them; the whole parent is snapshotted byte for byte (type, mode,
// link count, content hash, link target, and mtime outside the workspace) before and after.
// Cases only a crafted tar can produce run the same parser → planner → applyToFolder path on a real folder.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type { BoxSettings, ChangeEntry, ChangeSet, RefusedReason } from '../../src/shared/protocol';
import { planApply } from '../../src/core/apply/applyPlan';
import { applyToFolder } from '../../src/core/apply/applyToFolder';
import { LABEL_MANAGED, LABEL_OWNER } from '../../src/core/box/boxConfig';
import { readBoxTree } from '../../src/core/changes/boxTree';
import { computeChangeSet } from '../../src/core/changes/changeSet';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { SandboxError } from '../../src/core/errors';
import { BoxSession } from '../../src/core/session/boxSession';
import { SyncFilter } from '../../src/core/workspace/syncFilter';
import { scanWorkspace } from '../../src/core/workspace/workspaceScan';
import { TEST_IMAGES, connectTestEngine, removeEverythingOwnedBy, sh, shOk, testOwnerId, testSettings } from '../engine/engineHarness';
import { tarStream, writeTree, type TarEntrySpec } from '../builders/trees';

type ImageName = keyof typeof TEST_IMAGES;

// ---------------------------------------------------------------------------------------------------------
// The arena: a temp parent holding the workspace and the sentinels apply must never touch.

interface Arena {
  parent: string;
  folder: string;
  /** The whole parent before anything ran. */
  initial: TreeSnapshot;
}

/** One entry as lstat sees it; `mtimeMs` only outside the workspace (apply legitimately touches its dirs). */
interface NodeState {
  type: 'file' | 'directory' | 'symlink' | 'other';
  mode: number;
  nlink: number;
  size: number;
  sha256?: string;
  target?: string;
  mtimeMs?: number;
}

type TreeSnapshot = Map<string, NodeState>;

const WORKSPACE_DIR = 'workspace';

const BASE_WORKSPACE: Record<string, string | null> = {
  'README.md': '# demo\n',
  'src/app.js': 'console.log(1);\n',
  'docs/guide.md': 'guide\n',
  'run.sh': '#!/bin/sh\necho hi\n',
};

async function makeArena(extra: Record<string, string | null> = {}): Promise<Arena> {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'as-hostile-'));
  const folder = path.join(parent, WORKSPACE_DIR);
  await writeTree(folder, { ...BASE_WORKSPACE, ...extra });
  await fs.chmod(path.join(folder, 'run.sh'), 0o755);
  await writeTree(parent, {
    'secret.txt': 'top secret\n',
    'outside/secret.txt': 'outside secret\n',
    'outside/sub/deep.txt': 'deep\n',
    'outside/tool.sh': '#!/bin/sh\n',
  });
  await fs.chmod(path.join(parent, 'secret.txt'), 0o600);
  await fs.chmod(path.join(parent, 'outside', 'tool.sh'), 0o755);
  // Links in the real workspace that point at the sentinels: never sent, never followed, never replaced.
  await fs.symlink('../outside', path.join(folder, 'escape'));
  await fs.symlink('../secret.txt', path.join(folder, 'secret-link'));
  // Sentinel mtimes in the past, so that a write in the same millisecond would still show.
  const past = new Date(Date.now() - 3600_000);
  for (const relPath of ['secret.txt', 'outside/secret.txt', 'outside/sub/deep.txt', 'outside/tool.sh', 'outside/sub', 'outside']) {
    await fs.utimes(path.join(parent, relPath), past, past);
  }
  return { parent, folder, initial: await snapshotTree(parent) };
}

/** A name as bytes: UTF-8 text when it is valid UTF-8, else with `\xNN` escapes (so a lossy name cannot hide). */
function nameOf(raw: Buffer): string {
  const text = raw.toString('utf8');
  return Buffer.from(text, 'utf8').equals(raw)
    ? text
    : [...raw].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
}

/** Every entry below `root` (root itself as '.'), read with lstat and byte names, never through a link. */
async function snapshotTree(root: string): Promise<TreeSnapshot> {
  const result: TreeSnapshot = new Map();
  const visit = async (absolute: Buffer, rel: string): Promise<void> => {
    const stat = await fs.lstat(absolute);
    const type = stat.isFile() ? 'file' : stat.isDirectory() ? 'directory' : stat.isSymbolicLink() ? 'symlink' : 'other';
    const state: NodeState = { type, mode: stat.mode, nlink: stat.nlink, size: type === 'directory' ? 0 : stat.size };
    if (type === 'file')
      state.sha256 = createHash('sha256')
        .update(await fs.readFile(absolute))
        .digest('hex');
    if (type === 'symlink') state.target = nameOf(await fs.readlink(absolute, { encoding: 'buffer' }));
    const inWorkspace = rel === WORKSPACE_DIR || rel.startsWith(`${WORKSPACE_DIR}/`);
    if (!inWorkspace) state.mtimeMs = stat.mtimeMs;
    result.set(rel, state);
    if (type === 'directory') {
      for (const name of await fs.readdir(absolute, { encoding: 'buffer' })) {
        await visit(Buffer.concat([absolute, Buffer.from('/'), name]), rel === '.' ? nameOf(name) : `${rel}/${nameOf(name)}`);
      }
    }
  };
  await visit(Buffer.from(root), '.');
  return result;
}

/** The part of a parent snapshot outside the workspace folder. */
function outsidePart(snapshot: TreeSnapshot): Record<string, NodeState> {
  return Object.fromEntries([...snapshot].filter(([rel]) => rel !== WORKSPACE_DIR && !rel.startsWith(`${WORKSPACE_DIR}/`)));
}

/** The workspace part, keyed by workspace-relative path. */
function workspacePart(snapshot: TreeSnapshot): Map<string, NodeState> {
  return new Map(
    [...snapshot].filter(([rel]) => rel.startsWith(`${WORKSPACE_DIR}/`)).map(([rel, state]) => [rel.slice(WORKSPACE_DIR.length + 1), state]),
  );
}

function assertOutsideUnchanged(arena: Arena, after: TreeSnapshot): void {
  assert.deepEqual(
    outsidePart(after),
    outsidePart(arena.initial),
    'nothing outside the workspace folder changed (byte for byte, modes, types, mtimes)',
  );
  const ws = workspacePart(after);
  assert.deepEqual(ws.get('escape'), workspacePart(arena.initial).get('escape'), 'the workspace link to ../outside is untouched');
  assert.deepEqual(ws.get('secret-link'), workspacePart(arena.initial).get('secret-link'), 'the workspace link to ../secret.txt is untouched');
}

/**
 * The workspace after apply is the workspace before with exactly the applied changes: each applied path holds
 * what the box had (type, content hash, permission bits, link target), a deleted one is gone, and every other
 * entry is as it was (implied parent directories of applied paths may be new). No regular file has a second
 * link and no temp file is left.
 */
function assertWorkspaceFollowsChanges(
  before: Map<string, NodeState>,
  after: Map<string, NodeState>,
  changes: ChangeEntry[],
  applied: string[],
): void {
  const done = changes.filter((c) => applied.includes(c.path));
  const gone = new Set<string>();
  const touched = new Set<string>();
  const implied = new Set<string>();
  for (const c of done) {
    touched.add(c.path);
    if (c.fromPath) gone.add(c.fromPath);
    if (c.kind === 'deleted') gone.add(c.path);
    const parts = c.path.split('/');
    for (let i = 1; i < parts.length; i++) implied.add(parts.slice(0, i).join('/'));
  }
  for (const c of done) {
    const state = after.get(c.path);
    if (c.kind === 'deleted') {
      assert.equal(state, undefined, `${c.path} was deleted`);
      continue;
    }
    assert.ok(state, `${c.path} exists after apply`);
    assert.equal(state.type, c.type, `${c.path} is a ${c.type}`);
    if (c.type === 'file') {
      assert.equal(state.sha256, c.hash, `${c.path} holds the box's content`);
      assert.equal(state.mode & 0o7777, (c.mode ?? 0o644) & 0o777, `${c.path} has the box's permission bits`);
      assert.equal(state.nlink, 1, `${c.path} is not a hard link`);
    }
    if (c.type === 'symlink') assert.equal(state.target, c.linkTarget, `${c.path} is a link to the box's target`);
  }
  const isBelowGone = (p: string): boolean => [...gone].some((g) => p.startsWith(`${g}/`));
  for (const p of new Set([...before.keys(), ...after.keys()])) {
    if (touched.has(p) || gone.has(p) || isBelowGone(p)) {
      if (!touched.has(p)) assert.equal(after.get(p), undefined, `${p} is gone with its parent`);
      continue;
    }
    if (!before.has(p) && implied.has(p)) {
      assert.equal(after.get(p)?.type, 'directory', `${p} is an implied parent directory`);
      continue;
    }
    assert.deepEqual(after.get(p), before.get(p), `${p} is untouched`);
  }
  const leftovers = [...after.keys()].filter((p) => p.includes('agent-sandbox-'));
  assert.deepEqual(leftovers, [], 'no temp file is left');
}

// ---------------------------------------------------------------------------------------------------------
// Real boxes.

let engine: DockerEngine | undefined;
const ownerId = testOwnerId('hostile');
const arenas: string[] = [];

async function openSession(arena: Arena, image: ImageName, settings: Partial<BoxSettings> = {}): Promise<BoxSession> {
  return BoxSession.open(
    {
      engine: engine!,
      settings: testSettings({ image: TEST_IMAGES[image], ...settings }),
      folder: arena.folder,
      ownerId,
      env: [],
      log: () => undefined,
    },
    () => undefined,
  );
}

interface CaseResult {
  arena: Arena;
  session: BoxSession;
  changeSet: ChangeSet;
  applied: string[];
  before: Map<string, NodeState>;
  after: TreeSnapshot;
}

/**
 * Opens a box on a fresh arena, runs `attack` in /workspace, collects, applies everything (all paths, every
 * flag approved), checks the sentinels and that the workspace follows the change set exactly, then collects
 * again: what was applied is no longer pending, what was refused still is. The session is left open for the
 * case's own checks; `runCase` callers remove it.
 */
async function runCase(
  image: ImageName,
  attack: string,
  options: { extra?: Record<string, string | null>; settings?: Partial<BoxSettings>; timeoutMs?: number } = {},
): Promise<CaseResult> {
  const arena = await makeArena(options.extra);
  arenas.push(arena.parent);
  const session = await openSession(arena, image, options.settings);
  try {
    await shOk(session.box, attack, { timeoutMs: options.timeoutMs ?? 60_000 });
    // A copy: apply drops what it applied from the session's own change set.
    const changeSet = structuredClone(await session.collect());
    const before = workspacePart(await snapshotTree(arena.parent));
    const approveFlagged = changeSet.changes.filter((c) => c.flags.length > 0).map((c) => c.path);
    const result = await session.apply({ approveFlagged });
    assert.deepEqual(result.conflicts, [], 'no conflicts');
    assert.deepEqual(result.skipped, [], 'nothing skipped');
    assert.deepEqual([...result.applied].sort(), changeSet.changes.map((c) => c.path).sort(), 'every proposed change was applied');
    const after = await snapshotTree(arena.parent);
    assertOutsideUnchanged(arena, after);
    assertWorkspaceFollowsChanges(before, workspacePart(after), changeSet.changes, result.applied);
    const again = await session.collect();
    assert.deepEqual(again.changes, [], 'after apply the workspace matches the box: nothing is pending');
    assert.deepEqual(refusedOf(again), refusedOf(changeSet), 'refused entries stay refused');
    return { arena, session, changeSet, applied: result.applied, before, after };
  } catch (error) {
    await session.remove().catch(() => undefined);
    throw error;
  }
}

function refusedOf(changeSet: ChangeSet): [string, RefusedReason][] {
  return changeSet.refused.map((r) => [r.path, r.reason]);
}

function changesOf(changeSet: ChangeSet): [string, string, string][] {
  return changeSet.changes.map((c) => [c.path, c.kind, c.type]);
}

async function withCase(
  image: ImageName,
  attack: string,
  check: (r: CaseResult) => Promise<void> | void,
  options?: Parameters<typeof runCase>[2],
): Promise<void> {
  const result = await runCase(image, attack, options);
  try {
    await check(result);
  } finally {
    await result.session.remove().catch(() => undefined);
  }
}

/** Samples this process's RSS while `work` runs; returns its result, the peak growth and the time taken. */
async function measured<T>(work: () => Promise<T>): Promise<{ value: T; peakGrowthMiB: number; seconds: number }> {
  global.gc?.();
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 25);
  const began = Date.now();
  try {
    const value = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, peakGrowthMiB: (peak - start) / (1024 * 1024), seconds: (Date.now() - began) / 1000 };
  } finally {
    clearInterval(timer);
  }
}

suite('hostile box contents: collect refuses and lists them, apply writes nothing outside the workspace and follows no link', function () {
  suiteSetup(async () => {
    engine = await connectTestEngine();
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
    for (const parent of arenas) await fs.rm(parent, { recursive: true, force: true });
  });

  for (const image of ['busybox', 'node'] as const) {
    suite(`${image} image`, () => {
      test('a file replaced by a symlink to a host path (/etc/passwd, ../outside/secret.txt, ../../secret.txt, ../../outside) is refused as symlink-outside; apply leaves the real files as they were', async () => {
        await withCase(
          image,
          'ln -sf /etc/passwd README.md && ln -s ../outside/secret.txt notes.txt && ln -sf ../../secret.txt src/app.js && ln -s ../../outside docs/up',
          (r) => {
            assert.deepEqual(refusedOf(r.changeSet), [
              ['README.md', 'symlink-outside'],
              ['docs/up', 'symlink-outside'],
              ['notes.txt', 'symlink-outside'],
              ['src/app.js', 'symlink-outside'],
            ]);
            assert.match(r.changeSet.refused.find((e) => e.path === 'README.md')!.detail, /\/etc\/passwd/);
            assert.deepEqual(changesOf(r.changeSet), [], 'nothing is proposed, not even README.md as deleted');
            assert.deepEqual(r.applied, []);
            const ws = workspacePart(r.after);
            assert.equal(ws.get('README.md')?.type, 'file');
            assert.equal(ws.get('README.md')?.sha256, sha('# demo\n'), 'README.md keeps its content');
            assert.equal(ws.get('src/app.js')?.sha256, sha('console.log(1);\n'));
          },
        );
      });

      test('a symlinked directory pointing out with a file written through it (ln -s /tmp d; ln -s .. up) is refused; the file lands outside /workspace in the box and is never proposed', async () => {
        await withCase(image, 'ln -s /tmp d && echo x > d/f && ln -s .. up && echo y > up/tmp/g && ! (echo z > up/f) 2>/dev/null', async (r) => {
          assert.deepEqual(refusedOf(r.changeSet), [
            ['d', 'symlink-outside'],
            ['up', 'symlink-outside'],
          ]);
          assert.deepEqual(changesOf(r.changeSet), []);
          // Control: the writes through the links really happened in the box, outside /workspace.
          assert.equal(await shOk(r.session.box, 'cat /tmp/f /tmp/g'), 'x\ny\n');
          assert.equal(workspacePart(r.after).get('d'), undefined);
          assert.equal(workspacePart(r.after).get('up'), undefined);
        });
      });

      test('a symlink to a directory inside the workspace with a file written through it is applied as that link plus the real file, never written through', async () => {
        await withCase(image, 'ln -s docs d2 && echo through > d2/new.txt && ln -s ../src docs/src-link', (r) => {
          assert.deepEqual(refusedOf(r.changeSet), []);
          assert.deepEqual(changesOf(r.changeSet), [
            ['d2', 'added', 'symlink'],
            ['docs/new.txt', 'added', 'file'],
            ['docs/src-link', 'added', 'symlink'],
          ]);
          const ws = workspacePart(r.after);
          assert.equal(ws.get('d2')?.target, 'docs');
          assert.equal(ws.get('docs/new.txt')?.type, 'file', 'the file is written at its real path');
          assert.equal(ws.get('docs/src-link')?.target, '../src');
        });
      });

      test('a file replaced by a symlink inside the workspace is applied as a symlink; its target is not written', async () => {
        await withCase(image, 'ln -sf src/app.js README.md && ln -sf ../README.md docs/guide.md', (r) => {
          assert.deepEqual(refusedOf(r.changeSet), []);
          assert.deepEqual(changesOf(r.changeSet), [
            ['README.md', 'modified', 'symlink'],
            ['docs/guide.md', 'modified', 'symlink'],
          ]);
          const ws = workspacePart(r.after);
          assert.equal(ws.get('README.md')?.target, 'src/app.js');
          assert.equal(ws.get('docs/guide.md')?.target, '../README.md');
          assert.equal(ws.get('src/app.js')?.sha256, sha('console.log(1);\n'), 'the link target keeps its content');
        });
      });

      test('a directory replaced by a file and a file replaced by a directory are applied as type changes', async () => {
        await withCase(image, 'rm -rf docs && echo now-a-file > docs && rm README.md && mkdir README.md && echo inner > README.md/inner.txt', (r) => {
          assert.deepEqual(refusedOf(r.changeSet), []);
          assert.deepEqual(changesOf(r.changeSet), [
            ['README.md', 'modified', 'directory'],
            ['README.md/inner.txt', 'added', 'file'],
            ['docs', 'modified', 'file'],
            ['docs/guide.md', 'deleted', 'file'],
          ]);
          const ws = workspacePart(r.after);
          assert.equal(ws.get('docs')?.type, 'file');
          assert.equal(ws.get('docs')?.sha256, sha('now-a-file\n'));
          assert.equal(ws.get('README.md')?.type, 'directory');
          assert.equal(ws.get('README.md/inner.txt')?.sha256, sha('inner\n'));
        });
      });

      test('a hard link is refused as hard-link and never applied as a link', async () => {
        await withCase(image, 'ln src/app.js src/zz-hard && test "$(stat -c %h src/app.js)" = 2', (r) => {
          // Whatever the listing order, every path of the pair the box linked is refused or comes back a plain copy.
          assert.ok(r.changeSet.refused.length >= 1, 'at least one side of the hard link is refused');
          for (const [p, reason] of refusedOf(r.changeSet)) {
            assert.ok(['src/app.js', 'src/zz-hard'].includes(p), `${p} is one of the linked pair`);
            assert.equal(reason, 'hard-link');
          }
          for (const c of r.changeSet.changes) {
            assert.deepEqual([c.path, c.kind, c.type, c.hash], ['src/zz-hard', 'added', 'file', sha('console.log(1);\n')]);
          }
          assert.equal(workspacePart(r.after).get('src/app.js')?.nlink, 1);
        });
      });

      test('a fifo made in the box is refused as fifo and not applied', async () => {
        await withCase(image, 'mkfifo pipe && mkfifo docs/pipe2', (r) => {
          assert.deepEqual(refusedOf(r.changeSet), [
            ['docs/pipe2', 'fifo'],
            ['pipe', 'fifo'],
          ]);
          assert.deepEqual(changesOf(r.changeSet), []);
          assert.equal(workspacePart(r.after).get('pipe'), undefined);
        });
      });

      test('setuid and setgid bits set by the box (chmod u+s on an own file, g+s on a directory) are refused as setuid-setgid; the real files keep their modes', async () => {
        await withCase(
          image,
          'chmod u+s run.sh && echo x > new-suid && chmod 4755 new-suid && mkdir sg && chmod g+s sg && echo y > sg/inside && chmod 2755 src/app.js',
          async (r) => {
            assert.equal(
              await shOk(r.session.box, 'stat -c %a run.sh new-suid sg src/app.js'),
              '4755\n4755\n2755\n2755\n',
              'control: the bits are really set in the box',
            );
            assert.deepEqual(refusedOf(r.changeSet), [
              ['new-suid', 'setuid-setgid'],
              ['run.sh', 'setuid-setgid'],
              ['sg', 'setuid-setgid'],
              ['src/app.js', 'setuid-setgid'],
            ]);
            // What is below a refused directory is still a plain file; it is proposed and applied without the bit.
            assert.deepEqual(changesOf(r.changeSet), [['sg/inside', 'added', 'file']]);
            const ws = workspacePart(r.after);
            assert.equal(ws.get('run.sh')!.mode & 0o7777, 0o755);
            assert.equal(ws.get('src/app.js')!.mode & 0o7777, 0o644);
            assert.equal(ws.get('sg')!.mode & 0o7000, 0, 'the implied parent directory has no setgid bit');
            for (const [p, state] of ws) assert.equal(state.mode & 0o6000, 0, `${p} has no setuid/setgid bit`);
          },
        );
      });

      test('a 255-byte file name is collected and applied under exactly that name', async () => {
        const long = 'n'.repeat(251) + '.txt';
        await withCase(image, `echo long > ${long} && mkdir -p sub && echo l2 > sub/${'m'.repeat(255)}`, (r) => {
          assert.deepEqual(refusedOf(r.changeSet), []);
          assert.deepEqual(changesOf(r.changeSet), [
            [long, 'added', 'file'],
            [`sub/${'m'.repeat(255)}`, 'added', 'file'],
          ]);
          assert.equal(workspacePart(r.after).get(long)?.sha256, sha('long\n'));
        });
      });

      test('non-UTF-8 names and link targets (bytes 0xff, 0xfe) are refused as invalid-name; nothing is applied under a look-alike name', async () => {
        const attack = [
          `printf x > "$(printf 'bad\\377name')"`,
          `ln -s "$(printf 't\\376')" badlink`,
          `mkdir "$(printf 'd\\377')" && printf y > "$(printf 'd\\377')/inner"`,
          `printf z > "$(printf 'caf\\351')"`,
          `printf '%s\\n' * | od -An -tx1 | grep -q ' ff'`,
        ].join(' && ');
        await withCase(image, attack, (r) => {
          const refused = refusedOf(r.changeSet);
          assert.deepEqual(
            refused.map(([, reason]) => reason),
            refused.map(() => 'invalid-name'),
          );
          // Every non-UTF-8 entry is listed (its name as decoded, with U+FFFD where the bytes were).
          // (A directory refused for its name is listed with its tar name's trailing slash by the archive collect.)
          assert.deepEqual(
            refused.map(([p]) => p.replace(/\/$/, '')).sort(),
            ['bad\uFFFDname', 'badlink', 'caf\uFFFD', 'd\uFFFD', 'd\uFFFD/inner'].sort(),
          );
          assert.deepEqual(changesOf(r.changeSet), []);
          for (const p of workspacePart(r.after).keys())
            assert.ok(!p.includes('\uFFFD') && !p.includes('\\x'), `no look-alike or raw name ${JSON.stringify(p)} in the workspace`);
        });
      });

      test('names that differ only by case (Readme.md next to README.md, NOTES.md and notes.md) are all proposed, none flagged, and applied side by side on a case-sensitive host', async () => {
        await withCase(image, 'echo a > Readme.md && echo 1 > NOTES.md && echo 2 > notes.md && mkdir Src && echo s > Src/app.js', (r) => {
          assert.deepEqual(refusedOf(r.changeSet), []);
          assert.deepEqual(changesOf(r.changeSet), [
            ['NOTES.md', 'added', 'file'],
            ['Readme.md', 'added', 'file'],
            ['Src/app.js', 'added', 'file'],
            ['notes.md', 'added', 'file'],
          ]);
          for (const c of r.changeSet.changes) assert.deepEqual(c.flags, [], `${c.path} is not flagged`);
          const ws = workspacePart(r.after);
          assert.equal(ws.get('README.md')?.sha256, sha('# demo\n'));
          assert.equal(ws.get('Readme.md')?.sha256, sha('a\n'));
          assert.equal(ws.get('src/app.js')?.sha256, sha('console.log(1);\n'));
        });
      });

      // busybox has no tool that binds a unix socket; node does.
      if (image === 'node')
        test('a unix socket created in the box is never proposed nor applied', async () => {
          await withCase(image, `node -e "require('net').createServer().listen('/workspace/sock', () => process.exit(0))" && test -S sock`, (r) => {
            assert.deepEqual(changesOf(r.changeSet), []);
            for (const [p] of refusedOf(r.changeSet)) assert.equal(p, 'sock', 'only the socket itself may be listed as refused');
            assert.equal(workspacePart(r.after).get('sock'), undefined);
          });
        });

      test('a directory made in the box where the workspace has a symlink pointing outside (escape -> ../outside): its files are conflicts, nothing is written through the link, the rest is applied', async () => {
        const arena = await makeArena();
        arenas.push(arena.parent);
        const session = await openSession(arena, image);
        try {
          await shOk(
            session.box,
            'test ! -e escape && mkdir escape && echo pwned > escape/secret.txt && mkdir -p secret-link && echo pwned > secret-link/x && echo ok > fine.txt',
          );
          const changeSet = structuredClone(await session.collect());
          assert.deepEqual(refusedOf(changeSet), []);
          assert.deepEqual(changesOf(changeSet), [
            ['escape/secret.txt', 'added', 'file'],
            ['fine.txt', 'added', 'file'],
            ['secret-link/x', 'added', 'file'],
          ]);
          const plan = await session.planApply({});
          assert.deepEqual(
            plan.conflicts.map((c) => c.path),
            ['escape/secret.txt', 'secret-link/x'],
          );
          for (const c of plan.conflicts)
            assert.match(c.reason, /a symbolic link that leads outside the folder in the workspace; nothing is written at or through it/);
          const result = await session.apply({});
          assert.deepEqual(result.applied, ['fine.txt']);
          assert.deepEqual(result.conflicts, ['escape/secret.txt', 'secret-link/x']);
          assertOutsideUnchanged(arena, await snapshotTree(arena.parent));
          assert.equal(await fs.readFile(path.join(arena.parent, 'outside', 'secret.txt'), 'utf8'), 'outside secret\n');
          for (const link of ['escape', 'secret-link'])
            assert.ok((await fs.lstat(path.join(arena.folder, link))).isSymbolicLink(), `${link} is still a link`);
        } finally {
          await session.remove().catch(() => undefined);
        }
      });

      test('a 10 GB sparse file is refused as too-large without being held in memory', async function () {
        // The archive collect streams all 10 GB through (drained): 40-120 s here. The assertion is memory, not time.
        this.timeout(600_000);
        const arena = await makeArena();
        arenas.push(arena.parent);
        const session = await openSession(arena, image, { maxFileSizeMiB: 100 });
        try {
          await shOk(session.box, 'truncate -s 10G big.bin && echo small > small.txt && ls -ls big.bin');
          const { value: collected, peakGrowthMiB, seconds } = await measured(() => session.collect());
          const changeSet = structuredClone(collected);
          console.log(`      [${image}] 10 GB sparse file: collect ${seconds.toFixed(1)} s, peak RSS growth ${peakGrowthMiB.toFixed(0)} MiB`);
          assert.deepEqual(refusedOf(changeSet), [['big.bin', 'too-large']]);
          assert.match(changeSet.refused[0].detail, /10\.0 GiB is over the limit of 100\.0 MiB/);
          assert.deepEqual(changesOf(changeSet), [['small.txt', 'added', 'file']]);
          assert.ok(peakGrowthMiB < 300, `collect held at most 300 MiB more (grew by ${peakGrowthMiB.toFixed(0)} MiB)`);
          const result = await session.apply({});
          assert.deepEqual(result.applied, ['small.txt']);
          const after = await snapshotTree(arena.parent);
          assertOutsideUnchanged(arena, after);
          assert.equal(workspacePart(after).get('big.bin'), undefined);
        } finally {
          await session.remove().catch(() => undefined);
        }
      });
    });
  }

  for (const image of ['busybox', 'node'] as const) {
    test(`[${image}] 200k tiny files made in the box are all listed as added (time and memory measured); applying 1,000 of them writes exactly those`, async function () {
      this.timeout(900_000);
      const arena = await makeArena();
      arenas.push(arena.parent);
      // 1-byte files take a tmpfs page each (~800 MiB), charged to the box's memory.
      const session = await openSession(arena, image, { workspaceSizeMiB: 2048, memoryMiB: 2048 });
      try {
        const make =
          image === 'node'
            ? `node -e "const fs=require('fs');for(let d=0;d<200;d++){fs.mkdirSync('t/'+d,{recursive:true});for(let i=0;i<1000;i++)fs.writeFileSync('t/'+d+'/f'+i,String(i%10))}"`
            : 'd=0; while [ $d -lt 200 ]; do mkdir -p t/$d; i=0; while [ $i -lt 1000 ]; do echo -n $((i%10)) > t/$d/f$i; i=$((i+1)); done; d=$((d+1)); done';
        const made = Date.now();
        await shOk(session.box, `${make} && find t -type f | wc -l`, { timeoutMs: 600_000 }).then((out) => assert.equal(out.trim(), '200000'));
        const makeSeconds = (Date.now() - made) / 1000;
        const { value: collected, peakGrowthMiB, seconds } = await measured(() => session.collect());
        const changeSet = structuredClone(collected);
        console.log(
          `      [${image}] 200k files: made in ${makeSeconds.toFixed(1)} s; collect ${seconds.toFixed(1)} s, peak RSS growth ${peakGrowthMiB.toFixed(0)} MiB`,
        );
        assert.equal(changeSet.changes.length, 200_000);
        assert.ok(changeSet.changes.every((c) => c.kind === 'added' && c.type === 'file' && c.path.startsWith('t/')));
        assert.deepEqual(changeSet.refused, []);
        assert.ok(peakGrowthMiB < 1500, `collect grew RSS by at most 1.5 GiB (grew by ${peakGrowthMiB.toFixed(0)} MiB)`);
        const chosen = changeSet.changes.slice(0, 1000).map((c) => c.path);
        const began = Date.now();
        const result = await session.apply({ paths: chosen });
        console.log(`      [${image}] applied 1,000 files in ${((Date.now() - began) / 1000).toFixed(1)} s`);
        assert.deepEqual([...result.applied].sort(), [...chosen].sort());
        const after = await snapshotTree(arena.parent);
        assertOutsideUnchanged(arena, after);
        const written = [...workspacePart(after)].filter(([p, st]) => p.startsWith('t/') && st.type === 'file').map(([p]) => p);
        assert.deepEqual(written.sort(), [...chosen].sort());
        const byPath = new Map(changeSet.changes.map((c) => [c.path, c]));
        for (const p of chosen) assert.equal(workspacePart(after).get(p)?.sha256, byPath.get(p)!.hash);
      } finally {
        await session.remove().catch(() => undefined);
      }
    });
  }

  test('mknod fails in the box (no CAP_MKNOD), so no device can reach collect; control: the same image as root with CAP_MKNOD makes one', async () => {
    const arena = await makeArena();
    arenas.push(arena.parent);
    const session = await openSession(arena, 'busybox');
    try {
      const attempt = await sh(session.box, 'mknod null c 1 3; echo "rc=$?"; mknod blk b 7 0; echo "rc=$?"');
      assert.match(attempt.stdout, /^rc=1\nrc=1\n$/);
      assert.match(attempt.stderr, /Operation not permitted/);
      const changeSet = await session.collect();
      assert.deepEqual(changesOf(changeSet), []);
      assert.deepEqual(refusedOf(changeSet), []);
    } finally {
      await session.remove().catch(() => undefined);
    }
    const control = spawnSync(
      'docker',
      [
        'run',
        '--rm',
        '--network',
        'none',
        '--user',
        '0',
        '--label',
        `${LABEL_MANAGED}=true`,
        '--label',
        `${LABEL_OWNER}=${ownerId}`,
        TEST_IMAGES.busybox,
        'sh',
        '-c',
        'mknod /tmp/null c 1 3 && ls -l /tmp/null',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(control.status, 0, `control container failed: ${control.stderr}`);
    assert.match(control.stdout, /^c/, 'a character device was made where CAP_MKNOD is held');
  });

  for (const image of ['busybox', 'node'] as const) {
    test(`[${image}] a path deeper than 4096 bytes made in the box (25 nested 200-byte directories): collect finishes without an error, proposes only names under PATH_MAX, and apply writes them`, async () => {
      const segment = 'd'.repeat(200);
      // cd -P: a logical cd gives up once $PWD would pass PATH_MAX; the kernel does not care about depth.
      const attack = `i=0; while [ $i -lt 25 ]; do mkdir ${segment} && cd -P ${segment} || exit 1; i=$((i+1)); done; echo deep > f && test "$(pwd -P | wc -c)" -gt 5000`;
      await withCase(image, attack, (r) => {
        for (const [p, reason] of refusedOf(r.changeSet))
          assert.ok(Buffer.byteLength(p) >= 4096 && reason === 'invalid-name', `only an over-long name may be refused (${reason})`);
        for (const c of r.changeSet.changes) assert.ok(Buffer.byteLength(c.path) < 4096, 'only names under PATH_MAX are proposed');
        assert.ok(r.changeSet.changes.length >= 1);
        console.log(
          `      [${image}] deep path: ${r.changeSet.changes.length} change(s), deepest ${Math.max(...r.changeSet.changes.map((c) => c.path.length))} bytes; ${r.changeSet.refused.length} refused`,
        );
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Crafted tars: what the engine's archive API never emits, through the same parser → planner → apply.

interface CraftedResult {
  arena: Arena;
  changeSet: ChangeSet;
  applied: string[];
  before: Map<string, NodeState>;
  after: TreeSnapshot;
}

/** Parses `tar` as the box's tree of `arena`'s workspace, plans everything (flags approved) and applies it. */
async function craftedCase(build: (arena: Arena, workspace: TarEntrySpec[]) => TarEntrySpec[] | Readable): Promise<CraftedResult> {
  const arena = await makeArena();
  arenas.push(arena.parent);
  const filter = await SyncFilter.create(arena.folder, { exclude: [], useGitignore: false });
  const baseline = await scanWorkspace(arena.folder, filter);
  const workspace = await workspaceAsTar(arena.folder, baseline);
  const built = build(arena, workspace);
  const stream = Array.isArray(built) ? tarStream([...workspace, ...built]) : built;
  const tree = await readBoxTree(stream, { prefix: 'workspace/', baseline, filter, maxFileBytes: 100 * 1024 * 1024 });
  const changeSet = computeChangeSet(arena.folder, baseline, tree);
  const before = workspacePart(await snapshotTree(arena.parent));
  const current = await scanWorkspace(arena.folder, filter);
  const plan = planApply({ baseline, changes: changeSet.changes, current, approveFlagged: changeSet.changes.map((c) => c.path) });
  assert.deepEqual(plan.conflicts, []);
  const applied = await applyToFolder(arena.folder, plan, (p) => tree.contents.get(p) ?? Buffer.alloc(0));
  assert.deepEqual([...applied].sort(), changeSet.changes.map((c) => c.path).sort(), 'every proposed change was applied');
  const after = await snapshotTree(arena.parent);
  assertOutsideUnchanged(arena, after);
  assertWorkspaceFollowsChanges(before, workspacePart(after), changeSet.changes, applied);
  return { arena, changeSet, applied, before, after };
}

/** The workspace as the box would list it unchanged, so that only the hostile entries after it differ. */
async function workspaceAsTar(
  folder: string,
  baseline: Map<string, { path: string; type: string; mode: number; linkTarget?: string }>,
): Promise<TarEntrySpec[]> {
  const entries: TarEntrySpec[] = [{ name: 'workspace/', type: 'directory' }];
  for (const e of [...baseline.values()].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    if (e.type === 'directory') entries.push({ name: `workspace/${e.path}/`, type: 'directory', mode: e.mode });
    else if (e.type === 'symlink') entries.push({ name: `workspace/${e.path}`, type: 'symlink', linkname: e.linkTarget });
    else entries.push({ name: `workspace/${e.path}`, type: 'file', mode: e.mode, content: await fs.readFile(path.join(folder, e.path)) });
  }
  return entries;
}

/** One ustar entry with a name given as raw bytes (tar-stream's pack only writes UTF-8 names). */
function rawUstarEntry(name: Buffer, content: Buffer, typeflag = '0', mode = 0o644): Buffer {
  const header = Buffer.alloc(512, 0);
  name.copy(header, 0);
  const octal = (value: number, offset: number, length: number): void => {
    header.write(value.toString(8).padStart(length - 1, '0') + '\0', offset, 'ascii');
  };
  octal(mode, 100, 8);
  octal(1000, 108, 8);
  octal(1000, 116, 8);
  octal(content.length, 124, 12);
  octal(Math.floor(Date.now() / 1000), 136, 12);
  header.write('        ', 148, 'ascii');
  header.write(typeflag, 156, 'ascii');
  header.write('ustar\0' + '00', 257, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  const padded = Buffer.alloc(Math.ceil(content.length / 512) * 512, 0);
  content.copy(padded);
  return Buffer.concat([header, padded]);
}

suite('hostile crafted tars (names the engine never emits): refused and listed, nothing written outside the workspace', () => {
  suiteTeardown(async () => {
    for (const parent of arenas) await fs.rm(parent, { recursive: true, force: true });
  });

  test('`..` names (workspace/../secret.txt, ../outside/secret.txt, a/../../x) are refused as parent-traversal; the sentinels are untouched', async () => {
    const r = await craftedCase(() => [
      { name: 'workspace/../secret.txt', type: 'file', content: 'pwned' },
      { name: '../outside/secret.txt', type: 'file', content: 'pwned' },
      { name: 'workspace/docs/../../outside/tool.sh', type: 'file', content: 'pwned', mode: 0o755 },
      { name: 'workspace/docs/../README.md', type: 'file', content: 'pwned' },
    ]);
    assert.deepEqual(refusedOf(r.changeSet), [
      ['../outside/secret.txt', 'parent-traversal'],
      ['../secret.txt', 'parent-traversal'],
      ['docs/../../outside/tool.sh', 'parent-traversal'],
      ['docs/../README.md', 'parent-traversal'],
    ]);
    assert.deepEqual(changesOf(r.changeSet), []);
  });

  test('absolute names (the real path of outside/secret.txt, /etc/passwd, C:/x) are refused as absolute-path; the sentinels are untouched', async () => {
    let target = '';
    const r = await craftedCase((arena) => {
      target = path.join(arena.parent, 'outside', 'secret.txt');
      return [
        { name: target, type: 'file', content: 'pwned' },
        { name: '/etc/passwd', type: 'file', content: 'root::0:0' },
        { name: 'C:/x', type: 'file', content: 'x' },
      ];
    });
    assert.deepEqual(
      refusedOf(r.changeSet),
      [
        ['/etc/passwd', 'absolute-path'],
        [target, 'absolute-path'],
        ['C:/x', 'absolute-path'],
      ].sort(([a], [b]) => (a < b ? -1 : 1)) as [string, RefusedReason][],
    );
    assert.deepEqual(changesOf(r.changeSet), []);
  });

  test('character and block devices, also one replacing README.md, are refused as device; README.md is not proposed as deleted', async () => {
    const r = await craftedCase(() => [
      { name: 'workspace/null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'workspace/sda', type: 'block-device', devmajor: 8, devminor: 0 },
      { name: 'workspace/README.md', type: 'character-device', devmajor: 1, devminor: 5 },
    ]);
    assert.deepEqual(refusedOf(r.changeSet), [
      ['README.md', 'device'],
      ['null', 'device'],
      ['sda', 'device'],
    ]);
    assert.deepEqual(changesOf(r.changeSet), [], 'README.md is not proposed as deleted: the box holds something there');
    assert.equal(workspacePart(r.after).get('README.md')?.sha256, sha('# demo\n'));
  });

  test('names under a refused symlink in the same tar (esc -> ../outside, abs -> the real outside path) and under an accepted one are refused; the link inside is applied, nothing is written through it', async () => {
    let absOutside = '';
    const r = await craftedCase((arena) => {
      absOutside = path.join(arena.parent, 'outside');
      return [
        { name: 'workspace/esc', type: 'symlink', linkname: '../outside' },
        { name: 'workspace/esc/secret.txt', type: 'file', content: 'pwned' },
        { name: 'workspace/esc/sub/deep.txt', type: 'file', content: 'pwned' },
        { name: 'workspace/abs', type: 'symlink', linkname: absOutside },
        { name: 'workspace/abs/tool.sh', type: 'file', content: 'pwned', mode: 0o755 },
        { name: 'workspace/in', type: 'symlink', linkname: 'docs' },
        { name: 'workspace/in/evil.md', type: 'file', content: 'pwned' },
      ];
    });
    assert.deepEqual(refusedOf(r.changeSet), [
      ['abs', 'symlink-outside'],
      ['abs/tool.sh', 'type-change-under-symlink'],
      ['esc', 'symlink-outside'],
      ['esc/secret.txt', 'type-change-under-symlink'],
      ['esc/sub/deep.txt', 'type-change-under-symlink'],
      ['in/evil.md', 'type-change-under-symlink'],
    ]);
    assert.deepEqual(changesOf(r.changeSet), [['in', 'added', 'symlink']]);
    assert.equal(workspacePart(r.after).get('in')?.target, 'docs');
    assert.equal(workspacePart(r.after).get('docs/evil.md'), undefined);
  });

  test('a file named under the workspace\u2019s own symlink to outside (escape/secret.txt, no entry for escape): apply refuses with path-outside-workspace and writes nothing', async () => {
    const arena = await makeArena();
    arenas.push(arena.parent);
    const filter = await SyncFilter.create(arena.folder, { exclude: [], useGitignore: false });
    const baseline = await scanWorkspace(arena.folder, filter);
    const tree = await readBoxTree(
      tarStream([
        ...(await workspaceAsTar(arena.folder, baseline)),
        { name: 'workspace/escape/secret.txt', type: 'file', content: 'pwned' },
        { name: 'workspace/secret-link/x', type: 'file', content: 'pwned' },
      ]),
      { prefix: 'workspace/', baseline, filter },
    );
    const changeSet = computeChangeSet(arena.folder, baseline, tree);
    const onlyNew = changeSet.changes;
    assert.deepEqual(changesOf(changeSet), [
      ['escape/secret.txt', 'added', 'file'],
      ['secret-link/x', 'added', 'file'],
    ]);
    const before = await snapshotTree(arena.parent);
    for (const change of onlyNew) {
      const plan = planApply({ baseline, changes: [change], current: await scanWorkspace(arena.folder, filter) });
      await assert.rejects(
        applyToFolder(arena.folder, plan, (p) => tree.contents.get(p)!),
        (e) => SandboxError.is(e, 'path-outside-workspace'),
      );
    }
    assert.deepEqual(await snapshotTree(arena.parent), before);
    assertOutsideUnchanged(arena, before);
  });

  test('duplicate entries: the later one wins as extraction would; a file turned into an outside link is refused, a link turned into a file is applied as a file, what a later file covers is refused', async () => {
    const r = await craftedCase(() => [
      { name: 'workspace/README.md', type: 'file', content: 'one' },
      { name: 'workspace/README.md', type: 'file', content: 'two' },
      { name: 'workspace/src/', type: 'directory' },
      { name: 'workspace/src/app.js', type: 'file', content: 'console.log(1);\n' },
      { name: 'workspace/src/app.js', type: 'symlink', linkname: '../../secret.txt' },
      { name: 'workspace/dup2', type: 'symlink', linkname: '../outside/secret.txt' },
      { name: 'workspace/dup2', type: 'file', content: 'second' },
      { name: 'workspace/c/', type: 'directory' },
      { name: 'workspace/c/x', type: 'file', content: 'x' },
      { name: 'workspace/c', type: 'file', content: 'cfile' },
    ]);
    assert.deepEqual(refusedOf(r.changeSet), [
      ['c/x', 'invalid-name'],
      ['src/app.js', 'symlink-outside'],
    ]);
    assert.deepEqual(changesOf(r.changeSet), [
      ['README.md', 'modified', 'file'],
      ['c', 'added', 'file'],
      ['dup2', 'added', 'file'],
    ]);
    const ws = workspacePart(r.after);
    assert.equal(ws.get('README.md')?.sha256, sha('two'));
    assert.equal(ws.get('dup2')?.type, 'file');
    assert.equal(ws.get('src/app.js')?.sha256, sha('console.log(1);\n'));
  });

  test('hard-link entries to a workspace file, to /etc/passwd and to ../secret.txt are refused as hard-link', async () => {
    const r = await craftedCase(() => [
      { name: 'workspace/h1', type: 'link', linkname: 'workspace/README.md' },
      { name: 'workspace/h2', type: 'link', linkname: '/etc/passwd' },
      { name: 'workspace/h3', type: 'link', linkname: '../secret.txt' },
    ]);
    assert.deepEqual(refusedOf(r.changeSet), [
      ['h1', 'hard-link'],
      ['h2', 'hard-link'],
      ['h3', 'hard-link'],
    ]);
    assert.ok(!r.changeSet.changes.some((c) => c.path.startsWith('h')));
    for (const [p, state] of workspacePart(r.after)) if (state.type === 'file') assert.equal(state.nlink, 1, `${p} has one link`);
  });

  test('a raw non-UTF-8 ustar name (workspace/\\xff.txt) is refused as invalid-name, never written under the decoded look-alike', async () => {
    const { Readable } = await import('node:stream');
    const r = await craftedCase((_arena, workspace) =>
      Readable.from([
        ...workspace.map((e) =>
          e.type === 'directory'
            ? rawUstarEntry(Buffer.from(e.name), Buffer.alloc(0), '5', e.mode ?? 0o755)
            : rawUstarEntry(Buffer.from(e.name), Buffer.from(e.content ?? ''), '0', e.mode ?? 0o644),
        ),
        rawUstarEntry(Buffer.concat([Buffer.from('workspace/'), Buffer.from([0xff]), Buffer.from('.txt')]), Buffer.from('pwned')),
        rawUstarEntry(Buffer.from('workspace/plain.txt'), Buffer.from('ok')),
        Buffer.alloc(1024, 0),
      ]),
    );
    assert.deepEqual(refusedOf(r.changeSet), [['\uFFFD.txt', 'invalid-name']]);
    assert.ok(r.changeSet.changes.some((c) => c.path === 'plain.txt' && c.kind === 'added'));
    assert.equal(workspacePart(r.after).get('\uFFFD.txt'), undefined);
  });
});

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
