import * as fc from 'fast-check';
import { FUZZ_PROPERTIES } from './fuzz/fuzzProperties';

/**
 * The collect → apply pipeline fuzzed with generated tar archives (test/security/fuzz/archives.ts) on a fixed
 * seed, so CI is reproducible; `npm run fuzz` runs the same properties with a random seed and many more runs.
 * A failure prints the seed and the counterexample path: replay it with
 * `npm run fuzz -- --property=<id> --seed=<seed> --path=<path>`.
 */
const SEED = 20261129;

suite('security: fuzzed archives through collect and apply', () => {
  for (const fuzz of FUZZ_PROPERTIES) {
    test(fuzz.title, async function () {
      this.timeout(120_000);
      await fc.assert(fuzz.property(), {
        seed: SEED,
        numRuns: fuzz.ciRuns,
        // A run that does not finish (a parser waiting forever) fails instead of hanging the tier.
        plugins: [fc.timeout(10_000), fc.interruptAfterTimeLimit(90_000)],
      });
    });
  }
});
