// Runs an engine or security suite once per box runtime: the engine's default (runc) and gVisor's runsc.
// The runsc copy skips, saying why, only when the engine has no runtime named runsc; CI's engine has it
// (scripts/start-docker-engine.sh registers Debian's runsc).
import type { AsyncFunc, Context, Func, Suite } from 'mocha';
import { connectTestEngine } from './engineHarness';

export interface BoxRuntime {
  /** The value of `agentSandbox.runtime` for this copy of the suite ("" = the engine's default). */
  setting: string;
  /** Whether the box runs under gVisor, where some checks read differently (see README, "gVisor"). */
  gvisor: boolean;
}

export const RUNC: BoxRuntime = { setting: '', gvisor: false };
export const RUNSC: BoxRuntime = { setting: 'runsc', gvisor: true };

let runscRegistered: Promise<boolean> | undefined;

/** Whether the test engine lists a runtime named `runsc` (asked once per test process). */
export function isRunscRegistered(): Promise<boolean> {
  return (runscRegistered ??= connectTestEngine()
    .then((engine) => engine.info({ timeoutMs: 10_000 }))
    .then((info) => Object.prototype.hasOwnProperty.call(info.Runtimes ?? {}, RUNSC.setting)));
}

/** A `suiteSetup` hook: skips the suite, with the reason on stderr, when the engine has no runsc. */
export async function skipUnlessRunscRegistered(this: Context): Promise<void> {
  if (!(await isRunscRegistered())) {
    console.warn(
      `[gvisor] SKIPPED "${this.test?.parent?.fullTitle() ?? 'suite'}": the engine at DOCKER_HOST has no runtime named runsc. ` +
        'Register it (scripts/start-docker-engine.sh does: Debian package runsc, runtimeArgs ["--network=none"]).',
    );
    this.skip();
  }
}

/**
 * Defines the suite `title` once per runtime: as before under the default runtime, and as `title [gVisor]` under
 * runsc. `body` is called inside each copy with that copy's runtime (and the copy as `this`, for timeouts).
 */
export function suiteUnderEachRuntime(title: string, body: (this: Suite, runtime: BoxRuntime) => void, runtimes = [RUNC, RUNSC]): void {
  for (const runtime of runtimes) {
    suite(runtime.gvisor ? `${title} [gVisor]` : title, function () {
      if (runtime.gvisor) suiteSetup(skipUnlessRunscRegistered);
      body.call(this, runtime);
    });
  }
}

/**
 * `test` under runc; under gVisor nothing. For cases about a mechanism of the host kernel that gVisor's own kernel
 * replaces (README, "gVisor", says how each differs there); the gVisor copy of the suite runs the rest.
 */
export function testUnlessGvisor(runtime: BoxRuntime): (title: string, fn: Func | AsyncFunc) => void {
  return runtime.gvisor ? () => undefined : (title, fn) => void test(title, fn);
}
