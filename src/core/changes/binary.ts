import { TextDecoder } from 'node:util';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * True when content is not text a diff editor can show: it holds a NUL byte or is not valid UTF-8.
 * An empty buffer is text.
 */
export function isBinary(content: Uint8Array): boolean {
  if (content.includes(0)) {
    return true;
  }
  try {
    strictUtf8.decode(content);
    return false;
  } catch {
    return true;
  }
}
