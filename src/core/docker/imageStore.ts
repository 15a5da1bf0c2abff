import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { BoxImage, ImageReport } from '../../shared/protocol';
import { writeAtomically } from '../review/reviewStore';
import { sha256 } from '../util/hash';
import type { DockerEngine } from './dockerEngine';
import { inspectImageReport, isPinnedByDigest } from './imageReport';
import { summarizeImageReport } from './imageReportText';
import { SandboxError } from '../errors';

/** Where a box's image comes from, given what the tag points to now and what it was pinned to. */
export type PinDecision = { use: 'current'; pin?: string } | { use: 'pinned'; id: string; movedTo?: string } | { use: 'missing' };

/**
 * The pin rule of `agentSandbox.pinImageDigest`. Pinning on: the first id seen is pinned (`pin`), later the pinned
 * id is used, and a tag that moved is reported (`movedTo`), never followed. Off: the tag is followed. A reference
 * that names a digest is its own pin.
 */
export function decidePin(reference: string, currentId: string | undefined, pinnedId: string | undefined, pinEnabled: boolean): PinDecision {
  if (!pinEnabled || isPinnedByDigest(reference)) return currentId ? { use: 'current' } : { use: 'missing' };
  if (pinnedId === undefined) return currentId ? { use: 'current', pin: currentId } : { use: 'missing' };
  return { use: 'pinned', id: pinnedId, ...(currentId && currentId !== pinnedId ? { movedTo: currentId } : {}) };
}

/** The words for a tag that moved under a pin: what happened and how to follow it. */
export function tagMovedNote(reference: string, pinnedId: string, currentId: string): string {
  return (
    `${reference} now points to ${short(currentId)}, not to ${short(pinnedId)} that the box was pinned to on first use ` +
    '(agentSandbox.pinImageDigest); the box keeps the pinned image. To follow the tag, run Agent Sandbox: Follow Image Tag ' +
    '(or set agentSandbox.pinImageDigest to false), then Agent Sandbox: Reset Sandbox.'
  );
}

function short(id: string): string {
  return id.replace(/^(sha256:[0-9a-f]{12}).*/, '$1');
}

interface StoredPins {
  version: 1;
  /** Reference → pinned image id. */
  pins: Record<string, string>;
}

/**
 * Image reports (by image id) and digest pins (by reference), kept by the engine server next to its pending
 * reviews (`<storage>/images/`); in memory only without a storage directory.
 */
export class ImageStore {
  private readonly reports = new Map<string, ImageReport>();
  private readonly making = new Map<string, Promise<ImageReport>>();
  private pins: Record<string, string> | undefined;

  constructor(private readonly dir?: string) {}

  private reportFile(id: string): string | undefined {
    return this.dir && path.join(this.dir, 'reports', `${sha256(id).slice(0, 32)}.json`);
  }

  /** The stored report of an image id, if one was made. */
  async storedReport(id: string): Promise<ImageReport | undefined> {
    const known = this.reports.get(id);
    if (known) return known;
    const file = this.reportFile(id);
    if (!file) return undefined;
    try {
      const report = JSON.parse(await fs.readFile(file, 'utf8')) as ImageReport;
      if (report.id !== id) return undefined;
      this.reports.set(id, report);
      return report;
    } catch {
      return undefined;
    }
  }

  /** The report of an image id: stored, or made now (once, however many ask at the same time) and stored. */
  async report(
    engine: DockerEngine,
    reference: string,
    id: string,
    options: { labels: Record<string, string>; signal?: AbortSignal },
  ): Promise<ImageReport> {
    const stored = await this.storedReport(id);
    if (stored) return stored;
    let making = this.making.get(id);
    if (!making) {
      making = (async () => {
        const report = await inspectImageReport(engine, reference, id, options);
        this.reports.set(id, report);
        const file = this.reportFile(id);
        if (file) {
          await fs.mkdir(path.dirname(file), { recursive: true });
          await writeAtomically(file, Buffer.from(JSON.stringify(report, null, 1)));
        }
        return report;
      })();
      this.making.set(id, making);
      making.finally(() => this.making.delete(id)).catch(() => undefined);
    }
    return making;
  }

  private get pinsFile(): string | undefined {
    return this.dir && path.join(this.dir, 'pins.json');
  }

  private async loadPins(): Promise<Record<string, string>> {
    if (this.pins) return this.pins;
    let pins: Record<string, string> = {};
    if (this.pinsFile) {
      try {
        const stored = JSON.parse(await fs.readFile(this.pinsFile, 'utf8')) as StoredPins;
        if (stored.version === 1 && stored.pins && typeof stored.pins === 'object') pins = { ...stored.pins };
      } catch {
        // No pins yet (or an unreadable file): images are pinned anew on first use.
      }
    }
    this.pins = pins;
    return pins;
  }

  async pinned(reference: string): Promise<string | undefined> {
    return (await this.loadPins())[reference];
  }

  /** Pins a reference to an id, or forgets its pin (`undefined`). */
  async setPin(reference: string, id: string | undefined): Promise<void> {
    const pins = await this.loadPins();
    if (id === undefined) delete pins[reference];
    else pins[reference] = id;
    if (this.pinsFile) {
      await fs.mkdir(path.dirname(this.pinsFile), { recursive: true });
      const stored: StoredPins = { version: 1, pins };
      await writeAtomically(this.pinsFile, Buffer.from(JSON.stringify(stored, null, 1)));
    }
  }
}

/** What a box is made from: the id to run and its report, with the note when a pinned tag moved. */
export interface ResolvedImage {
  image: BoxImage;
  report: ImageReport;
}

/**
 * The image a box of `reference` runs: the tag's current id, or under `pinImageDigest` the id pinned on first use
 * (pinning it now if this is the first use), with its report (made on first use of the id).
 */
export async function resolveBoxImage(
  engine: DockerEngine,
  store: ImageStore,
  reference: string,
  options: { pin: boolean; labels: Record<string, string>; signal?: AbortSignal; dryRun?: boolean },
): Promise<ResolvedImage> {
  const current = (await engine.inspectImage(reference, { signal: options.signal }))?.Id;
  const decision = decidePin(reference, current, await store.pinned(reference), options.pin);
  if (decision.use === 'missing') {
    throw new SandboxError(
      'image-missing',
      `Image ${reference} is not present locally. Pull it (Agent Sandbox: Pull Image) or set agentSandbox.image.`,
      {
        setting: 'agentSandbox.image',
      },
    );
  }
  let id: string;
  let note: string | undefined;
  if (decision.use === 'pinned') {
    id = decision.id;
    if (decision.movedTo) note = tagMovedNote(reference, decision.id, decision.movedTo);
    if (!(await engine.inspectImage(id, { signal: options.signal }))) {
      throw new SandboxError(
        'image-missing',
        `${reference} is pinned to ${short(id)} (agentSandbox.pinImageDigest), which is no longer present locally${current ? ` (the tag now points to ${short(current)})` : ''}. Run Agent Sandbox: Follow Image Tag to use what the tag points to now, or pull the pinned image.`,
        { setting: 'agentSandbox.pinImageDigest' },
      );
    }
  } else {
    id = current!;
    if (decision.pin && !options.dryRun) await store.setPin(reference, decision.pin);
  }
  // A report is stored by id; the reference it is shown for is this one.
  const report = { ...(await store.report(engine, reference, id, options)), reference, pinnedByDigest: isPinnedByDigest(reference) };
  return {
    report,
    image: {
      reference,
      id,
      ...(report.repoDigests[0] ? { digest: report.repoDigests[0] } : {}),
      summary: summarizeImageReport(report),
      ...(note ? { note } : {}),
      hasShell: report.hasShell,
    },
  };
}
