import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Whether the file system holding `folder` ignores case in names (macOS and Windows defaults). Asked of the
 * folder itself when its name has letters (the same entry under the other case), otherwise with a probe file
 * that is removed at once. Any doubt answers true: a case-insensitive plan only turns case twins into conflicts.
 */
export async function ignoresCase(folder: string): Promise<boolean> {
  const base = path.basename(folder);
  const swapped = [...base].map((c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase())).join('');
  try {
    if (swapped !== base) {
      const [a, b] = await Promise.all([fs.stat(folder), fs.stat(path.join(path.dirname(folder), swapped)).catch(() => undefined)]);
      return b !== undefined && a.ino === b.ino && a.dev === b.dev;
    }
    const probe = path.join(folder, `.agent-sandbox-case-${randomBytes(4).toString('hex')}-a`);
    await fs.writeFile(probe, '', { flag: 'wx' });
    try {
      return await fs.stat(probe.slice(0, -1) + 'A').then(
        () => true,
        () => false,
      );
    } finally {
      await fs.rm(probe, { force: true });
    }
  } catch {
    return true;
  }
}
