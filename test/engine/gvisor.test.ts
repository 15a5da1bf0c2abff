// gVisor-only behaviour of the box, on the real engine (the shared suites run under runsc through
// suiteUnderEachRuntime): egress refused with a message naming the cause, before anything is created.
import * as assert from 'node:assert/strict';
import { Box } from '../../src/core/box/box';
import { LABEL_OWNER } from '../../src/core/box/boxConfig';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { validateEgressSettings } from '../../src/core/egress/gatewayConfig';
import { SandboxError } from '../../src/core/errors';
import { connectTestEngine, removeEverythingOwnedBy, shOk, testOwnerId, testSettings, TEST_IMAGES } from './engineHarness';
import { GATEWAY_PROGRAM } from './egressInternet';
import { RUNSC, skipUnlessRunscRegistered } from './gvisorRuntimes';

suite('engine: gVisor (runsc) boxes', function () {
  this.timeout(120_000);
  const ownerId = testOwnerId('gvisor');
  const folder = '/tmp/agent-sandbox-gvisor-folder';
  let engine: DockerEngine | undefined;

  suiteSetup(skipUnlessRunscRegistered);
  suiteSetup(async () => {
    engine = await connectTestEngine();
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
  });

  const owned = async (owner: string): Promise<number> => {
    const label = [`${LABEL_OWNER}=${owner}`];
    const containers = await engine!.call('list', (d) => d.listContainers({ all: true, filters: { label } }));
    const volumes = (await engine!.call('list', (d) => d.listVolumes({ filters: { label } }))).Volumes ?? [];
    return containers.length + volumes.length;
  };

  test('an allowlist under runsc is refused before anything is created, naming the cause and the fix; network "none" under runsc works', async () => {
    const refusedOwner = `${ownerId}-allowlist`;
    const egress = {
      // Valid for the default runtime: only the runtime makes it unusable.
      validated: validateEgressSettings({ network: 'allowlist', allowedHosts: ['registry.npmjs.org'], gatewayImage: TEST_IMAGES.net }),
      programPath: GATEWAY_PROGRAM,
    };
    await assert.rejects(
      Box.create(engine!, testSettings({ runtime: RUNSC.setting }), { folder, ownerId: refusedOwner, egress }),
      (error: unknown) =>
        SandboxError.is(error, 'invalid-setting') &&
        error.options.setting === 'agentSandbox.network' &&
        /runtime "runsc".*127\.0\.0\.1.*agentSandbox\.network "none".*default runtime/s.test(error.message),
    );
    assert.equal(await owned(refusedOwner), 0, 'nothing half-made is left behind');
    // Control: the same box with network "none" under runsc starts and runs.
    const box = await Box.create(engine!, testSettings({ runtime: RUNSC.setting }), { folder, ownerId });
    assert.equal(await shOk(box, 'echo in-gvisor'), 'in-gvisor\n');
    const inspect = await engine!.call('inspect', (d) => d.getContainer(box.containerId).inspect());
    assert.equal(inspect.HostConfig.Runtime, 'runsc');
  });
});
