import * as assert from 'node:assert/strict';
import type { BoxSettings } from '../../../src/shared/protocol';
import {
  allowlistedEnv,
  boxLabels,
  boxNames,
  containerCreateOptions,
  DEFAULT_BOX_SETTINGS,
  GVISOR_MEMORY_OVERHEAD_MIB,
  isGvisorRuntime,
  isImageReference,
  validateBoxSettings,
  volumeCreateOptions,
} from '../../../src/core/box/boxConfig';
import { SandboxError } from '../../../src/core/errors';

function rejects(partial: Record<string, unknown>, key: string, message: RegExp): void {
  assert.throws(
    () => validateBoxSettings(partial as Partial<BoxSettings>),
    (error: unknown) => {
      assert.ok(SandboxError.is(error, 'invalid-setting'), `${JSON.stringify(partial)}: ${String(error)}`);
      assert.equal(error.options.setting, `agentSandbox.${key}`);
      assert.ok(error.message.startsWith(`agentSandbox.${key}: `), error.message);
      assert.match(error.message, message);
      return true;
    },
  );
}

suite('unit: validateBoxSettings', () => {
  test('an empty object gives the defaults', () => {
    assert.deepEqual(validateBoxSettings({}), DEFAULT_BOX_SETTINGS);
    assert.deepEqual(DEFAULT_BOX_SETTINGS, {
      image: 'auto',
      memoryMiB: 2048,
      cpus: 2,
      pidsLimit: 512,
      workspaceSizeMiB: 2048,
      workspaceVolume: 'tmpfs',
      tmpSizeMiB: 512,
      runtime: '',
      envAllowlist: [],
      exclude: [],
      useGitignore: false,
      runTimeoutSeconds: 600,
      outputLimitKiB: 1024,
      idleTimeoutMinutes: 30,
      maxFileSizeMiB: 100,
      gitHistory: 'fresh',
      pinImageDigest: true,
      caches: true,
      cacheSizeMiB: 4096,
    });
  });

  test('given values override defaults; unknown keys are ignored', () => {
    const settings = validateBoxSettings({
      memoryMiB: 4096,
      cpus: 0.5,
      runtime: 'runsc',
      workspaceVolume: 'disk',
      envAllowlist: ['GH_TOKEN'],
      extra: 1,
    } as never);
    assert.equal(settings.memoryMiB, 4096);
    assert.equal(settings.cpus, 0.5);
    assert.equal(settings.runtime, 'runsc');
    assert.equal(settings.workspaceVolume, 'disk');
    assert.deepEqual(settings.envAllowlist, ['GH_TOKEN']);
    assert.equal('extra' in settings, false);
  });

  test('numbers out of range, fractional or of the wrong type name the key and the range', () => {
    rejects({ memoryMiB: 32 }, 'memoryMiB', /from 64 to 1048576 MiB/);
    rejects({ memoryMiB: 100.5 }, 'memoryMiB', /whole number/);
    rejects({ memoryMiB: '2048' }, 'memoryMiB', /"2048" is not valid/);
    rejects({ pidsLimit: 0 }, 'pidsLimit', /from 16 to/);
    rejects({ workspaceSizeMiB: -1 }, 'workspaceSizeMiB', /from 16 to/);
    rejects({ tmpSizeMiB: 2 }, 'tmpSizeMiB', /from 8 to/);
    rejects({ runTimeoutSeconds: -5 }, 'runTimeoutSeconds', /0 = none/);
    rejects({ outputLimitKiB: 0 }, 'outputLimitKiB', /from 1 to/);
    rejects({ idleTimeoutMinutes: 1e9 }, 'idleTimeoutMinutes', /0 = never/);
    rejects({ maxFileSizeMiB: 0 }, 'maxFileSizeMiB', /from 1 to 4096 MiB/);
    rejects({ cpus: 0 }, 'cpus', /from 0\.1 to 1024/);
    rejects({ cpus: Number.NaN }, 'cpus', /not valid/);
    rejects({ cpus: '2' }, 'cpus', /not valid/);
    assert.equal(validateBoxSettings({ runTimeoutSeconds: 0, idleTimeoutMinutes: 0 }).runTimeoutSeconds, 0);
  });

  test('image references follow Docker reference syntax', () => {
    for (const good of [
      'node:22-bookworm',
      'busybox',
      'agent-sandbox-test/busybox',
      'ghcr.io/org/team/image:1.2.3',
      'localhost:5000/x/y:latest',
      'registry.example.com:443/a_b/c__d/e-f:tag',
      `busybox@sha256:${'a'.repeat(64)}`,
      `node:22@sha256:${'0'.repeat(64)}`,
    ]) {
      assert.equal(isImageReference(good), true, good);
      assert.equal(validateBoxSettings({ image: good }).image, good);
    }
    for (const bad of ['Node:22', 'node:', ':latest', '-node', 'node 22', 'node:22; rm -rf /', 'a//b', 'node@sha256:short', '']) {
      assert.equal(bad !== '' && isImageReference(bad), false, bad);
      rejects({ image: bad }, 'image', /image reference/);
    }
    rejects({ image: 42 }, 'image', /image reference/);
  });

  test('runtime names, workspace volume kinds and booleans', () => {
    assert.equal(validateBoxSettings({ runtime: 'io.containerd.runsc.v1' }).runtime, 'io.containerd.runsc.v1');
    rejects({ runtime: 'run sc' }, 'runtime', /runtime name/);
    rejects({ runtime: '--privileged' }, 'runtime', /runtime name/);
    rejects({ workspaceVolume: 'ram' }, 'workspaceVolume', /"tmpfs" or "disk"/);
    rejects({ useGitignore: 'yes' }, 'useGitignore', /true or false/);
    assert.equal(validateBoxSettings({ gitHistory: 'full' }).gitHistory, 'full');
    rejects({ gitHistory: 'all' } as never, 'gitHistory', /"fresh", "none" or "full"/);
  });

  test('the env allowlist holds variable names only, never HOME or PATH', () => {
    rejects({ envAllowlist: 'GH_TOKEN' }, 'envAllowlist', /list/);
    rejects({ envAllowlist: ['1ABC'] }, 'envAllowlist', /not an environment variable name/);
    rejects({ envAllowlist: ['A=B'] }, 'envAllowlist', /not an environment variable name/);
    rejects({ envAllowlist: ['PATH'] }, 'envAllowlist', /set by the box itself/);
    rejects({ envAllowlist: ['HOME'] }, 'envAllowlist', /set by the box itself/);
    rejects({ exclude: ['ok', ''] }, 'exclude', /non-empty glob/);
  });

  test('allowlistedEnv takes only listed variables that the host has', () => {
    assert.deepEqual(allowlistedEnv(['A', 'B', 'PATH'], { A: '1', C: '3', PATH: '/host/bin' }), ['A=1']);
  });
});

suite('unit: box create options', () => {
  const labels = boxLabels({ folder: '/work/project', ownerId: 'server-1', ownerPid: 4242, ownerHost: 'dev-machine' });

  test('labels name the folder and the owner', () => {
    assert.deepEqual(labels, {
      'dev.agent-sandbox.managed': 'true',
      'dev.agent-sandbox.folder': '/work/project',
      'dev.agent-sandbox.owner': 'server-1',
      'dev.agent-sandbox.owner-pid': '4242',
      'dev.agent-sandbox.owner-host': 'dev-machine',
    });
  });

  test('names are valid Docker names, unique per call, readable', () => {
    const a = boxNames('/work/My Project!');
    const b = boxNames('/work/My Project!');
    assert.match(a.name, /^agent-sandbox-my-project-[0-9a-f]{8}-[0-9a-f]{6}$/);
    assert.notEqual(a.name, b.name);
    assert.equal(a.volumeName, `${a.name}-workspace`);
    assert.match(boxNames('/').name, /^agent-sandbox-folder-/);
  });

  test('the container is hardened', () => {
    const settings = validateBoxSettings({ memoryMiB: 512, cpus: 1.5, pidsLimit: 100, tmpSizeMiB: 64 });
    const options = containerCreateOptions(settings, { name: 'n', volumeName: 'v', labels, env: ['GH_TOKEN=abc'] });
    const host = options.HostConfig!;
    assert.equal(options.User, '1000:1000');
    assert.equal(options.WorkingDir, '/workspace');
    assert.deepEqual(options.Env, ['HOME=/home/sandbox', 'TERM=xterm-256color', 'GH_TOKEN=abc']);
    assert.equal(options.Labels?.['dev.agent-sandbox.owner'], 'server-1');
    assert.equal(options.Labels?.['dev.agent-sandbox.volume'], 'v');
    assert.equal(host.ReadonlyRootfs, true);
    assert.deepEqual(host.CapDrop, ['ALL']);
    assert.equal(host.CapAdd, undefined);
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges']);
    assert.equal(host.NetworkMode, 'none');
    assert.equal(host.Memory, 512 * 1024 * 1024);
    assert.equal(host.MemorySwap, host.Memory);
    assert.equal(host.NanoCpus, 1.5e9);
    assert.equal(host.PidsLimit, 100);
    assert.equal(host.Init, true);
    assert.equal(host.Privileged, false);
    assert.equal(host.Binds, undefined);
    assert.equal(host.Runtime, undefined);
    assert.deepEqual(host.Mounts, [{ Type: 'volume', Source: 'v', Target: '/workspace', VolumeOptions: { NoCopy: true } }]);
    assert.match(host.Tmpfs!['/tmp'], /size=64m/);
    assert.match(host.Tmpfs!['/home/sandbox'], /size=64m.*uid=1000,gid=1000/);
    assert.equal(JSON.stringify(options).includes('docker.sock'), false);
    const runsc = containerCreateOptions(validateBoxSettings({ runtime: 'runsc' }), { name: 'n', volumeName: 'v', labels, env: [] });
    assert.equal(runsc.HostConfig?.Runtime, 'runsc');
  });

  test("under gVisor the process limit is the box kernel's RLIMIT_NPROC, the host cgroups get the Sentry's share on top", () => {
    const settings = { memoryMiB: 512, pidsLimit: 100 };
    const runsc = containerCreateOptions(validateBoxSettings({ ...settings, runtime: 'runsc' }), {
      name: 'n',
      volumeName: 'v',
      labels,
      env: [],
    }).HostConfig!;
    assert.deepEqual(runsc.Ulimits, [{ Name: 'nproc', Soft: 100, Hard: 100 }]);
    assert.equal(runsc.PidsLimit, 256 + 100 * 10);
    assert.equal(runsc.Memory, (512 + GVISOR_MEMORY_OVERHEAD_MIB) * 1024 * 1024);
    assert.equal(runsc.MemorySwap, runsc.Memory);
    // Everything else stays the box's own hardening.
    assert.deepEqual(runsc.CapDrop, ['ALL']);
    assert.deepEqual(runsc.SecurityOpt, ['no-new-privileges']);
    assert.equal(runsc.ReadonlyRootfs, true);
    assert.equal(runsc.NetworkMode, 'none');
    // Under runc (or another runtime) nothing changes: the pids cgroup counts the box's own processes.
    for (const runtime of ['', 'io.containerd.kata.v2']) {
      const other = containerCreateOptions(validateBoxSettings({ ...settings, runtime }), {
        name: 'n',
        volumeName: 'v',
        labels,
        env: [],
      }).HostConfig!;
      assert.equal(other.Ulimits, undefined);
      assert.equal(other.PidsLimit, 100);
      assert.equal(other.Memory, 512 * 1024 * 1024);
    }
    assert.equal(isGvisorRuntime('runsc'), true);
    assert.equal(isGvisorRuntime('runsc-kvm'), true);
    assert.equal(isGvisorRuntime('runc'), false);
  });

  test('env entries that are not NAME=value or that set PATH are refused', () => {
    for (const env of [['PATH=/evil'], ['HOME=/root'], ['=x'], ['NOVALUE'], ['BAD-NAME=1']]) {
      assert.throws(
        () => containerCreateOptions(DEFAULT_BOX_SETTINGS, { name: 'n', volumeName: 'v', labels, env }),
        (error: unknown) => SandboxError.is(error, 'invalid-setting'),
        JSON.stringify(env),
      );
    }
  });

  test('the workspace volume is tmpfs-backed and owned by the box user, or a plain local volume', () => {
    const tmpfs = volumeCreateOptions(validateBoxSettings({ workspaceSizeMiB: 300 }), { volumeName: 'v', labels });
    assert.deepEqual(tmpfs.DriverOpts, { type: 'tmpfs', device: 'tmpfs', o: 'size=300m,uid=1000,gid=1000,mode=0755,nosuid,nodev' });
    assert.equal(tmpfs.Labels, labels);
    const disk = volumeCreateOptions(validateBoxSettings({ workspaceVolume: 'disk' }), { volumeName: 'v', labels });
    assert.equal(disk.DriverOpts, undefined);
    assert.equal(disk.Driver, 'local');
  });
});
