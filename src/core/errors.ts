import type { ErrorReason } from '../shared/protocol';

/**
 * The one error type core and server throw on purpose. Callers branch on `reason`, never on `message`;
 * the message is written for a person and names the cause and the fix.
 */
export class SandboxError extends Error {
  override readonly name = 'SandboxError';

  constructor(
    readonly reason: ErrorReason,
    message: string,
    readonly options: { setting?: string; address?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
  }

  static is(value: unknown, reason?: ErrorReason): value is SandboxError {
    return value instanceof SandboxError && (reason === undefined || value.reason === reason);
  }
}
