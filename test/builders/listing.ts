// Builds the box listing's bytes as LISTING_SCRIPT prints them (see src/core/changes/boxListing.ts), for tests
// of the parser and of the reader that plans from it.

export interface ListingRecord {
  /** `"<type> <mode> <size> <inode> <nlink> <ctime> <mtime> <path>"` (octal mode, absolute path). */
  head: string | Buffer;
  /** A symlink's target. */
  target?: string;
}

export const LISTING_CLOCKS = ['1700000000.5000000000', '1700000001.2500000000'];

export function listingBytes(records: ListingRecord[], maps = '', clocks = LISTING_CLOCKS): Buffer {
  const parts: Buffer[] = [Buffer.from(`${clocks[0]}\0`)];
  for (const r of records) {
    parts.push(typeof r.head === 'string' ? Buffer.from(r.head) : r.head, Buffer.from('\0'), Buffer.from(r.target ?? ''), Buffer.from('\0'));
  }
  parts.push(Buffer.from('agent-sandbox:end\0\0'), Buffer.from(`${clocks[1]}\0`), Buffer.from(maps));
  return Buffer.concat(parts);
}
