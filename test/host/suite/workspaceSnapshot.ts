import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Every file under `root` but `.git/`, keyed by POSIX relative path: regular files as text (`utf8`) or exact
 * bytes (`base64`), links and other entries as a marker. Two snapshots compare with `deepEqual`.
 */
export function snapshotFiles(root: string, encoding: 'utf8' | 'base64' = 'utf8'): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const rel = path.relative(root, full).split(path.sep).join('/');
      if (rel === '.git') continue;
      if (entry.isDirectory()) walk(full);
      else out[rel] = entry.isFile() ? fs.readFileSync(full).toString(encoding) : `<${entry.isSymbolicLink() ? 'symlink' : 'other'}>`;
    }
  };
  walk(root);
  return out;
}
