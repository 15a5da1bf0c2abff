import type { ErrorReason, ImageBuildRequest } from '../shared/protocol';

/**
 * The one error type core and server throw on purpose. Callers branch on `reason`, never on `message`;
 * the message is written for a person and names the cause and the fix.
 */
export class SandboxError extends Error {
  override readonly name = 'SandboxError';

  constructor(
    readonly reason: ErrorReason,
    message: string,
    readonly options: { setting?: string; address?: string; imageBuild?: ImageBuildRequest; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
  }

  static is(value: unknown, reason?: ErrorReason): value is SandboxError {
    return value instanceof SandboxError && (reason === undefined || value.reason === reason);
  }

  /** True for a `SandboxError` with any of these reasons (e.g. `CALLER_MUST_SEE`). */
  static isAny(value: unknown, reasons: readonly ErrorReason[]): value is SandboxError {
    return value instanceof SandboxError && reasons.includes(value.reason);
  }
}

/**
 * Errors no fallback may swallow: the caller cancelled, the box is gone, or the engine cannot be reached. A step
 * that can retry another way (a listing, a single-path read, a run's outcome) passes these on to its caller.
 */
export const CALLER_MUST_SEE: readonly ErrorReason[] = Object.freeze(['cancelled', 'no-box', 'engine-unreachable']);
