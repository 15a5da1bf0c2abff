import { TOKEN_PATTERNS } from '../secrets/tokenPatterns';

/** What replaces a secret in recorded text. */
export const REDACTED = '[REDACTED]';

/**
 * Values shorter than this are not redacted where they appear in output: a variable set to `1` or `dev`
 * would otherwise blank out every such character sequence and make the record unreadable. Such short values
 * are not secrets in any scheme the allowlist is meant for.
 */
export const MIN_REDACTED_VALUE_LENGTH = 4;

/**
 * Replaces known token formats and the given values (the allowlisted host variables' values) in `text`.
 * Longer values are replaced first so a value that contains another is not left half-redacted.
 */
export function redactSecrets(text: string, values: readonly string[] = []): string {
  let result = text;
  const distinct = [...new Set(values.filter((v) => v.length >= MIN_REDACTED_VALUE_LENGTH))].sort((a, b) => b.length - a.length);
  for (const value of distinct) result = result.split(value).join(REDACTED);
  for (const { pattern } of TOKEN_PATTERNS) {
    result = result.replace(pattern, (...args: unknown[]) => {
      const groups = args[args.length - 1] as Record<string, string | undefined> | undefined;
      const keep = typeof groups === 'object' && groups ? (groups.keep ?? '') : '';
      return `${keep}${REDACTED}`;
    });
  }
  return result;
}

/**
 * Keeps at most `maxBytes` of `text`: the first quarter and the last three quarters (the end of a failing
 * build says most), with a marker where the middle was cut.
 */
export function capText(text: string, maxBytes: number): { text: string; cut: boolean } {
  const buffer = Buffer.from(text, 'utf8');
  if (buffer.length <= maxBytes) return { text, cut: false };
  const head = Math.floor(maxBytes / 4);
  const tail = maxBytes - head;
  const omitted = buffer.length - head - tail;
  // Cutting a buffer can split a UTF-8 sequence; the decoder turns the halves into U+FFFD, never into garbage.
  const headText = buffer
    .subarray(0, head)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
  const tailText = buffer
    .subarray(buffer.length - tail)
    .toString('utf8')
    .replace(/^\uFFFD+/, '');
  return { text: `${headText}\n[… ${omitted} bytes not kept in the run history …]\n${tailText}`, cut: true };
}
