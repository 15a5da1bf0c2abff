// Issue 11, item 3: host data must not reach the box past the deny-list. Each case is a real attempt against
// the real engine: a workspace on the host that tries to carry a secret in (a race that swaps a directory for
// a link out of the workspace while the mirror and catch-up read it; history in .git; credential files the
// deny-list missed), mirrored exactly as the product does, then searched for from inside the box. Controls
// show the attempt reaches the secret where the defence is absent, so each case can fail.
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, promises as fs, openSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BOX_GID, BOX_UID } from '../../src/core/box/boxConfig';
import { type Box } from '../../src/core/box/box';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { BoxSession } from '../../src/core/session/boxSession';
import { SyncFilter } from '../../src/core/workspace/syncFilter';
import { scanWorkspace } from '../../src/core/workspace/workspaceScan';
import { packWorkspace } from '../../src/core/workspace/workspaceTar';
import type { BoxSettings } from '../../src/shared/protocol';
import { TEST_IMAGES, connectTestEngine, removeEverythingOwnedBy, sh, shOk, testOwnerId, testSettings } from '../engine/engineHarness';
import { CREDENTIAL_FILE_SAMPLES, hostGit, writeTree } from '../builders/trees';

let engine: DockerEngine | undefined;
const ownerId = testOwnerId('host-leaks');
const temps: string[] = [];

async function tempDir(label: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `as-leaks-${label}-`));
  temps.push(dir);
  return dir;
}

function openSession(folder: string, settings: Partial<BoxSettings> = {}): Promise<BoxSession> {
  return BoxSession.open({ engine: engine!, settings: testSettings(settings), folder, ownerId, env: [], log: () => undefined }, () => undefined);
}

/** Paths in the box's /workspace whose content holds `marker` (grep -r, so also in .git objects' plain text). */
async function boxFilesWith(box: Box, marker: string): Promise<string[]> {
  const result = await sh(box, `grep -rl -- '${marker}' /workspace 2>/dev/null; true`);
  return result.stdout.split('\n').filter(Boolean);
}

suiteSetup(async function () {
  this.timeout(60_000);
  engine = await connectTestEngine();
});

suiteTeardown(async function () {
  this.timeout(60_000);
  await removeEverythingOwnedBy(engine, ownerId);
  for (const dir of temps) await fs.rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------
// The race: a directory of the workspace swapped for a symlink out of it between the scan and the read.

const RACE_FILES = 120;

/**
 * A workspace whose `dir/` holds files named like those of an outside folder (whose content is a marker), a
 * parked link `link -> outside`, and a child process that swaps `dir` with that link as fast as it can, with
 * renames (each atomic), so at any moment `dir` is either the real directory or the link.
 */
async function makeRaceArena(): Promise<{ folder: string; marker: string; swapper: ChildProcess; stop(): Promise<number> }> {
  const parent = await tempDir('race');
  const folder = path.join(parent, 'workspace');
  const outside = path.join(parent, 'outside');
  const marker = `OUTSIDE-SECRET-${randomBytes(6).toString('hex')}`;
  const inside: Record<string, string> = { 'README.md': 'readme\n' };
  const secret: Record<string, string> = {};
  for (let i = 0; i < RACE_FILES; i++) {
    const name = `f${String(i).padStart(3, '0')}.txt`;
    inside[`dir/${name}`] = `inside ${i}\n`;
    secret[name] = `${marker} ${i}\n`;
  }
  await writeTree(folder, inside);
  await writeTree(outside, secret);
  await fs.symlink(outside, path.join(folder, 'link'));
  const script = `
    const fs = require('fs'); const path = require('path');
    const d = path.join(process.argv[1], 'dir'), l = path.join(process.argv[1], 'link'), p = path.join(process.argv[1], 'parked');
    let swaps = 0, stop = false;
    process.on('SIGTERM', () => { stop = true; });
    const loop = () => {
      for (let i = 0; i < 200 && !stop; i++) {
        fs.renameSync(d, p); fs.renameSync(l, d);   // dir is now the link out
        fs.renameSync(d, l); fs.renameSync(p, d);   // dir is the real directory again
        swaps++;
      }
      if (stop) { process.stdout.write(String(swaps)); process.exit(0); }
      setImmediate(loop);
    };
    loop();`;
  const swapper = spawn(process.execPath, ['-e', script, folder], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  swapper.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number>((resolve) => swapper.once('exit', () => resolve(Number(output) || 0)));
  return {
    folder,
    marker,
    swapper,
    stop: async () => {
      swapper.kill('SIGTERM');
      return exited;
    },
  };
}

suite('host leaks: a directory swapped for a link out of the workspace while it is mirrored (race)', () => {
  test('under a tight swap loop, mirror and catch-up never send the outside files; control: a naive O_NOFOLLOW read of the same paths does read them', async function () {
    this.timeout(420_000);
    const arena = await makeRaceArena();
    let stopped = false;
    try {
      const filter = await SyncFilter.create(arena.folder, { exclude: [], useGitignore: false });
      // Control first, same loop and paths: opening each scanned file by path with O_NOFOLLOW (the old code)
      // follows a swapped `dir` and reads the outside marker.
      let naiveLeaks = 0;
      for (let round = 0; round < 200 && naiveLeaks === 0; round++) {
        const manifest = await scanWorkspace(arena.folder, filter, { hashFiles: false });
        for (const entry of manifest.values()) {
          if (entry.type !== 'file' || !entry.path.startsWith('dir/')) continue;
          try {
            const fd = openSync(path.join(arena.folder, ...entry.path.split('/')), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
            try {
              if (readFileSync(fd, 'utf8').includes(arena.marker)) naiveLeaks++;
            } finally {
              closeSync(fd);
            }
          } catch {
            // Renamed away at that instant.
          }
        }
      }
      assert.ok(naiveLeaks > 0, 'control: the swap loop never made a naive read follow the link, so the race was not exercised');

      // The product's mirror (BoxSession.open: scan, pack, putArchive), then catch-ups while the loop runs.
      const session = await openSession(arena.folder);
      let refusedByOpener = 0;
      // Then scan + pack + putArchive rounds (what the mirror does), counting the entries the opener refused
      // mid-race: the opener opens `dir` once per round and reads every file through that fd, so a round whose
      // scan saw the directory either refuses all of dir/ (the link was there) or sends the real files.
      // At least 25 rounds, and on until the race was hit (about one round in ten here: the scan must see the
      // directory and the pack then meet the link); 400 rounds without a hit fail below.
      let rounds = 0;
      for (let round = 0; round < 400 && (round < 25 || refusedByOpener === 0); round++, rounds++) {
        const manifest = await scanWorkspace(arena.folder, filter, { hashFiles: false });
        const tar = packWorkspace(arena.folder, manifest.values(), {
          uid: BOX_UID,
          gid: BOX_GID,
          onSkipped: (_relPath, reason) => {
            if (/ELOOP|ENOTDIR/.test(reason)) refusedByOpener++;
          },
        });
        await session.box.putArchive(tar, { path: '/workspace' });
        // Catch-up packs what changed since the last scan through the same opener; a few rounds (each can
        // check 120 paths in the box one by one, seconds on a busy machine).
        if (round < 3) await session.catchUp();
      }
      const swaps = await arena.stop();
      stopped = true;
      const leaked = await boxFilesWith(session.box, arena.marker);
      assert.deepEqual(leaked, [], `outside files reached the box: ${leaked.join(', ')}`);
      assert.ok(refusedByOpener > 0, `the race was never hit during packing (${rounds} rounds, ${swaps} swaps): the test proved nothing`);
      // The box did get the real directory's files at some point: the mirror works under the race.
      assert.match(await shOk(session.box, 'cat /workspace/README.md'), /readme/);
      this.test!.title += ` [${rounds} rounds, ${swaps} swaps, ${refusedByOpener} entries refused mid-race, naive control leaked ${naiveLeaks}]`;
    } finally {
      if (!stopped) await arena.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// History: secrets that were committed or stashed once, and credentials in git configs.

interface HistoryFixture {
  folder: string;
  /** Each secret's marker; none may be readable in a fresh box. */
  secrets: { envInHistory: string; stash: string; remoteToken: string; nestedEnv: string; nestedSmtp: string };
  headSubject: string;
}

/**
 * A repository whose HEAD~1 committed `.env` (HEAD removed it; it is still on disk, deny-listed), with a stash
 * holding a secret, a remote URL with a token, and a nested repository `vendor/lib` with its own `.env` in
 * history and `sendemail.smtpPass` in its config.
 */
async function makeHistoryFixture(): Promise<HistoryFixture> {
  const folder = await tempDir('history');
  const tag = randomBytes(5).toString('hex');
  const secrets = {
    envInHistory: `ENV-IN-HISTORY-${tag}`,
    stash: `STASHED-SECRET-${tag}`,
    remoteToken: `ghp_${'T'.repeat(26)}${tag}`,
    nestedEnv: `NESTED-ENV-${tag}`,
    nestedSmtp: `NESTED-SMTP-${tag}`,
  };
  const headSubject = 'Stop tracking .env';
  await writeTree(folder, { 'README.md': '# demo\n', 'src/app.js': 'console.log(1);\n', '.env': `API_KEY=${secrets.envInHistory}\n` });
  hostGit(folder, 'init', '-q');
  hostGit(folder, 'add', '-A');
  hostGit(folder, 'commit', '-q', '-m', 'First commit, .env included by mistake');
  hostGit(folder, 'rm', '-q', '--cached', '.env');
  await writeTree(folder, { '.gitignore': '.env\n' });
  hostGit(folder, 'add', '-A');
  hostGit(folder, 'commit', '-q', '-m', `${headSubject}\n\nIt holds the API key.`);
  await writeTree(folder, { 'src/app.js': `console.log("${secrets.stash}");\n` });
  hostGit(folder, 'stash', '-q');
  hostGit(folder, 'remote', 'add', 'origin', `https://bob:${secrets.remoteToken}@github.com/o/r.git`);

  const nested = path.join(folder, 'vendor', 'lib');
  await writeTree(nested, { 'index.js': 'module.exports = 1;\n', '.env': `TOKEN=${secrets.nestedEnv}\n` });
  hostGit(nested, 'init', '-q');
  hostGit(nested, 'add', '-A');
  hostGit(nested, 'commit', '-q', '-m', 'lib with its env');
  hostGit(nested, 'rm', '-q', '.env');
  hostGit(nested, 'commit', '-q', '-m', 'lib without its env');
  hostGit(nested, 'config', 'sendemail.smtpPass', secrets.nestedSmtp);
  return { folder, secrets, headSubject };
}

suite('host leaks: git history and git configs (agentSandbox.gitHistory)', () => {
  test('"fresh" (default): no secret of history, stash, remotes or a nested repository is readable in the box; git status is clean, log -1 shows HEAD, an agent edit shows in git diff and the box .git is never pending', async function () {
    this.timeout(180_000);
    const fixture = await makeHistoryFixture();
    const session = await openSession(fixture.folder, { image: TEST_IMAGES.node });
    const box = session.box;
    assert.equal(session.info.git, 'fresh');
    assert.equal(session.info.gitNote, undefined);

    const attempts = await sh(
      box,
      'cd /workspace && git show HEAD~1:.env; git stash list; git stash show -p; git log --all -p; git reflog; git show-ref; ' +
        'cd vendor/lib && git show HEAD~1:.env; git log --all -p; git config --list',
    );
    for (const [name, marker] of Object.entries(fixture.secrets)) {
      assert.ok(!`${attempts.stdout}${attempts.stderr}`.includes(marker), `${name} readable through git in the box`);
      assert.deepEqual(await boxFilesWith(box, marker), [], `${name} is in a file of the box`);
    }
    // Nothing of the host's repository beyond HEAD: one commit, one ref, no stash, no hooks.
    assert.equal((await shOk(box, 'cd /workspace && git rev-list --all | wc -l')).trim(), '1');
    assert.equal((await shOk(box, 'cd /workspace && git show-ref')).trim().split('\n').length, 1);
    assert.equal((await sh(box, 'test -e /workspace/.git/hooks || test -e /workspace/.git/refs/stash')).exitCode, 1);

    // What agents need still works.
    assert.equal(await shOk(box, 'cd /workspace && git status --porcelain'), '');
    assert.equal((await shOk(box, 'cd /workspace && git log -1 --format=%s%n%an')).trim(), `${fixture.headSubject}\nAda Lovelace`);
    assert.equal((await shOk(box, 'cd /workspace && git branch --show-current')).trim(), 'main');
    assert.equal((await shOk(box, 'cd /workspace && git remote get-url origin')).trim(), 'https://github.com/o/r.git');
    assert.equal((await shOk(box, 'cd /workspace/vendor/lib && git log -1 --format=%s && git status --porcelain')).trim(), 'lib without its env');
    await shOk(box, 'cd /workspace && echo "console.log(2);" >> src/app.js');
    assert.match(await shOk(box, 'cd /workspace && git diff'), /^\+console\.log\(2\);$/m);

    // The box's .git is its own: never pending; the host's .git is never caught up.
    const changes = await session.collect();
    assert.deepEqual(
      changes.changes.map((c) => c.path),
      ['src/app.js'],
    );
    assert.deepEqual(changes.refused, []);
    hostGit(fixture.folder, 'commit', '-q', '--allow-empty', '-m', 'a host commit after the mirror');
    await writeTree(fixture.folder, { 'host-edit.txt': 'edited on the host\n' });
    const caughtUp = await session.catchUp();
    assert.deepEqual(caughtUp.sent, ['host-edit.txt']);
    assert.equal((await shOk(box, 'cd /workspace && git rev-list --all | wc -l')).trim(), '1');
  });

  test('control "full": the whole .git enters, so the secret of HEAD~1 and the stash are readable (the test can see them); remotes and nested configs are still sanitized', async function () {
    this.timeout(180_000);
    const fixture = await makeHistoryFixture();
    const session = await openSession(fixture.folder, { image: TEST_IMAGES.node, gitHistory: 'full' });
    assert.equal(session.info.git, 'full');
    assert.match(await shOk(session.box, 'cd /workspace && git show HEAD~1:.env'), new RegExp(fixture.secrets.envInHistory));
    assert.match(await shOk(session.box, 'cd /workspace && git stash show -p'), new RegExp(fixture.secrets.stash));
    assert.match(await shOk(session.box, 'cd /workspace/vendor/lib && git show HEAD~1:.env'), new RegExp(fixture.secrets.nestedEnv));
    assert.deepEqual(await boxFilesWith(session.box, fixture.secrets.remoteToken), []);
    assert.deepEqual(await boxFilesWith(session.box, fixture.secrets.nestedSmtp), []);
    assert.equal((await shOk(session.box, 'cd /workspace && git remote get-url origin')).trim(), 'https://github.com/o/r.git');
  });

  test('an image without git ("fresh"): the box gets no .git, and runs say so', async function () {
    this.timeout(120_000);
    const fixture = await makeHistoryFixture();
    const session = await openSession(fixture.folder, { image: TEST_IMAGES.busybox });
    assert.equal(session.info.git, 'none');
    assert.match(session.info.gitNote ?? '', /no git/);
    assert.equal((await sh(session.box, 'find /workspace -name .git | grep .')).exitCode, 1);
    const result = await session.exec({ command: 'true', runId: 'git-note' }, () => undefined);
    assert.match(result.gitNote ?? '', /no git/);
    for (const marker of Object.values(fixture.secrets)) assert.deepEqual(await boxFilesWith(session.box, marker), []);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Credential files the deny-list used to miss.

suite('host leaks: credential files and URLs past the deny-list', () => {
  test('.vault-token, *.tfvars, *.tfstate, kubeconfig, service-account*.json, .boto, .s3cfg, secrets.y*ml never enter the box, .gitmodules URLs lose their credentials; control: the same marker in an ordinary file does', async function () {
    this.timeout(120_000);
    const folder = await tempDir('denylist');
    const marker = `CREDENTIAL-${randomBytes(5).toString('hex')}`;
    const credentialFiles = CREDENTIAL_FILE_SAMPLES;
    await writeTree(folder, {
      ...Object.fromEntries(credentialFiles.map((p) => [p, `${marker} ${p}\n`])),
      'control.txt': `${marker} control\n`,
      '.gitmodules': `[submodule "lib"]\n\tpath = lib\n\turl = https://oauth2:glpat-${marker}@gitlab.com/o/lib.git\n`,
    });
    const session = await openSession(folder);
    assert.deepEqual(await boxFilesWith(session.box, marker), ['/workspace/control.txt'], 'only the control file holds the marker');
    const listed = (await shOk(session.box, 'cd /workspace && find . -type f | sort')).split('\n').filter(Boolean);
    for (const p of credentialFiles) assert.ok(!listed.includes(`./${p}`), `${p} reached the box`);
    assert.equal(await shOk(session.box, 'cat /workspace/.gitmodules'), '[submodule "lib"]\n\tpath = lib\n\turl = https://gitlab.com/o/lib.git\n');
  });
});
