/** Single-quotes a value for a POSIX shell (a `'` inside becomes `'\''`). */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
