import * as path from 'node:path';

/**
 * The host path of a workspace-relative path (`/`-separated, as everywhere in the core and on the wire) under
 * `root`, in the host's own separators; `''` is the root itself. Empty segments (a trailing `/`) are dropped.
 */
export function hostPath(root: string, relPath: string): string {
  const segments = relPath.split('/').filter(Boolean);
  return segments.length === 0 ? root : path.join(root, ...segments);
}
