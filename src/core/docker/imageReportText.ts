import type { ImageReport } from '../../shared/protocol';

/** The image report in words (no dependencies: the extension host shows it too). */

/** The report in one line, for history details and notifications. */
export function summarizeImageReport(report: ImageReport): string {
  const digest = report.repoDigests[0]?.replace(/^[^@]*@/, '') ?? report.id;
  const parts = [
    `${shortDigest(digest)}${report.repoDigests.length ? '' : ' (local id, no registry digest)'}`,
    `${formatBytes(report.sizeBytes)}`,
    report.platform,
    `built ${report.created.slice(0, 10) || '?'}`,
    `user ${report.user || 'root (unset)'}`,
    report.hasShell ? '/bin/sh' : 'no shell',
    `find ${report.find}`,
    `tar ${report.tar}`,
    report.setuidCount ? `${report.setuidCount} setuid/setgid file(s)` : 'no setuid/setgid files',
    report.pinnedByDigest ? 'reference pinned by digest' : 'reference is a tag',
  ];
  return parts.join(', ');
}

/** The report as lines for a log or a detail view. */
export function describeImageReport(report: ImageReport): string[] {
  return [
    `Image ${report.reference}: ${report.id}`,
    `  digest: ${report.repoDigests.join(', ') || 'none (built or imported locally)'}${report.pinnedByDigest ? '; the reference is pinned by digest' : ''}`,
    `  size ${formatBytes(report.sizeBytes)}, built ${report.created || '?'}, ${report.platform}, default user ${report.user || 'root (unset; the box runs as 1000:1000)'}`,
    `  /bin/sh: ${report.hasShell ? 'yes' : 'no (runs only in argv form; no terminal)'}; find: ${report.find}; tar: ${report.tar}`,
    `  collect: ${report.collectPath}; mirror: ${report.mirrorPath}`,
    report.setuidCount
      ? `  setuid/setgid files (${report.setuidCount}; harmless under no-new-privileges): ${report.setuidFiles.join('; ')}${report.setuidCount > report.setuidFiles.length ? '; …' : ''}`
      : '  setuid/setgid files: none',
  ];
}

function shortDigest(digest: string): string {
  return digest.replace(/^(sha256:[0-9a-f]{12}).*/, '$1');
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 * 1024) return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${Math.ceil(bytes / 1024)} KB`;
}
