import * as assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pendingReviewOf, restoreArchive, restorePlan, ReviewPersistence } from '../../../src/core/session/pendingReview';
import { ReviewStore } from '../../../src/core/review/reviewStore';
import { change, changeSet, dir, file, link, manifest } from '../../builders/entries';
import { makeTempDir, readTar, removeDir } from '../../builders/trees';

/** A review of: a.txt modified, gone.txt deleted, old.txt renamed to sub/new.txt, ln a new symlink. */
function collected() {
  const baseline = manifest(file('a.txt', 'one'), file('gone.txt', 'bye'), file('old.txt', 'moved'), dir('sub', 0o700), file('same.txt', 'x'));
  const tree = {
    entries: manifest(file('a.txt', 'two'), file('sub/new.txt', 'moved'), dir('sub', 0o700), link('ln', 'a.txt'), file('same.txt', 'x')),
    contents: new Map([
      ['a.txt', Buffer.from('two')],
      ['sub/new.txt', Buffer.from('moved')],
    ]),
    refused: [],
    ignored: [],
  };
  const changes = changeSet([
    change('a.txt', 'modified'),
    change('gone.txt', 'deleted'),
    change('sub/new.txt', 'renamed', { fromPath: 'old.txt' }),
    change('ln', 'added', { type: 'symlink' }),
  ]);
  return { baseline, collected: { changeSet: changes, tree, baseContents: new Map([['a.txt', Buffer.from('one')]]) } };
}

suite('pending review: what survives a reload, and how a new box gets it back', () => {
  test('the review holds exactly the changed paths and rename sources: their baseline and box entries and contents', () => {
    const { baseline, collected: c } = collected();
    const review = pendingReviewOf(c, baseline);
    assert.deepEqual([...review.baseline.keys()].sort(), ['a.txt', 'gone.txt', 'old.txt']);
    assert.deepEqual([...review.boxEntries.keys()].sort(), ['a.txt', 'ln', 'sub/new.txt']);
    assert.deepEqual([...review.contents.keys()].sort(), ['a.txt', 'sub/new.txt']);
    assert.equal(review.baseContents.get('a.txt')?.toString(), 'one');
    assert.equal(review.baseline.has('same.txt'), false);
  });

  test('restoring removes deletions and rename sources, writes the rest, and gives back the old baseline of each path', async () => {
    const { baseline, collected: c } = collected();
    const plan = await restorePlan(pendingReviewOf(c, baseline), async () => undefined);
    assert.deepEqual(plan.remove.sort(), ['gone.txt', 'old.txt']);
    assert.deepEqual(plan.write.map((w) => w.entry.path).sort(), ['a.txt', 'ln', 'sub/new.txt']);
    assert.equal(plan.write.find((w) => w.entry.path === 'a.txt')?.content?.toString(), 'two');
    assert.equal(plan.baseline.get('old.txt')?.hash, baseline.get('old.txt')?.hash);
    assert.ok(plan.baseline.has('ln') && plan.baseline.get('ln') === undefined, 'a path absent from the old baseline is restored as absent');
    assert.deepEqual(plan.lost, []);
  });

  test("a file whose content was not kept comes from the workspace only when it still has the box's hash; else it is lost, not guessed", async () => {
    const { baseline, collected: c } = collected();
    const review = pendingReviewOf(c, baseline);
    review.contents.delete('a.txt');
    const asked: string[] = [];
    const fromWorkspace = await restorePlan(review, async (p, hash) => {
      asked.push(p);
      return hash === file('a.txt', 'two').hash ? Buffer.from('two') : undefined;
    });
    assert.deepEqual(asked, ['a.txt']);
    assert.equal(fromWorkspace.write.find((w) => w.entry.path === 'a.txt')?.content?.toString(), 'two');
    const lost = await restorePlan(review, async () => undefined);
    assert.deepEqual(lost.lost, ['a.txt']);
    assert.equal(
      lost.write.some((w) => w.entry.path === 'a.txt'),
      false,
    );
  });

  test('the restore archive is owned by the box user and makes parent directories in the mode known for them', async () => {
    const { baseline, collected: c } = collected();
    const plan = await restorePlan(pendingReviewOf(c, baseline), async () => undefined);
    const entries = await readTar(restoreArchive(plan.write, (d) => (d === 'sub' ? 0o700 : undefined)));
    const byName = new Map(entries.map((e) => [e.header.name.replace(/\/$/, ''), e]));
    assert.equal(byName.get('sub')?.header.type, 'directory');
    assert.equal(byName.get('sub')?.header.mode, 0o700);
    assert.equal(byName.get('sub/new.txt')?.content.toString(), 'moved');
    assert.equal(byName.get('ln')?.header.linkname, 'a.txt');
    for (const e of entries) assert.equal(e.header.uid, 1000, e.header.name);
    assert.ok(
      entries.findIndex((e) => e.header.name.replace(/\/$/, '') === 'sub') < entries.findIndex((e) => e.header.name === 'sub/new.txt'),
      'a parent comes before its child',
    );
  });

  test('persistence saves a review with pending changes and clears the folder once nothing is pending; a store failure is logged, not thrown', async () => {
    const storage = await makeTempDir('review-persistence');
    try {
      const store = new ReviewStore(storage);
      const lines: string[] = [];
      const persistence = new ReviewPersistence(store, '/w', (l) => lines.push(l));
      const { baseline, collected: c } = collected();
      await persistence.save(pendingReviewOf(c, baseline));
      assert.equal((await store.load('/w'))?.changeSet.changes.length, 4);
      await persistence.save(pendingReviewOf({ ...c, changeSet: changeSet([]) }, baseline));
      assert.equal(await store.load('/w'), undefined);
      // A storage path that is a file: every write under it fails (ENOTDIR).
      const notADirectory = path.join(storage, 'a-file');
      await fs.writeFile(notADirectory, '');
      const broken = new ReviewPersistence(new ReviewStore(notADirectory), '/w', (l) => lines.push(l));
      await broken.save(pendingReviewOf(c, baseline));
      assert.match(lines.join('\n'), /could not persist the pending review of \/w\b/);
    } finally {
      await removeDir(storage);
    }
  });
});
