import { createHash } from 'node:crypto';

/** SHA-256 of a whole content, lower-case hex: how the manifest, the review store and apply name contents. */
export function sha256(content: string | Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}
