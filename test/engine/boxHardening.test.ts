// The box's hardening defaults with the smallest test image, under runc and under gVisor's runsc (the checks
// themselves are in hardeningSuite.ts).
import { defineHardeningSuite } from './hardeningSuite';
import { TEST_IMAGES } from './engineHarness';
import { RUNC, RUNSC } from './gvisorRuntimes';

for (const runtime of [RUNC, RUNSC]) {
  defineHardeningSuite({ title: 'busybox image', tag: 'busybox', image: async () => TEST_IMAGES.busybox, runtime });
}
