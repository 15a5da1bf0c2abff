/** The message of anything thrown, for logs and error texts. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
