import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { LISTING_SCRIPT, parseBoxListing, stampOf, stampRecordable } from '../../../src/core/changes/boxListing';
import { SandboxError } from '../../../src/core/errors';
import { listingBytes } from '../../builders/listing';

suite('boxListing: parsing the box listing', () => {
  test('the listing script is valid POSIX shell', () => {
    const checked = spawnSync('sh', ['-n', '-c', LISTING_SCRIPT], { encoding: 'utf8' });
    assert.equal(checked.status, 0, checked.stderr);
  });

  test('reads type, mode, size, inode, links, times, path and symlink target of each record', () => {
    const listing = parseBoxListing(
      listingBytes([
        { head: 'd 755 4096 11 2 1699999990.1234567890 1699999990.0000000000 /workspace/src' },
        { head: 'f 4755 12 12 1 1699999991.0000000000 946684800.0000000000 /workspace/src/a.txt' },
        { head: 'l 777 5 13 1 1699999992.5000000000 1699999992.5000000000 /workspace/link', target: 'a b\nc' },
      ]),
    );
    assert.equal(listing.clockBeforeMs, 1700000000500);
    assert.equal(listing.clockAfterMs, 1700000001250);
    assert.deepEqual(
      listing.entries.map((e) => [e.path, e.kind, e.mode.toString(8), e.size, e.inode, e.nlink, e.ctime, e.linkTarget]),
      [
        ['src', 'd', '755', 4096, '11', 2, '1699999990.1234567890', ''],
        ['src/a.txt', 'f', '4755', 12, '12', 1, '1699999991.0000000000', ''],
        ['link', 'l', '777', 5, '13', 1, '1699999992.5000000000', 'a b\nc'],
      ],
    );
    assert.equal(listing.entries[1].mtimeMs, 946684800000);
    assert.equal(listing.fineTimes, true);
    assert.equal(listing.mappingsUnknown, false);
  });

  test('names with spaces, newlines and bytes that are not UTF-8 come through whole (the latter marked by U+FFFD)', () => {
    const odd = Buffer.concat([Buffer.from('f 644 1 20 1 1.5 1.5 /workspace/a b\nc '), Buffer.from([0xff, 0x41])]);
    const listing = parseBoxListing(listingBytes([{ head: odd }, { head: 'f 644 1 21 1 1.5 1.5 /workspace/ lead' }]));
    assert.deepEqual(
      listing.entries.map((e) => e.path),
      ['a b\nc \uFFFDA', ' lead'],
    );
  });

  test('a record that is not in the format, a path outside /workspace or a cut listing is an engine-error, never guessed at', () => {
    for (const bad of [
      listingBytes([{ head: 'f 644 1 20 /workspace/missing-fields' }]),
      listingBytes([{ head: 'f 644 1 20 1 1.5 1.5 /etc/passwd' }]),
      listingBytes([{ head: 'f 644 1 20 1 1.5 1.5 /workspace/a' }]).subarray(0, 40),
      Buffer.from('no clock'),
    ]) {
      assert.throws(
        () => parseBoxListing(bad),
        (error: unknown) => SandboxError.is(error, 'engine-error'),
      );
    }
  });

  test('shared writable mappings are collected by inode; an unreadable process makes mappings unknown', () => {
    const maps = [
      '7f00-7f10 rw-s 00000000 00:2a 20                         /workspace/mapped.db',
      '7f10-7f20 r--s 00000000 00:2a 21                         /workspace/readonly.db',
      '7f20-7f30 rw-p 00000000 00:2a 22                         /workspace/private.bin',
      '',
    ].join('\n');
    const listing = parseBoxListing(listingBytes([], maps));
    assert.deepEqual([...listing.mappedInodes], ['20']);
    assert.equal(listing.mappingsUnknown, false);
    assert.equal(parseBoxListing(listingBytes([], `${maps}unreadable 42\n`)).mappingsUnknown, true);
  });

  test('a stamp changes with type, mode, size, inode, links and ctime, and with nothing else', () => {
    const listing = parseBoxListing(listingBytes([{ head: 'f 644 10 20 1 1699999990.1000000000 1.0 /workspace/a' }]));
    const base = listing.entries[0];
    const same = { ...base, mtimeMs: 5, path: 'elsewhere' };
    assert.equal(stampOf(same), stampOf(base));
    for (const changed of [{ kind: 'l' }, { mode: 0o755 }, { size: 11 }, { inode: '21' }, { nlink: 2 }, { ctime: '1699999990.1000000001' }]) {
      assert.notEqual(stampOf({ ...base, ...changed }), stampOf(base), JSON.stringify(changed));
    }
  });

  test('a stamp is recordable only for a file changed clearly before the clock and mapped by no process', () => {
    const listing = parseBoxListing(
      listingBytes(
        [
          { head: 'f 644 1 20 1 1699999999.9000000000 1.0 /workspace/old' },
          { head: 'f 644 1 21 1 1700000000.4900000000 1.0 /workspace/recent' },
          { head: 'f 644 1 22 1 1699999000.1000000000 1.0 /workspace/mapped' },
          { head: 'd 755 1 23 2 1699999000.1000000000 1.0 /workspace/dir' },
        ],
        '7f00-7f10 rw-s 00000000 00:2a 22 /workspace/mapped\n',
      ),
    );
    const clock = listing.clockBeforeMs;
    assert.deepEqual(
      listing.entries.map((e) => stampRecordable(e, listing, clock)),
      [true, false, false, false],
    );
    // Whole-second filesystems get a two-second margin.
    const coarse = parseBoxListing(listingBytes([{ head: 'f 644 1 20 1 1699999999.0000000000 1.0 /workspace/a' }]));
    assert.equal(coarse.fineTimes, false);
    assert.equal(stampRecordable(coarse.entries[0], coarse, coarse.clockBeforeMs), false);
    assert.equal(stampRecordable(coarse.entries[0], coarse, coarse.clockBeforeMs + 2000), true);
    const unknown = parseBoxListing(listingBytes([{ head: 'f 644 1 20 1 1.5 1.0 /workspace/a' }], 'unreadable 7\n'));
    assert.equal(stampRecordable(unknown.entries[0], unknown, unknown.clockBeforeMs), false);
  });
});
