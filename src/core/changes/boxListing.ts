import { SandboxError } from '../errors';

/**
 * The box's tree as GNU find lists it from inside the box: one record per path with what `stat` says, no
 * content. Collect uses it to fetch only what may have changed (see `BoxSession.collect`); this file holds the
 * script that takes it and the parser, both pure.
 *
 * A record is two NUL-terminated strings: `"<type> <mode> <size> <inode> <nlink> <ctime> <mtime> <path>"` and
 * the symlink target (empty for other types). Names and targets cannot hold NUL, so this splits exactly,
 * whatever spaces, newlines or non-UTF-8 bytes they hold.
 */
export const LISTING_PRINTF = '%y %m %s %i %n %C@ %T@ %p\\0%l\\0';

/** The directory the listing walks; record paths are made relative to it. */
const ROOT = '/workspace';

/** Ends the records: its head cannot be a record's (a record's head starts with a type letter and a space). */
const END_TOKEN = 'agent-sandbox:end';

/** Where the listing looks for find, in order (the image report checks the same paths). */
export const LISTING_FIND_PATHS = ['/usr/bin/find', '/bin/find'] as const;
/** The box's tool `PATH` of the listing and the candidates tar: the report looks for `tar` there. */
export const BOX_TOOL_PATH = '/usr/bin:/bin';

/** Exit codes of `LISTING_SCRIPT` that mean "this image cannot list" (cached per box), or "not this time". */
export const LISTING_EXIT = { noGnuFind: 90, noClock: 91, findFailed: 93 } as const;

/**
 * Lists `/workspace` (or, with arguments, exactly those absolute paths with `-maxdepth 0`) and prints, all on
 * stdout: the box clock before the walk, the records, an end pair, the box clock after the walk, then every
 * shared writable file mapping of every process in the box (lines of `/proc/<pid>/maps`), and an
 * `unreadable <pid>` line for a live process whose mappings cannot be read.
 *
 * - GNU find only (busybox find has no `-printf`): exit 90 tells the caller to fall back for good.
 * - Fixed `PATH` of the read-only root: nothing a run put in `$HOME` or `/tmp` is run instead.
 * - The clock is the ctime of a file created in `/tmp` just then: the box kernel's own coarse clock, which is
 *   what later writes stamp files with (also when the engine is on another machine). A run could only make
 *   it older (every way to put a file at a path sets its ctime to now), which records fewer stamps.
 * - Any find error (a directory a run made unreadable, a path that vanished) ends with exit 93 after the
 *   records: the listing is then not complete, and the caller does not treat a missing path as deleted.
 */
export const LISTING_SCRIPT = `
export PATH=${BOX_TOOL_PATH} LC_ALL=C
F=
for c in ${LISTING_FIND_PATHS.join(' ')}; do
  if [ -x "$c" ]; then F=$c; break; fi
done
[ -n "$F" ] || exit ${LISTING_EXIT.noGnuFind}
"$F" ${ROOT} -maxdepth 0 -printf '' 2>/dev/null || exit ${LISTING_EXIT.noGnuFind}
clock() {
  m="/tmp/.agent-sandbox-clock.$$"
  rm -f "$m" 2>/dev/null
  (set -C; : > "$m") 2>/dev/null || exit ${LISTING_EXIT.noClock}
  "$F" "$m" -maxdepth 0 -printf '%C@\\0' || exit ${LISTING_EXIT.noClock}
  rm -f "$m"
}
clock
status=0
if [ "$#" -eq 0 ]; then
  "$F" ${ROOT} -mindepth 1 -printf '${LISTING_PRINTF}' || status=${LISTING_EXIT.findFailed}
else
  "$F" "$@" -maxdepth 0 -printf '${LISTING_PRINTF}' || status=${LISTING_EXIT.findFailed}
fi
printf '${END_TOKEN}\\0\\0'
clock
for f in /proc/[0-9]*/maps; do
  grep -h -- '^[^ ]* [r-]w[x-]s ' "$f" 2>/dev/null
  if [ "$?" -gt 1 ] && [ -e "$f" ]; then p=\${f#/proc/}; echo "unreadable \${p%/maps}"; fi
done
exit $status
`;

/**
 * Writes a tar of exactly the paths given (relative to `/workspace`) to stdout, with the image's own tar
 * (GNU or busybox). Collect reads the files a listing marked as possibly changed this way in one exec instead
 * of one engine archive request each; its output is parsed with the same checks and must hold exactly the
 * names asked for, else those files are read through the engine's archive API instead.
 */
export const CANDIDATES_TAR_SCRIPT = `
export PATH=${BOX_TOOL_PATH} LC_ALL=C
cd /workspace || exit 3
exec tar -cf - -- "$@"
`;

/** One path as the listing saw it. `path` is relative to `/workspace`, decoded as UTF-8 and not yet checked. */
export interface ListedEntry {
  path: string;
  /** find's `%y`: `f` file, `d` directory, `l` symlink, `p` fifo, `s` socket, `c`/`b` devices, others rare. */
  kind: string;
  /** Permission bits including setuid/setgid/sticky (`%m`). */
  mode: number;
  size: number;
  inode: string;
  nlink: number;
  /** Status change time as find prints it (seconds with a fraction); compared as text in stamps. */
  ctime: string;
  /** The same in ms, for the recency rule. */
  ctimeMs: number;
  mtimeMs: number;
  /** Symlinks only: the target as stored (decoded as UTF-8). */
  linkTarget: string;
}

/** A parsed listing. */
export interface BoxListing {
  entries: ListedEntry[];
  /** Box clock (ms) just before the walk began, and just after it ended. */
  clockBeforeMs: number;
  clockAfterMs: number;
  /** True when some ctime had a fraction: the filesystem keeps sub-second times. */
  fineTimes: boolean;
  /** Inodes some process maps shared and writable: writes through such a mapping need not change ctime. */
  mappedInodes: Set<string>;
  /** Some live process's mappings could not be read (it made itself non-dumpable): mappings are unknown. */
  mappingsUnknown: boolean;
}

/**
 * Parses `LISTING_SCRIPT`'s stdout (raw bytes). Throws `engine-error` when it is not what the script prints:
 * a listing that cannot be read is never guessed at.
 */
export function parseBoxListing(stdout: Buffer): BoxListing {
  const malformed = (what: string): SandboxError =>
    new SandboxError('engine-error', `The box's file listing could not be read (${what}); its changes are read from the whole tree instead.`);
  let offset = 0;
  const nextToken = (): Buffer | undefined => {
    const end = stdout.indexOf(0, offset);
    if (end < 0) return undefined;
    const token = stdout.subarray(offset, end);
    offset = end + 1;
    return token;
  };
  const clockBefore = nextToken();
  if (clockBefore === undefined) throw malformed('no clock');
  const clockBeforeMs = secondsTextToMs(clockBefore.toString('latin1'));
  const entries: ListedEntry[] = [];
  let fineTimes = false;
  const rootPrefix = Buffer.from(`${ROOT}/`);
  for (;;) {
    const headEnd = stdout.indexOf(0, offset);
    const targetEnd = headEnd < 0 ? -1 : stdout.indexOf(0, headEnd + 1);
    if (headEnd < 0 || targetEnd < 0) throw malformed('records end early');
    const headStart = offset;
    offset = targetEnd + 1;
    if (targetEnd === headEnd + 1 && headEnd - headStart === END_BYTES.length && stdout.subarray(headStart, headEnd).equals(END_BYTES)) break;
    // Seven fields separated by single spaces, then the path (which may hold spaces itself). Numbers are read
    // from the bytes: a large tree has hundreds of thousands of records.
    const fieldEnds: number[] = [];
    let at = headStart;
    for (let i = 0; i < 7; i++) {
      const space = stdout.indexOf(SPACE, at);
      if (space < 0 || space >= headEnd) throw malformed(`record ${entries.length + 1}`);
      fieldEnds.push(space);
      at = space + 1;
    }
    const fieldStart = (i: number): number => (i === 0 ? headStart : fieldEnds[i - 1] + 1);
    const kindByte = stdout[headStart];
    const mode = readInteger(stdout, fieldStart(1), fieldEnds[1], 8);
    const size = readInteger(stdout, fieldStart(2), fieldEnds[2], 10);
    const nlink = readInteger(stdout, fieldStart(4), fieldEnds[4], 10);
    const inode = stdout.toString('latin1', fieldStart(3), fieldEnds[3]);
    if (fieldEnds[0] !== headStart + 1 || mode < 0 || size < 0 || nlink < 0 || !allDigits(stdout, fieldStart(3), fieldEnds[3])) {
      throw malformed(`record ${entries.length + 1}`);
    }
    const ctime = stdout.toString('latin1', fieldStart(5), fieldEnds[5]);
    const mtimeText = stdout.toString('latin1', fieldStart(6), fieldEnds[6]);
    const pathStart = fieldEnds[6] + 1;
    let relative: string;
    if (headEnd - pathStart >= rootPrefix.length && stdout.subarray(pathStart, pathStart + rootPrefix.length).equals(rootPrefix)) {
      relative = stdout.toString('utf8', pathStart + rootPrefix.length, headEnd);
    } else if (stdout.toString('utf8', pathStart, headEnd) === ROOT) {
      relative = '';
    } else {
      throw malformed(`a path outside ${ROOT}`);
    }
    if (!fineTimes && FRACTION.test(ctime)) fineTimes = true;
    entries.push({
      path: relative,
      kind: String.fromCharCode(kindByte),
      mode,
      size,
      inode,
      nlink,
      ctime,
      ctimeMs: secondsTextToMs(ctime),
      mtimeMs: secondsTextToMs(mtimeText),
      linkTarget: targetEnd === headEnd + 1 ? '' : stdout.toString('utf8', headEnd + 1, targetEnd),
    });
  }
  const clockAfter = nextToken();
  if (clockAfter === undefined) throw malformed('no clock after the walk');
  const clockAfterMs = secondsTextToMs(clockAfter.toString('latin1'));
  const mappedInodes = new Set<string>();
  let mappingsUnknown = false;
  for (const line of stdout.subarray(offset).toString('latin1').split('\n')) {
    if (line.startsWith('unreadable ')) {
      mappingsUnknown = true;
      continue;
    }
    // address perms offset dev inode pathname
    const fields = line.split(/\s+/);
    if (fields.length >= 5 && /^[r-]w[x-]s$/.test(fields[1]) && /^\d+$/.test(fields[4]) && fields[4] !== '0') {
      mappedInodes.add(fields[4]);
    }
  }
  return { entries, clockBeforeMs, clockAfterMs, fineTimes, mappedInodes, mappingsUnknown };
}

const SPACE = 0x20;
const END_BYTES = Buffer.from(END_TOKEN);

/** A non-negative integer in `radix` (8 or 10) from ASCII digits, or -1 when the bytes are not one. */
function readInteger(bytes: Buffer, start: number, end: number, radix: number): number {
  if (end <= start || end - start > 15) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = bytes[i] - 0x30;
    if (digit < 0 || digit >= radix) return -1;
    value = value * radix + digit;
  }
  return value;
}
const FRACTION = /\.\d*[1-9]/;

/** Seconds since the epoch as find prints them (up to 10 fraction digits) in ms; a double keeps µs here. */
function secondsTextToMs(text: string): number {
  const first = text.charCodeAt(0);
  const value = Number(text);
  // find prints digits, a point and digits (a minus before times before 1970); Number also takes forms find
  // never prints (hex, exponents), which a first-character check and finiteness are enough to reject here.
  if (text.length === 0 || !((first >= 0x30 && first <= 0x39) || first === 0x2d) || !Number.isFinite(value) || /[xXeE]/.test(text)) {
    throw new SandboxError('engine-error', `The box's file listing held an invalid time ${JSON.stringify(text)}.`);
  }
  return value * 1000;
}

function allDigits(bytes: Buffer, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    if (bytes[i] < 0x30 || bytes[i] > 0x39) return false;
  }
  return true;
}

/**
 * A path's stamp: what changes whenever its content, type, mode or links change. The box cannot set ctime
 * (that needs CAP_SYS_TIME, which the box does not have), and every content change through a system call sets
 * it to the box clock's now, so an equal stamp means the same inode, unchanged since.
 */
export function stampOf(entry: ListedEntry): string {
  return `${entry.kind} ${entry.mode.toString(8)} ${entry.size} ${entry.inode} ${entry.nlink} ${entry.ctime}`;
}

/** `stampOf(a) === stampOf(b)`, without building the strings (collect compares every path of the tree). */
export function sameStamp(a: ListedEntry, b: ListedEntry): boolean {
  return a.ctime === b.ctime && a.inode === b.inode && a.size === b.size && a.mode === b.mode && a.nlink === b.nlink && a.kind === b.kind;
}

/** Margin between a ctime and the clock, so a later write cannot get the same ctime (timestamp granularity). */
export function stampMarginMs(listing: BoxListing): number {
  // Filesystems without sub-second times (all fractions zero) store whole seconds: a write in the same second
  // keeps the ctime. Otherwise the coarse kernel clock ticks every few ms.
  return listing.fineTimes ? 20 : 2_000;
}

/**
 * True when a listed file's stamp may be recorded as proof of its content, given `clockMs`: the box time
 * before which its last change must lie. Besides the ctime, no process may map it shared and writable: a write
 * through a page already made writable does not touch ctime (measured on ext4 and tmpfs, Linux 6.x).
 */
export function stampRecordable(entry: ListedEntry, listing: BoxListing, clockMs: number): boolean {
  return entry.kind === 'f' && !listing.mappingsUnknown && !listing.mappedInodes.has(entry.inode) && entry.ctimeMs < clockMs - stampMarginMs(listing);
}
