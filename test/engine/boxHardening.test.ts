// The box's hardening defaults with the smallest test image (the checks themselves are in hardeningSuite.ts).
import { defineHardeningSuite } from './hardeningSuite';
import { TEST_IMAGES } from './engineHarness';

defineHardeningSuite({ title: 'busybox image', tag: 'busybox', image: async () => TEST_IMAGES.busybox });
