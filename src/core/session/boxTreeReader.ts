import { Readable } from 'node:stream';
import { runBoxHelperRaw, type BoxHelperResult } from '../box/boxExec';
import type { Box } from '../box/box';
import { BoxTreeBuilder, readBoxTree, type BoxTree } from '../changes/boxTree';
import {
  CANDIDATES_TAR_SCRIPT,
  LISTING_EXIT,
  LISTING_SCRIPT,
  parseBoxListing,
  sameStamp,
  stampRecordable,
  type BoxListing,
  type ListedEntry,
} from '../changes/boxListing';
import type { DockerEngine } from '../docker/dockerEngine';
import { CALLER_MUST_SEE, SandboxError } from '../errors';
import { comparePaths, sameState, type Manifest, type ManifestEntry } from '../workspace/manifest';
import { checkRelative, parentOf } from '../workspace/pathGuard';
import type { SyncFilter } from '../workspace/syncFilter';
import { chunkByBounds, type ChunkBound } from '../util/chunks';
import { forEachBounded } from '../util/concurrency';
import { errorText } from '../util/errorText';

/**
 * How many files a stamped collect reads one archive each before one archive of the whole tree is cheaper.
 * Measured on Docker 20.10 (50k files, 529 MB, a busy 2-core machine): the engine serves single-path archives
 * about one at a time, ~100 ms each, while the whole tree streams and hashes in ~13–15 s; so the break-even is
 * near one file per 5 MiB of tree plus one per 1,000 paths, kept between these bounds.
 */
const STAMPED_FETCH_MIN = 16;
const STAMPED_FETCH_MAX = 2_000;
const STAMPED_FETCH_BYTES_PER_FILE = 5 * 1024 * 1024;
const STAMPED_FETCH_PATHS_PER_FILE = 1_000;
/** Files up to this size are read with the box's tar, in chunks of up to this many bytes (held in memory). */
const BOX_TAR_MAX_FILE_BYTES = 8 * 1024 * 1024;
const BOX_TAR_MAX_CHUNK_BYTES = 64 * 1024 * 1024;
/** With the box's tar (see `BoxTreeReader.readCandidatesInBox`), up to this share of the paths is read that way. */
const STAMPED_FETCH_SHARE = 0.25;
/** Single-path archives in flight at once during a stamped collect. */
const STAMPED_FETCH_CONCURRENCY = 8;
/** A listing of the box larger than this is not used (~100 bytes a path: about 2.5 million paths). */
const LISTING_MAX_BYTES = 256 * 1024 * 1024;
const LISTING_TIMEOUT_MS = 120_000;
/**
 * The listing the mirror's own exec runs once the box's tar extracted the workspace (`extractWithBoxTar`'s
 * follow-up), instead of a second exec. It first waits out the stamp margin of fine-grained file times
 * (`stampMarginMs`): files written in the extraction's last milliseconds would not be recordable yet.
 */
export const MIRROR_LISTING = {
  script: `sleep 0.025 2>/dev/null || sleep 1\n${LISTING_SCRIPT}`,
  maxStdoutBytes: LISTING_MAX_BYTES,
};
/** Linux's PATH_MAX, including the terminating NUL. */
const PATH_MAX = 4096;
/** Bytes of paths per targeted listing (catch-up), so the command line stays far below the kernel's limit. */
const TARGETED_LISTING_MAX_ARG_BYTES = 64 * 1024;

/** How the last collect read the box (not on the wire; tests and the benchmark look at it). */
export interface CollectInfo {
  /** `stamps`: a listing, and one archive per path that may have changed; `full`: one archive of the whole tree. */
  strategy: 'stamps' | 'full';
  /** Why a full collect was taken. */
  reason?: string;
  /** Paths in the listing (0 without one). */
  listed: number;
  /** Files read (stamps only): `fetchedInBox` of them through one tar in the box, the rest one archive each. */
  fetched: number;
  fetchedInBox?: number;
  /** Stamps known to match the baseline after this collect. */
  knownStamps: number;
}

/** A path's stamp as last seen when the box's entry there was proven equal to `base` (the baseline's object). */
interface KnownStamp {
  /** The listing's record when the stamp was recorded (compared with `sameStamp`). */
  stamp: ListedEntry;
  base: ManifestEntry;
}

/** What the reader needs of a box: its helper scripts' output and its archives. */
export interface BoxReadAccess {
  /** The image's name, for log lines. */
  readonly image: string;
  /** Runs a `/bin/sh -c` helper script as the box user (see `runBoxHelperRaw`). */
  helper(script: string, args: string[], options: { signal?: AbortSignal; timeoutMs?: number; maxStdoutBytes: number }): Promise<BoxHelperResult>;
  /** A tar stream of an absolute path in the box (`not-found` when absent). */
  archive(path: string, signal?: AbortSignal): Promise<Readable>;
}

/** The access to a running box through its engine. */
export function boxReadAccess(engine: DockerEngine, box: Box): BoxReadAccess {
  return {
    image: box.image.reference,
    helper: (script, args, options) => runBoxHelperRaw(engine, box.containerId, script, args, options),
    archive: (path, signal) => box.getArchive(path, signal),
  };
}

export interface BoxTreeReaderOptions {
  /** Files larger than this are refused as `too-large` (never held). */
  maxFileBytes: number;
  /** Whether files that may have changed are read with one exec of the image's tar (else one archive each). */
  readsWithBoxTar: boolean;
  /** False when the image has no `/bin/sh` (its report says so): no helper script can run, every read is an archive. */
  boxHasShell?: boolean;
  log: (line: string) => void;
}

/**
 * Reads what the box holds of /workspace, as cheaply as what is known allows: the box tree reader of the loop's
 * collect and catch-up. It keeps the box stamps (see `boxListing.ts`) of files whose box content was proven
 * equal to their baseline entry, what the image can do (GNU find for listings, tar for reading candidates),
 * and how the last read went. A stamp counts only while the baseline still holds that very entry object
 * (entries are never mutated, so any baseline change invalidates it), and paths the session itself writes drop
 * theirs (`dropStamps`). A missing stamp costs one archive read; a wrong one would hide a change, so every doubt
 * drops it. `baseline` is the session's own map, read here and changed only by the session.
 */
export class BoxTreeReader {
  private readonly stamps = new Map<string, KnownStamp>();
  /** Whether the image's find can list (GNU find); undefined until the first try. */
  private listingSupported: boolean | undefined;
  /** Whether the image's tar can read candidate files (see `readCandidatesInBox`); undefined until tried. */
  private boxTarWorks: boolean | undefined;
  private collectInfo: CollectInfo | undefined;

  constructor(
    private readonly access: BoxReadAccess,
    private readonly baseline: Manifest,
    private readonly filter: SyncFilter,
    private readonly options: BoxTreeReaderOptions,
  ) {
    if (options.boxHasShell === false) {
      this.listingSupported = false;
      this.boxTarWorks = false;
    }
  }

  /** How the last read went. */
  get lastCollectInfo(): CollectInfo | undefined {
    return this.collectInfo;
  }

  /**
   * Right after the mirror, before anything has run in the box, the box holds exactly what was sent: one
   * listing then proves every file whose type, mode and size match its baseline entry, so the first collect
   * already reads only what changed. Nothing else writes to /workspace while the session is being opened, so
   * the clock that bounds recordable ctimes is the one after the walk. `taken`: the result of `MIRROR_LISTING`
   * run by the mirror's own exec; without it the box is listed now.
   */
  async stampAfterMirror(signal?: AbortSignal, taken?: BoxHelperResult): Promise<void> {
    const listed = await this.tryListing(undefined, signal, taken);
    if (!listed?.complete) return;
    const { listing } = listed;
    for (const entry of listing.entries) {
      const base = this.baseline.get(entry.path);
      if (
        base?.type === 'file' &&
        base.size === entry.size &&
        base.mode === entry.mode &&
        (entry.mode & 0o6000) === 0 &&
        entry.nlink === 1 &&
        stampRecordable(entry, listing, listing.clockAfterMs) &&
        // A name the box tree would refuse is never taken on a stamp (see planFromListing's fast path).
        checkRelative(entry.path).ok
      ) {
        this.stamps.set(entry.path, { stamp: entry, base });
      }
    }
  }

  /** The stamp known for `relPath`, if it is still valid for the baseline's current entry there. */
  private knownStamp(relPath: string): ListedEntry | undefined {
    const known = this.stamps.get(relPath);
    if (known === undefined) return undefined;
    if (this.baseline.get(relPath) !== known.base) {
      this.stamps.delete(relPath);
      return undefined;
    }
    return known.stamp;
  }

  /** The session wrote these paths into the box (or removed them): what was proven about them no longer holds. */
  dropStamps(paths: Iterable<string>): void {
    for (const p of paths) this.stamps.delete(p);
  }

  /**
   * Runs `LISTING_SCRIPT` (the whole workspace, or exactly `paths` when given). Undefined when the image cannot
   * list (remembered: no GNU find) or the listing failed; `complete` is false when find reported an error
   * (then a path missing from the listing may still exist).
   */
  private async tryListing(
    paths: string[] | undefined,
    signal?: AbortSignal,
    taken?: BoxHelperResult,
  ): Promise<{ listing: BoxListing; complete: boolean } | undefined> {
    if (this.listingSupported === false) return undefined;
    try {
      const result =
        taken ??
        (await this.access.helper(
          LISTING_SCRIPT,
          (paths ?? []).map((p) => `/workspace/${p}`),
          { signal, timeoutMs: LISTING_TIMEOUT_MS, maxStdoutBytes: LISTING_MAX_BYTES },
        ));
      if (result.exitCode === LISTING_EXIT.noGnuFind) {
        this.listingSupported = false;
        this.options.log(`[session] ${this.access.image} has no GNU find: collect reads the whole tree each time`);
        return undefined;
      }
      if (result.exitCode !== 0 && result.exitCode !== LISTING_EXIT.findFailed) {
        this.options.log(`[session] listing the box failed (exit ${result.exitCode}): ${result.stderr.trim().slice(0, 300)}`);
        return undefined;
      }
      this.listingSupported = true;
      return { listing: parseBoxListing(result.stdout), complete: result.exitCode === 0 };
    } catch (error) {
      if (SandboxError.isAny(error, CALLER_MUST_SEE)) throw error;
      this.options.log(`[session] listing the box failed: ${errorText(error)}`);
      return undefined;
    }
  }

  /**
   * The box's tree. With a listing (GNU find in the image): every directory, symlink and refused type comes
   * from the listing, files whose stamp is unchanged since they were proven equal to the baseline take the
   * baseline's entry, and only the other files are read, one archive each. Without a listing, or when too many
   * files would have to be read, one archive of the whole tree, as before; a listing taken just before it
   * still records the stamps of what it found equal.
   *
   * The order is the point: LIST FIRST, THEN READ CONTENT. A change after a file's stat either shows in the
   * content read afterwards (so it is reported, and its stamp is not recorded), or comes after the read and
   * gives the file a ctime newer than the listed one (so the next listing differs). Reading content first and
   * listing after could pair the stamp of a newer change with older content and hide that change for good.
   */
  async read(signal?: AbortSignal): Promise<BoxTree> {
    const listed = await this.tryListing(undefined, signal);
    if (!listed) {
      return this.readWholeTree(undefined, this.listingSupported === false ? 'no GNU find in the image' : 'no listing', signal);
    }
    if (!listed.complete) {
      // find could not read everything (e.g. a directory without permissions): a path it missed is not deleted.
      return this.readWholeTree(undefined, 'incomplete listing', signal);
    }
    const { listing } = listed;
    const plan = await this.planFromListing(listing, signal);
    if (typeof plan === 'string') {
      return this.readWholeTree(listing, plan, signal);
    }
    const { builder, fetch } = plan;
    let treeBytes = 0;
    for (const e of listing.entries) treeBytes += e.kind === 'f' ? e.size : 0;
    const archiveLimit = Math.round(
      Math.min(
        STAMPED_FETCH_MAX,
        Math.max(STAMPED_FETCH_MIN, treeBytes / STAMPED_FETCH_BYTES_PER_FILE + listing.entries.length / STAMPED_FETCH_PATHS_PER_FILE),
      ),
    );
    // Through the box's tar, reading a file costs about its bytes: worth it up to a share of the tree.
    const files = listing.entries.length;
    const limit =
      this.options.readsWithBoxTar && this.boxTarWorks !== false
        ? Math.min(STAMPED_FETCH_MAX, Math.max(archiveLimit, Math.round(files * STAMPED_FETCH_SHARE)))
        : archiveLimit;
    if (fetch.length > limit) {
      return this.readWholeTree(listing, `${fetch.length} files may have changed (limit ${limit})`, signal);
    }
    // The archive API resolves a path with the kernel: one beyond PATH_MAX cannot be asked for by name.
    if (fetch.some((e) => Buffer.byteLength(e.path) + '/workspace/'.length >= PATH_MAX)) {
      return this.readWholeTree(listing, 'a path too long to read on its own', signal);
    }
    const readInBox = await this.readCandidatesInBox(fetch, builder, signal);
    const perPath = fetch.filter((e) => !readInBox.has(e.path));
    if (perPath.length > archiveLimit) {
      return this.readWholeTree(listing, `${perPath.length} files to read one archive each (limit ${archiveLimit})`, signal);
    }
    try {
      await forEachBounded(perPath, STAMPED_FETCH_CONCURRENCY, async ({ path: relPath }) => {
        let stream: Readable;
        try {
          stream = await this.access.archive(`/workspace/${relPath}`, signal);
        } catch (error) {
          // Removed since the listing: the box no longer has it.
          if (SandboxError.is(error, 'not-found')) {
            builder.forget(relPath);
            return;
          }
          throw error;
        }
        await builder.addArchive(stream, { prefix: '', under: parentOf(relPath) });
      });
    } catch (error) {
      if (SandboxError.isAny(error, CALLER_MUST_SEE)) throw error;
      // One path the engine would not give on its own (e.g. a name it cannot resolve): the whole archive can.
      this.options.log(`[session] reading a changed path on its own failed (${errorText(error)}); reading the whole tree`);
      return this.readWholeTree(listing, 'a single-path read failed', signal);
    }
    const tree = builder.finish();
    // A stamp of a path the box removed stays until its baseline entry changes: harmless, as a file made there
    // later has another inode or a newer ctime.
    for (const entry of fetch) this.recordStamp(entry, tree, listing);
    this.collectInfo = {
      strategy: 'stamps',
      listed: listing.entries.length,
      fetched: fetch.length,
      fetchedInBox: readInBox.size,
      knownStamps: this.stamps.size,
    };
    return tree;
  }

  /**
   * Reads the files a listing marked as possibly changed with one exec of the image's tar (names as arguments,
   * in chunks), instead of one engine archive request each (~50–100 ms apiece, served about one at a time).
   * Returns the paths read; the others — all of them when the image has no working tar, when tar fails or
   * outgrows what the listing promised, or when its archive holds anything but the names asked for — are left
   * to the archive API. Its output goes through the same builder checks as any archive. Trust: it is a box
   * process's account, like the listing; whatever it could misreport, a run in the box could have written into
   * those files itself, so it can hide a change the box made but never make anything unsafe acceptable. It runs
   * after the listing, which is what recording stamps needs (see `readTree`).
   */
  private async readCandidatesInBox(fetch: ListedEntry[], builder: BoxTreeBuilder, signal?: AbortSignal): Promise<Set<string>> {
    const done = new Set<string>();
    // Its output is held in memory whole: large files stream through the archive API instead.
    const small = fetch.filter((e) => e.size <= BOX_TAR_MAX_FILE_BYTES);
    if (!this.options.readsWithBoxTar || small.length < 2 || this.boxTarWorks === false) return done;
    const bounds: ChunkBound<ListedEntry>[] = [
      { measure: (e) => Buffer.byteLength(e.path) + 1, max: TARGETED_LISTING_MAX_ARG_BYTES },
      { measure: (e) => e.size, max: BOX_TAR_MAX_CHUNK_BYTES },
    ];
    for (const chunk of chunkByBounds(small, bounds)) {
      const names = chunk.map((e) => e.path);
      const argBytes = chunk.reduce((n, e) => n + Buffer.byteLength(e.path) + 1, 0);
      const contentBytes = chunk.reduce((n, e) => n + e.size, 0);
      // Each file as listed, rounded to blocks, a header and a long-name record each, and the end blocks.
      const cap = contentBytes + names.length * 4 * 512 + argBytes * 2 + 64 * 1024;
      let result: { exitCode: number | null; stdout: Buffer; stderr: string };
      try {
        result = await this.access.helper(CANDIDATES_TAR_SCRIPT, names, {
          signal,
          maxStdoutBytes: cap,
          timeoutMs: LISTING_TIMEOUT_MS,
        });
      } catch (error) {
        if (SandboxError.isAny(error, CALLER_MUST_SEE)) throw error;
        this.options.log(`[session] reading changed files with the box's tar failed: ${errorText(error)}`);
        return done;
      }
      if (result.exitCode !== 0) {
        if (result.exitCode === 126 || result.exitCode === 127) this.boxTarWorks = false;
        this.options.log(`[session] the box's tar ended with ${result.exitCode}: ${result.stderr.trim().slice(0, 300)}`);
        return done;
      }
      const seen = new Set<string>();
      try {
        await builder.addArchive(Readable.from([result.stdout], { objectMode: false }), { prefix: '', only: new Set(names), seen });
      } catch (error) {
        if (SandboxError.isAny(error, CALLER_MUST_SEE)) throw error;
        this.options.log(`[session] the box's tar of changed files was not usable: ${errorText(error)}`);
        return done;
      }
      // A name missing from it is read through the archive API (which also replaces what this chunk added).
      if (names.some((n) => !seen.has(n))) return done;
      this.boxTarWorks = true;
      for (const n of names) done.add(n);
    }
    return done;
  }

  /**
   * Sorts a listing into what the builder settles from the listing alone and the files whose content must be
   * read. A string when the listing holds something only the whole archive can say (an unknown type).
   */
  private async planFromListing(listing: BoxListing, signal?: AbortSignal): Promise<{ builder: BoxTreeBuilder; fetch: ListedEntry[] } | string> {
    const builder = new BoxTreeBuilder({ baseline: this.baseline, filter: this.filter, maxFileBytes: this.options.maxFileBytes, signal });
    // Hard links: the engine's tar carries the first name of an inode (walking each directory in name order,
    // depth first) as the file and every later name as a hard link, which is refused. Same here.
    const firstName = new Map<string, string>();
    const linked = listing.entries.filter((e) => e.kind !== 'd' && e.nlink > 1).sort((a, b) => comparePaths(a.path, b.path));
    for (const e of linked) {
      if (!firstName.has(e.inode)) firstName.set(e.inode, e.path);
    }
    const fetch: ListedEntry[] = [];
    for (const e of listing.entries) {
      // Fast path, most of a large tree: a file whose stamp is unchanged since it was proven equal to this very
      // baseline entry. Its name passed the tree's checks and the filter when the stamp was recorded (both
      // depend on the name only), and the stamp covers type, mode (recorded without setuid/setgid) and links.
      if (e.kind === 'f' && e.nlink === 1) {
        const known = this.stamps.get(e.path);
        if (known !== undefined && this.baseline.get(e.path) === known.base && sameStamp(known.stamp, e)) {
          builder.adoptBaseline(e.path);
          continue;
        }
      }
      const common = { name: e.path, mode: e.mode, mtimeMs: e.mtimeMs };
      const first = e.nlink > 1 && e.kind !== 'd' ? firstName.get(e.inode) : undefined;
      if (first !== undefined && first !== e.path) {
        await builder.addListed({ ...common, type: 'link', linkname: first });
        continue;
      }
      switch (e.kind) {
        case 'd':
          await builder.addListed({ ...common, type: 'directory' });
          break;
        case 'l':
          await builder.addListed({ ...common, type: 'symlink', linkname: e.linkTarget, size: e.size });
          break;
        case 'p':
          await builder.addListed({ ...common, type: 'fifo' });
          break;
        case 'c':
          await builder.addListed({ ...common, type: 'character-device' });
          break;
        case 'b':
          await builder.addListed({ ...common, type: 'block-device' });
          break;
        case 's':
          // The engine's tar leaves sockets out; so does this.
          break;
        case 'f': {
          const relPath = await builder.addListed({ ...common, type: 'file', size: e.size });
          if (relPath === undefined) break;
          const known = relPath === e.path ? this.knownStamp(relPath) : undefined;
          if (known !== undefined && sameStamp(known, e)) {
            builder.adoptBaseline(relPath);
          } else {
            fetch.push({ ...e, path: relPath });
          }
          break;
        }
        default:
          return `a path of type ${JSON.stringify(e.kind)}`;
      }
    }
    return { builder, fetch };
  }

  /** Records a listed file's stamp when what was read after the listing equals the baseline. */
  private recordStamp(listed: ListedEntry, tree: BoxTree, listing: BoxListing): void {
    const base = this.baseline.get(listed.path);
    const entry = tree.entries.get(listed.path);
    if (
      base?.type === 'file' &&
      entry?.type === 'file' &&
      sameState(base, entry) &&
      entry.size === listed.size &&
      entry.mode === listed.mode &&
      listed.nlink === 1 &&
      stampRecordable(listed, listing, listing.clockBeforeMs)
    ) {
      this.stamps.set(listed.path, { stamp: listed, base });
    } else {
      this.stamps.delete(listed.path);
    }
  }

  /** One archive of the whole tree; with a listing taken before it, also records the stamps it proves. */
  private async readWholeTree(listing: BoxListing | undefined, reason: string, signal?: AbortSignal): Promise<BoxTree> {
    const stream = await this.access.archive('/workspace', signal);
    const tree = await readBoxTree(stream, {
      prefix: 'workspace/',
      baseline: this.baseline,
      filter: this.filter,
      maxFileBytes: this.options.maxFileBytes,
      signal,
    });
    if (listing) {
      this.stamps.clear();
      for (const entry of listing.entries) {
        if (entry.kind === 'f') this.recordStamp(entry, tree, listing);
      }
    }
    this.collectInfo = { strategy: 'full', reason, listed: listing?.entries.length ?? 0, fetched: 0, knownStamps: this.stamps.size };
    return tree;
  }

  /**
   * Paths among `paths` the box provably still holds as in the baseline, from one targeted listing: a file by
   * its known stamp, a directory by type and mode, a symlink by its target. The rest are left to the caller.
   */
  async unchangedByListing(paths: string[], signal?: AbortSignal): Promise<Set<string>> {
    const unchanged = new Set<string>();
    if (this.listingSupported !== true) return unchanged;
    const checkable = paths.filter((p) => {
      const base = this.baseline.get(p);
      return base !== undefined && (base.type !== 'file' || this.knownStamp(p) !== undefined);
    });
    // A targeted listing takes `/workspace/<path>` arguments: each costs its bytes and that prefix.
    for (const chunk of chunkByBounds(checkable, [{ measure: (p) => Buffer.byteLength(p) + 12, max: TARGETED_LISTING_MAX_ARG_BYTES }])) {
      const listed = await this.tryListing(chunk, signal);
      if (!listed) return unchanged;
      for (const e of listed.listing.entries) {
        const base = this.baseline.get(e.path);
        if (!base || !chunk.includes(e.path)) continue;
        const same =
          base.type === 'file'
            ? sameStampOrNone(this.knownStamp(e.path), e)
            : base.type === 'directory'
              ? e.kind === 'd' && e.mode === base.mode
              : e.kind === 'l' && e.linkTarget === base.linkTarget;
        if (same) unchanged.add(e.path);
      }
    }
    return unchanged;
  }

  /** The box's entry at `path` (undefined when absent), read through a one-path archive. */
  async statInBox(path: string, signal?: AbortSignal): Promise<ManifestEntry | undefined> {
    let stream: Readable;
    try {
      stream = await this.access.archive(`/workspace/${path}`, signal);
    } catch (error) {
      if (SandboxError.is(error, 'not-found')) return undefined;
      throw error;
    }
    const name = path.split('/').pop() ?? path;
    const tree = await readBoxTree(stream, { prefix: '', baseline: new Map(), filter: this.filter, maxFileBytes: this.options.maxFileBytes, signal });
    return tree.entries.get(name);
  }
}

function sameStampOrNone(known: ListedEntry | undefined, listed: ListedEntry): boolean {
  return known !== undefined && sameStamp(known, listed);
}
