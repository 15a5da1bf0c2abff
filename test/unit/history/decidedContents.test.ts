import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DECIDED_MAX_FILE_BYTES, DecidedContents } from '../../../src/core/history/decidedContents';

/** Every file under `dir`, relative, with its mode. */
function filesUnder(dir: string): { rel: string; mode: number }[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((rel) => fs.statSync(path.join(dir, rel)).isFile())
    .map((rel) => ({ rel, mode: fs.statSync(path.join(dir, rel)).mode & 0o777 }));
}

suite('History: decided contents', () => {
  let dir: string;
  setup(() => {
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'agent-sandbox-decided-')), 'decided');
  });
  teardown(() => {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  test('keeps the proposed side at run end and the decided side at the decision; deletions are null', async () => {
    const contents = new DecidedContents(dir, 1024 * 1024);
    assert.equal(await contents.putProposed('run-1', 'src/a.txt', 'from the box\n'), true);
    assert.deepEqual(await contents.get('run-1', 'src/a.txt'), { path: 'src/a.txt', proposed: 'from the box\n' });
    assert.equal(await contents.putDecided('run-1', 'src/a.txt', 'mine\n'), true);
    assert.deepEqual(await contents.get('run-1', 'src/a.txt'), { path: 'src/a.txt', proposed: 'from the box\n', decided: 'mine\n' });
    await contents.putProposed('run-1', 'gone.txt', null);
    await contents.putDecided('run-1', 'gone.txt', null);
    assert.deepEqual(await contents.get('run-1', 'gone.txt'), { path: 'gone.txt', proposed: null, decided: null });
    assert.equal(await contents.get('run-2', 'src/a.txt'), undefined, 'per run');
    assert.equal(await contents.putDecided('run-2', 'src/a.txt', 'x'), false, 'no decided side without a kept proposal');
  });

  test('names on disk are hashes (no recorded path or run id reaches the file system) and files are 0600', async () => {
    const contents = new DecidedContents(dir, 1024 * 1024);
    await contents.putProposed('../../escape', '../../../etc/passwd', 'x');
    const files = filesUnder(dir);
    assert.equal(files.length, 1);
    assert.match(files[0].rel, /^[0-9a-f]{32}[/\\][0-9a-f]{32}\.json$/);
    assert.equal(files[0].mode, 0o600);
    assert.equal(fs.readdirSync(path.dirname(dir)).length, 1, 'nothing was written outside the folder');
    assert.equal((await contents.get('../../escape', '../../../etc/passwd'))?.proposed, 'x');
  });

  test('a side larger than the limit is not kept, and a too-large decision drops the stale decided side', async () => {
    const contents = new DecidedContents(dir, 1024 * 1024);
    const big = 'x'.repeat(DECIDED_MAX_FILE_BYTES + 1);
    assert.equal(await contents.putProposed('run', 'big.txt', big), false);
    assert.equal(await contents.get('run', 'big.txt'), undefined);
    await contents.putProposed('run', 'small.txt', 'a');
    await contents.putDecided('run', 'small.txt', 'b');
    assert.equal(await contents.putDecided('run', 'small.txt', big), false);
    assert.deepEqual(await contents.get('run', 'small.txt'), { path: 'small.txt', proposed: 'a' });
  });

  test('prune removes the runs that left the history, then the oldest runs beyond the byte budget', async () => {
    const contents = new DecidedContents(dir, 1024 * 1024);
    for (const run of ['old', 'mid', 'new', 'gone']) await contents.putProposed(run, 'f.txt', `${run}\n`.repeat(100));
    await contents.prune(['new', 'mid', 'old']);
    assert.equal(await contents.get('gone', 'f.txt'), undefined, 'a run no longer in the history loses its contents');
    assert.ok(await contents.get('old', 'f.txt'));
    const oneRun = filesUnder(dir).map((f) => fs.statSync(path.join(dir, f.rel)).size)[0];
    contents.setMaxBytes(oneRun * 2 + 10);
    await contents.prune(['new', 'mid', 'old']);
    assert.ok(await contents.get('new', 'f.txt'));
    assert.ok(await contents.get('mid', 'f.txt'));
    assert.equal(await contents.get('old', 'f.txt'), undefined, 'the oldest run goes first');
    await contents.clear();
    assert.deepEqual(filesUnder(dir), []);
  });
});
