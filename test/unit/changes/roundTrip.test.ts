import * as assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { readBoxTree } from '../../../src/core/changes/boxTree';
import { computeChangeSet } from '../../../src/core/changes/changeSet';
import type { Manifest } from '../../../src/core/workspace/manifest';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { scanWorkspace } from '../../../src/core/workspace/workspaceScan';
import { packWorkspace } from '../../../src/core/workspace/workspaceTar';
import { makeTempDir, removeDir, writeTree } from '../../builders/trees';

suite('mirror → collect round trip', () => {
  test('what packWorkspace sends, readBoxTree reads back with no changes against the onEntry baseline', async () => {
    const root = await makeTempDir('roundtrip');
    try {
      await writeTree(root, {
        'src/index.ts': 'export const x = 1;\n',
        'bin/tool': '#!/bin/sh\n',
        empty: null,
        '.git/config': '[remote "o"]\n\turl = https://u:secret@h/r.git\n',
        '.env': 'SECRET=1',
        [`${'long-directory-name/'.repeat(8)}file.txt`]: 'deep',
      });
      await fs.chmod(path.join(root, 'bin/tool'), 0o755);
      await fs.symlink('../src/index.ts', path.join(root, 'bin/link'));
      const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
      const scanned = await scanWorkspace(root, filter);
      const baseline: Manifest = new Map();
      const tar = packWorkspace(root, scanned.values(), { uid: 1000, gid: 1000, onEntry: (e) => baseline.set(e.path, e) });
      // The box is read only after mirroring finished, so the baseline is complete by then.
      const chunks: Buffer[] = [];
      for await (const chunk of tar) {
        chunks.push(chunk as Buffer);
      }
      const tree = await readBoxTree(Readable.from([Buffer.concat(chunks)]), { prefix: '', baseline, filter });
      assert.deepEqual(tree.refused, []);
      assert.deepEqual(tree.ignored, []);
      assert.equal(tree.contents.size, 0, 'nothing differs, so no content is held');
      assert.deepEqual([...tree.entries.keys()].sort(), [...baseline.keys()].sort());
      assert.ok(!baseline.has('.env'));
      const set = computeChangeSet(root, baseline, tree);
      assert.deepEqual(set.changes, []);
    } finally {
      await removeDir(root);
    }
  });
});
