import * as assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import type { ManifestEntry } from '../../../src/core/workspace/manifest';
import { SyncFilter } from '../../../src/core/workspace/syncFilter';
import { scanWorkspace } from '../../../src/core/workspace/workspaceScan';
import { packWorkspace } from '../../../src/core/workspace/workspaceTar';
import { makeTempDir, removeDir, writeTree } from '../../builders/trees';

/**
 * A large tree's file entries must share one hidden class: an entry built by a spread in a hot loop gets a map
 * of its own once V8's inline cache gives up (measured: 50k maps, descriptor and property arrays, ~15 MiB of
 * the engine server's heap on the 50k-file workspace). V8's own `%HaveSameMap` answers, not a guess.
 */
suite('manifest entries share one hidden class (server memory on large trees)', () => {
  let root: string;
  let haveSameMap: (a: object, b: object) => boolean;

  suiteSetup(async () => {
    v8.setFlagsFromString('--allow-natives-syntax');
    haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as typeof haveSameMap;
    v8.setFlagsFromString('--no-allow-natives-syntax');
    root = await makeTempDir('shapes');
    const tree: Record<string, string> = {};
    for (let i = 0; i < 300; i++) tree[`d${i % 7}/f${i}.txt`] = `file ${i}\n`;
    await writeTree(root, tree);
  });

  suiteTeardown(async () => {
    await removeDir(root);
  });

  /** A field's representation may change once (an integer mtime, then a fractional one): a few maps, not one per entry. */
  const FEW = 3;
  const distinctMaps = (entries: ManifestEntry[]): number => {
    const representatives: ManifestEntry[] = [];
    for (const entry of entries) if (!representatives.some((r) => haveSameMap(r, entry))) representatives.push(entry);
    return representatives.length;
  };

  test('the control: objects spread from an entry in a loop get maps of their own', () => {
    const base: ManifestEntry = { path: 'a', type: 'file', mode: 0o644, size: 1, mtimeMs: 1.5, ctimeMs: 2.5, ino: 3 };
    const spread = Array.from({ length: 300 }, (_, i) => ({ ...base, path: `p${i}`, hash: `h${i}`, mtimeMs: i + 0.5 }));
    assert.ok(distinctMaps(spread) > 10 * FEW, 'if V8 ever shares these maps, this test no longer shows anything');
  });

  test('the scan (hashed and lstat-only) and the packed entries each make file entries of one shape', async () => {
    const filter = await SyncFilter.create(root, { exclude: [], useGitignore: false });
    const files = (m: Map<string, ManifestEntry>) => [...m.values()].filter((e) => e.type === 'file');
    const hashed = files(await scanWorkspace(root, filter));
    const listed = await scanWorkspace(root, filter, { hashFiles: false });
    const rescanned = files(await scanWorkspace(root, filter, { previous: new Map(hashed.map((e) => [e.path, e])) }));
    assert.equal(hashed.length, 300);
    assert.ok(distinctMaps(hashed) <= FEW, `${distinctMaps(hashed)} maps`);
    assert.ok(distinctMaps(files(listed)) <= FEW, `${distinctMaps(files(listed))} maps`);
    assert.ok(distinctMaps(rescanned) <= FEW, `${distinctMaps(rescanned)} maps`);

    const sent: ManifestEntry[] = [];
    const tar = packWorkspace(root, listed.values(), { uid: 1000, gid: 1000, onEntry: (e) => sent.push(e) });
    for await (const chunk of tar) void chunk;
    const sentFiles = sent.filter((e) => e.type === 'file');
    assert.equal(sentFiles.length, 300);
    assert.ok(distinctMaps(sentFiles) <= FEW, `${distinctMaps(sentFiles)} maps`);
  });
});
