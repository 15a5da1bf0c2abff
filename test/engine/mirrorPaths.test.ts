import * as assert from 'node:assert/strict';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { BoxSession } from '../../src/core/session/boxSession';
import { shellQuote } from '../../src/core/util/shellQuote';
import { WorkspaceWatch } from '../../src/core/workspace/workspaceWatch';
import { connectTestEngine, removeEverythingOwnedBy, testOwnerId, testSettings, TEST_IMAGES } from './engineHarness';

/**
 * The mirror streams the workspace into the image's own tar run as the box user, or (`mirrorWith: 'archive'`,
 * or an image without tar) through the engine's archive API. Both must leave the very same tree: owners,
 * modes (read-only and sticky directories, read-only and executable files), file mtimes, contents, odd names,
 * long names and symlinks — and a first collect that finds nothing changed.
 */

const OLD = new Date(1_600_000_000_000);

function makeWorkspace(): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'as-mirror-paths-'));
  const write = (rel: string, content: string, mode = 0o644) => {
    mkdirSync(path.dirname(path.join(folder, rel)), { recursive: true });
    writeFileSync(path.join(folder, rel), content);
    chmodSync(path.join(folder, rel), mode);
    utimesSync(path.join(folder, rel), OLD, OLD);
  };
  write('plain.txt', 'plain\n');
  write('tool.sh', '#!/bin/sh\necho hi\n', 0o755);
  write('readonly.txt', 'read only\n', 0o444);
  write('private.txt', 'private\n', 0o600);
  write('ro-dir/inside.txt', 'in a read-only directory\n');
  write('ro-dir/deeper/file.txt', 'deeper\n', 0o400);
  write('owner-only/x.txt', 'x\n');
  write('sticky/s.txt', 's\n');
  write(`${'long-name-'.repeat(12)}/${'é'.repeat(70)}.txt`, 'long\n');
  write('odd names/new\nline.txt', 'newline\n');
  write('odd names/-dash and \\ back \t tab.txt', 'dash\n');
  write('odd names/ünïcødé ✓.txt', 'unicode\n');
  write('empty.txt', '');
  symlinkSync('plain.txt', path.join(folder, 'link-to-plain'));
  symlinkSync(`../outside/${'l'.repeat(150)}`, path.join(folder, 'long-link'));
  mkdirSync(path.join(folder, 'empty-dir'));
  // Directories the box user cannot write into (busybox tar gives a directory its mode when it makes it).
  chmodSync(path.join(folder, 'ro-dir', 'deeper'), 0o555);
  chmodSync(path.join(folder, 'ro-dir'), 0o500);
  chmodSync(path.join(folder, 'owner-only'), 0o700);
  chmodSync(path.join(folder, 'sticky'), 0o1777);
  return folder;
}

/** One line for the entry at `$p`: mode, owner, type, size, file mtime, link target, content hash. */
const ENTRY_LINE = `t=$(stat -c %F "$p"); line="$(stat -c '%a %u:%g' "$p") $t"
  case "$t" in
    directory) ;;
    symbolic*) line="$line -> $(readlink "$p")" ;;
    *) line="$line $(stat -c '%s %Y' "$p") $(md5sum < "$p" | cut -c1-32)" ;;
  esac
  printf '%s %s\\n' "$line" "$p"`;

/** Every entry of /workspace: type, mode, owner, size, file mtime, link target, content hash. */
const LISTING = `cd /workspace && find . -print0 | sort -z | while IFS= read -r -d '' p; do
  ${ENTRY_LINE}
done`;

suite('mirror: the box tar and the archive API leave the same tree (real engine, node and busybox images)', function () {
  this.timeout(240_000);
  let engine: DockerEngine | undefined;
  const ownerId = testOwnerId('mirror-paths');
  const folders: string[] = [];

  suiteSetup(async () => {
    engine = await connectTestEngine();
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
    for (const folder of folders) {
      chmodSync(path.join(folder, 'ro-dir'), 0o700);
      chmodSync(path.join(folder, 'ro-dir', 'deeper'), 0o700);
      rmSync(folder, { recursive: true, force: true });
    }
  });

  async function mirror(image: string, mirrorWith: 'box-tar' | 'archive'): Promise<{ listing: string; log: string[] }> {
    const folder = makeWorkspace();
    folders.push(folder);
    const log: string[] = [];
    const settings = testSettings({ image, idleTimeoutMinutes: 0 });
    const session = await BoxSession.open(
      { engine: engine!, settings, folder, ownerId, env: [], log: (l) => log.push(l), mirrorWith },
      () => undefined,
    );
    try {
      // bash (node image) for read -d; busybox sh has none, so the busybox image lists one name a line.
      const listed = await session.exec(
        { command: image === TEST_IMAGES.busybox ? BUSYBOX_LISTING : `bash -c ${shellQuote(LISTING)}`, runId: 'list' },
        () => undefined,
      );
      assert.equal(listed.exitCode, 0, listed.stderr);
      assert.deepEqual((await session.collect()).changes, [], `${mirrorWith} in ${image}: a first collect finds nothing changed`);
      return { listing: listed.stdout, log };
    } finally {
      await session.remove().catch(() => undefined);
    }
  }

  test('the first run after the mirror takes its scan while the watch saw nothing; a host edit right after the mirror still reaches the box', async () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'as-mirror-scan-'));
    mkdirSync(path.join(folder, 'sub'));
    writeFileSync(path.join(folder, 'a.txt'), 'one\n');
    writeFileSync(path.join(folder, 'sub', 'b.txt'), 'bee\n');
    const settings = testSettings({ image: TEST_IMAGES.node, idleTimeoutMinutes: 0 });
    // Watched from before the mirror's scan, as the engine server opens boxes.
    const watch = new WorkspaceWatch(folder);
    const session = await BoxSession.open({ engine: engine!, settings, folder, ownerId, env: [], log: () => undefined, watch }, () => undefined);
    const run = (command: string) => session.exec({ command, runId: `r${Date.now()}` }, () => undefined);
    try {
      const first = await run('cat a.txt sub/b.txt');
      assert.equal(first.stdout, 'one\nbee\n', first.stderr);
      assert.deepEqual(first.caughtUp, []);
      assert.equal(session.hostScans, 0, 'no rescan: the mirror scanned the unchanged workspace');
      appendFileSync(path.join(folder, 'sub', 'b.txt'), 'two\n');
      const second = await run('cat sub/b.txt');
      assert.equal(second.stdout, 'bee\ntwo\n', second.stderr);
      assert.deepEqual(second.caughtUp, ['sub/b.txt']);
      assert.equal(session.hostScans, 1, 'the edit caused a rescan');
    } finally {
      await session.remove().catch(() => undefined);
      rmSync(folder, { recursive: true, force: true });
    }
  });

  for (const image of [TEST_IMAGES.node, TEST_IMAGES.busybox]) {
    test(`${image}: same owners, modes, mtimes, contents, names and links either way`, async () => {
      const viaTar = await mirror(image, 'box-tar');
      const viaArchive = await mirror(image, 'archive');
      assert.equal(viaTar.listing, viaArchive.listing);
      assert.ok(!viaTar.log.some((l) => l.includes('has no tar')), 'the box tar was used');
      // The listing really holds what the workspace has (so two empty listings could not agree).
      for (const expected of [
        '500 1000:1000 directory ./ro-dir\n',
        '555 1000:1000 directory ./ro-dir/deeper\n',
        '1777 1000:1000 directory ./sticky\n',
        '444 1000:1000 regular file 10 1600000000',
        '755 1000:1000 regular file 18 1600000000',
        '777 1000:1000 symbolic link -> plain.txt ./link-to-plain\n',
      ]) {
        assert.ok(viaTar.listing.includes(expected), `${expected} in\n${viaTar.listing}`);
      }
      const newline = image === TEST_IMAGES.busybox ? ['(part) ./odd names/new\n', '(part) line.txt\n'] : [' ./odd names/new\nline.txt\n'];
      for (const part of newline) assert.ok(viaTar.listing.includes(part), viaTar.listing);
      assert.ok(viaTar.listing.includes(`${'long-name-'.repeat(12)}/${'é'.repeat(70)}.txt`), viaTar.listing);
    });
  }
});

/** `LISTING` for busybox sh: names come one a line (the newline name then spans two, the same either way). */
const BUSYBOX_LISTING = `cd /workspace && find . | sort | while IFS= read -r p; do
  [ -e "$p" ] || [ -L "$p" ] || { printf '(part) %s\\n' "$p"; continue; }
  ${ENTRY_LINE}
done`;
