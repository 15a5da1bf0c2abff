import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/**
 * When a box last used each cache volume (volume labels cannot change, and reading a stamp inside a volume
 * would need a container). Kept in memory and, with a storage directory, in `cache-last-use.json` there, so a
 * later window of the same workspace still knows. Writes are serialized; a lost write only loses a time.
 */
export class CacheLastUse {
  private readonly times = new Map<string, number>();
  private file?: string;
  private loaded: Promise<void> = Promise.resolve();
  private writing: Promise<void> = Promise.resolve();

  setDir(dir: string): void {
    this.file = path.join(dir, 'cache-last-use.json');
    const file = this.file;
    this.loaded = fs
      .readFile(file, 'utf8')
      .then((text) => {
        const stored = JSON.parse(text) as unknown;
        if (!stored || typeof stored !== 'object') return;
        for (const [name, time] of Object.entries(stored)) {
          if (typeof time === 'number' && time > (this.times.get(name) ?? 0)) this.times.set(name, time);
        }
      })
      .catch(() => undefined); // none yet, or unreadable: times start from now
  }

  /** The volumes were just used by a box. */
  async mark(volumeNames: readonly string[], now = Date.now()): Promise<void> {
    if (volumeNames.length === 0) return;
    await this.loaded;
    for (const name of volumeNames) this.times.set(name, now);
    await this.save();
  }

  private async save(): Promise<void> {
    const file = this.file;
    if (!file) return;
    const text = JSON.stringify(Object.fromEntries(this.times));
    this.writing = this.writing.then(() =>
      fs
        .mkdir(path.dirname(file), { recursive: true })
        .then(() => fs.writeFile(file, text))
        .catch(() => undefined),
    );
    await this.writing;
  }

  /** Times by volume name, after the stored ones are read. */
  async all(): Promise<ReadonlyMap<string, number>> {
    await this.loaded;
    return this.times;
  }

  /** Forgets removed volumes. */
  async forget(volumeNames: readonly string[]): Promise<void> {
    await this.loaded;
    volumeNames.forEach((name) => this.times.delete(name));
    await this.save();
  }
}
