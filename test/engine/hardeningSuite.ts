// Every hardening default of the box, verified from inside a running box (and in `docker inspect`), for any image
// the box may run: the test images here, a folder's built dev container in devcontainerImage.test.ts.
import * as assert from 'node:assert/strict';
import type * as Dockerode from 'dockerode';
import { Box } from '../../src/core/box/box';
import { gvisorHostLimits, LABEL_FOLDER, LABEL_MANAGED, LABEL_OWNER, LABEL_OWNER_PID } from '../../src/core/box/boxConfig';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { SandboxError } from '../../src/core/errors';
import { connectTestEngine, removeEverythingOwnedBy, sh, shOk, testOwnerId, testSettings } from './engineHarness';
import { RUNC, skipUnlessRunscRegistered, type BoxRuntime } from './gvisorRuntimes';

const MEMORY_MIB = 64;
const PIDS = 64;
const CPUS = 0.5;
const TMP_MIB = 24;
const WORKSPACE_MIB = 48;
const ALLOWED = 'AGENT_SANDBOX_TEST_ALLOWED';
const SECRET = 'AGENT_SANDBOX_TEST_HOST_SECRET';

/** One image the hardening checks run against: the box's defaults must hold whatever it runs. */
export interface HardeningVariant {
  /** In the suite's title, e.g. `busybox image`. */
  title: string;
  /** In owner ids and the folder name. */
  tag: string;
  /** The image (built or present) the box runs. */
  image(engine: DockerEngine): Promise<string>;
  /** The box runtime (default runc); under gVisor some checks read differently (see README, "gVisor"). */
  runtime?: BoxRuntime;
}

export function defineHardeningSuite(variant: HardeningVariant): void {
  const runtime = variant.runtime ?? RUNC;
  const title = `engine: box hardening (${variant.title}, checked from inside)${runtime.gvisor ? ' [gVisor]' : ''}`;
  suite(title, () => {
    if (runtime.gvisor) suiteSetup(skipUnlessRunscRegistered);
    const ownerId = testOwnerId(`hardening-${variant.tag}${runtime.setting}`);
    const folder = `/tmp/agent-sandbox-hardening-${variant.tag}${runtime.setting}`;
    let image = '';
    let engine: DockerEngine | undefined;
    let box: Box;
    let inspect: Dockerode.ContainerInspectInfo;

    suiteSetup(async () => {
      engine = await connectTestEngine();
      image = await variant.image(engine);
      process.env[ALLOWED] = 'allowed-value';
      process.env[SECRET] = 'host-secret-value';
      box = await Box.create(
        engine,
        testSettings({
          image,
          memoryMiB: MEMORY_MIB,
          pidsLimit: PIDS,
          cpus: CPUS,
          tmpSizeMiB: TMP_MIB,
          workspaceSizeMiB: WORKSPACE_MIB,
          envAllowlist: [ALLOWED],
          runtime: runtime.setting,
        }),
        { folder, ownerId },
      );
      inspect = await engine.call('inspect', (d) => d.getContainer(box.containerId).inspect());
    });

    suiteTeardown(async () => {
      delete process.env[ALLOWED];
      delete process.env[SECRET];
      await removeEverythingOwnedBy(engine, ownerId);
    });

    test('processes run as uid 1000 and gid 1000', async () => {
      assert.equal(await shOk(box, 'id -u; id -g'), '1000\n1000\n');
      const status = await shOk(box, 'grep -E "^(Uid|Gid):" /proc/self/status');
      assert.match(status, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
      assert.match(status, /^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
    });

    test('no capabilities, no_new_privs and the default seccomp filter', async () => {
      const status = await shOk(box, 'cat /proc/self/status');
      const field = (name: string): string => status.match(new RegExp(`^${name}:\\s*(\\S+)`, 'm'))?.[1] ?? 'missing';
      assert.equal(field('CapEff'), '0000000000000000');
      assert.equal(field('CapPrm'), '0000000000000000');
      assert.equal(field('CapBnd'), '0000000000000000');
      if (runtime.gvisor) {
        // gVisor's kernel shows neither field: the OCI seccomp profile is not loaded inside the sandbox (runsc
        // without --oci-seccomp); the Sentry itself runs under gVisor's own seccomp filter on the host.
        assert.equal(field('NoNewPrivs'), 'missing');
        assert.equal(field('Seccomp'), '0');
        assert.equal(inspect.HostConfig.Runtime, 'runsc');
      } else {
        assert.equal(field('NoNewPrivs'), '1');
        assert.equal(field('Seccomp'), '2', 'seccomp must be in filter mode (the engine default profile)');
      }
      assert.deepEqual(inspect.HostConfig.SecurityOpt, ['no-new-privileges']);
      assert.deepEqual(inspect.HostConfig.CapDrop, ['ALL']);
      assert.equal(inspect.HostConfig.Privileged, false);
    });

    test('the network has only the loopback interface', async () => {
      const dev = await shOk(box, 'cat /proc/net/dev');
      const names = dev
        .split('\n')
        .slice(2)
        .map((line) => line.split(':')[0].trim())
        .filter(Boolean);
      assert.deepEqual(names, ['lo']);
      assert.equal(inspect.HostConfig.NetworkMode, 'none');
    });

    test('the root file system is read-only', async () => {
      for (const target of ['/x', '/etc/x', '/usr/x', '/bin/x']) {
        const result = await sh(box, `echo hi > ${target}`);
        assert.notEqual(result.exitCode, 0, `writing ${target} must fail`);
        // gVisor checks the directory's permission before the mount's read-only flag.
        assert.match(result.stderr, runtime.gvisor ? /Read-only file system|Permission denied/ : /Read-only file system/);
      }
      const mounts = await shOk(box, 'cat /proc/mounts');
      assert.match(mounts, /^\S+ \/ \S+ ro[,\s]/m);
      assert.equal(inspect.HostConfig.ReadonlyRootfs, true);
    });

    test('/tmp and $HOME are writable tmpfs mounts of the configured size', async () => {
      assert.equal((await shOk(box, 'echo "$HOME"')).trim(), '/home/sandbox');
      const mounts = await shOk(box, 'cat /proc/mounts');
      for (const dir of ['/tmp', '/home/sandbox']) {
        const line = mounts.split('\n').find((l) => l.split(' ')[1] === dir);
        assert.ok(line, `${dir} must be a mount`);
        assert.equal(line.split(' ')[2], 'tmpfs', `${dir} is tmpfs`);
        assert.match(line, new RegExp(`size=(${TMP_MIB * 1024}k|${TMP_MIB}m)\\b`), `${dir} has the configured size: ${line}`);
        assert.match(line, /\brw\b/);
        // gVisor's own tmpfs lists no nosuid (and set-id bits gain nothing there: no capabilities, no_new_privs).
        if (!runtime.gvisor) assert.match(line, /\bnosuid\b/);
      }
      await shOk(box, 'echo a > /tmp/a && echo b > "$HOME/b" && cat /tmp/a "$HOME/b" && rm /tmp/a "$HOME/b"');
      // The size is a real cap: writing past it fails with ENOSPC.
      const full = await sh(box, `dd if=/dev/zero of=/tmp/big bs=1M count=${TMP_MIB + 2}; echo "rc=$?"; stat -c %s /tmp/big; rm -f /tmp/big`);
      assert.match(full.stdout, /rc=[1-9]/);
      assert.match(full.stderr, /No space left on device/);
      assert.ok(Number(full.stdout.split('\n')[1]) <= TMP_MIB * 1024 * 1024, full.stdout);
    });

    test('/workspace is the labelled volume, tmpfs-backed, owned by and writable for uid 1000', async () => {
      const mounts = await shOk(box, 'cat /proc/mounts');
      const line = mounts.split('\n').find((l) => l.split(' ')[1] === '/workspace');
      assert.ok(line, '/workspace must be a mount');
      if (runtime.gvisor) {
        // gVisor's gofer serves the host's tmpfs volume over 9p: its size is what df sees through it.
        assert.equal(line.split(' ')[2], '9p');
        assert.equal((await shOk(box, 'df -kP /workspace | tail -1')).trim().split(/\s+/)[1], String(WORKSPACE_MIB * 1024));
      } else {
        assert.equal(line.split(' ')[2], 'tmpfs');
        assert.match(line, new RegExp(`size=${WORKSPACE_MIB * 1024}k`));
        assert.match(line, /uid=1000/);
      }
      assert.equal((await shOk(box, 'stat -c %u:%g /workspace')).trim(), '1000:1000');
      assert.equal(await shOk(box, 'echo data > /workspace/f && cat /workspace/f && rm /workspace/f'), 'data\n');
      assert.equal((await shOk(box, 'pwd')).trim(), '/workspace');
      const mount = inspect.Mounts.find((m) => m.Destination === '/workspace');
      assert.equal(mount?.Type, 'volume');
      assert.equal(mount?.Name, box.volumeName);
      const volume = await engine!.call('inspect volume', (d) => d.getVolume(box.volumeName).inspect());
      assert.equal(volume.Labels?.[LABEL_MANAGED], 'true');
      assert.equal(volume.Labels?.[LABEL_OWNER], ownerId);
    });

    test('no host mounts: no binds, only the workspace volume, no docker socket', async () => {
      assert.ok(!inspect.HostConfig.Binds || inspect.HostConfig.Binds.length === 0, `Binds: ${JSON.stringify(inspect.HostConfig.Binds)}`);
      assert.deepEqual(
        inspect.Mounts.map((m) => `${m.Type}:${m.Destination}`),
        ['volume:/workspace'],
      );
      const result = await sh(
        box,
        'for p in /var/run/docker.sock /run/docker.sock /docker.sock; do [ -e "$p" ] && echo "found $p"; done; ' +
          'find / -path /proc -prune -o -path /sys -prune -o -type s -print 2>/dev/null; echo done',
      );
      assert.equal(result.stdout, 'done\n', `no sockets expected, got: ${result.stdout}`);
    });

    test('the environment holds no host variables, only allowlisted ones', async () => {
      const envText = await shOk(box, 'env');
      const env = new Map(
        envText
          .split('\n')
          .filter(Boolean)
          .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
      );
      assert.equal(env.get(ALLOWED), 'allowed-value');
      assert.equal(env.has(SECRET), false, 'a host variable that is not allowlisted must not reach the box');
      assert.equal(env.get('HOME'), '/home/sandbox');
      // Nothing else from the host: every host variable with a value the box also has must be one the box sets itself.
      const boxOwned = new Set(['HOME', 'PATH', 'TERM', 'HOSTNAME', 'PWD', 'SHLVL', 'OLDPWD', '_', ALLOWED]);
      for (const [name, value] of Object.entries(process.env)) {
        if (!boxOwned.has(name) && value) {
          assert.equal(env.get(name), undefined, `host variable ${name} leaked into the box`);
        }
      }
      // The container's variables: the box's own, the allowlisted one, and those the image itself defines (never the host's).
      const imageEnv = ((await engine!.inspectImage(image))?.Config.Env ?? []).map((e) => e.slice(0, e.indexOf('=')));
      const names = (inspect.Config.Env ?? []).map((e) => e.slice(0, e.indexOf('=')));
      assert.deepEqual([...new Set(names)].sort(), [...new Set([ALLOWED, 'HOME', 'PATH', 'TERM', ...imageEnv])].sort());
    });

    test('memory equals memory+swap, CPUs and pids are limited, in inspect and in the cgroup', async () => {
      if (runtime.gvisor) {
        // The box's own kernel holds the process limit; the host cgroup holds memory with the Sentry's share.
        const host = gvisorHostLimits({ memoryMiB: MEMORY_MIB, pidsLimit: PIDS });
        assert.equal(inspect.HostConfig.Memory, host.Memory);
        assert.equal(inspect.HostConfig.MemorySwap, host.Memory);
        assert.equal(inspect.HostConfig.PidsLimit, host.PidsLimit);
        assert.deepEqual(inspect.HostConfig.Ulimits, [{ Name: 'nproc', Soft: PIDS, Hard: PIDS }]);
        assert.equal(inspect.HostConfig.NanoCpus, CPUS * 1e9);
        assert.equal((await shOk(box, 'ulimit -u')).trim(), String(PIDS));
        assert.match(await shOk(box, 'cat /proc/meminfo'), new RegExp(`^MemTotal:\\s+${host.Memory! / 1024} kB$`, 'm'));
        return;
      }
      const bytes = MEMORY_MIB * 1024 * 1024;
      assert.equal(inspect.HostConfig.Memory, bytes);
      assert.equal(inspect.HostConfig.MemorySwap, bytes);
      assert.equal(inspect.HostConfig.NanoCpus, CPUS * 1e9);
      assert.equal(inspect.HostConfig.PidsLimit, PIDS);
      const read = async (v1: string, v2: string): Promise<string> => (await shOk(box, `if [ -r ${v1} ]; then cat ${v1}; else cat ${v2}; fi`)).trim();
      const cgroupV2 = (await sh(box, '[ -r /sys/fs/cgroup/memory.max ]')).exitCode === 0;
      if (cgroupV2) {
        assert.equal(await read('/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory.max'), String(bytes));
        assert.equal(await read('/sys/fs/cgroup/memory.swap.max', '/sys/fs/cgroup/memory.swap.max'), '0');
        assert.equal(await read('/sys/fs/cgroup/cpu.max', '/sys/fs/cgroup/cpu.max'), `${CPUS * 100000} 100000`);
        assert.equal(await read('/sys/fs/cgroup/pids.max', '/sys/fs/cgroup/pids.max'), String(PIDS));
      } else {
        assert.equal(await read('/sys/fs/cgroup/memory/memory.limit_in_bytes', ''), String(bytes));
        assert.equal(await read('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes', ''), String(bytes));
        const quota = Number(await read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us', ''));
        const period = Number(await read('/sys/fs/cgroup/cpu/cpu.cfs_period_us', ''));
        assert.equal(quota / period, CPUS);
        assert.equal(await read('/sys/fs/cgroup/pids/pids.max', ''), String(PIDS));
      }
    });

    test('a fork loop hits the pids limit and stops by itself; the box survives', async () => {
      if (runtime.gvisor) {
        // No pids cgroup inside gVisor: the loop counts its own forks (echo is a builtin) until one fails.
        const loop =
          '( i=0; while [ $i -lt 200 ]; do sleep 29 & i=$((i+1)); echo $i > /tmp/forks; done ) 2>/dev/null; echo "loop-exit=$?"; cat /tmp/forks; ' +
          'pkill -x -f "sleep 29"';
        const result = await sh(box, loop, { timeoutMs: 30_000 });
        assert.equal(result.outcome, 'exited', result.stderr);
        assert.match(result.stdout, /loop-exit=[1-9]/);
        const forks = Number(result.stdout.split('\n')[1]);
        assert.ok(forks > PIDS / 2 && forks < PIDS, `the loop must stop near the limit of ${PIDS}: ${result.stdout}`);
        assert.equal(await shOk(box, 'echo alive; rm /tmp/forks'), 'alive\n');
        return;
      }
      const events = '/sys/fs/cgroup/pids/pids.events';
      const script =
        `f=${events}; [ -r $f ] || f=/sys/fs/cgroup/pids.events; ` +
        'b=$(while read -r k v; do [ "$k" = max ] && echo "$v"; done < $f); ' +
        // Bounded: 200 short sleeps, far beyond the limit; ash gives up at the first failed fork.
        `( i=0; while [ $i -lt 200 ]; do sleep 2 & i=$((i+1)); done; wait ) 2>/dev/null; ` +
        'echo "loop-exit=$?"; echo "before=$b"; ' +
        'while read -r k v; do [ "$k" = max ] && echo "after=$v"; done < $f';
      const result = await sh(box, script, { timeoutMs: 30_000 });
      assert.equal(result.outcome, 'exited', result.stderr);
      const before = Number(result.stdout.match(/before=(\d+)/)?.[1]);
      const after = Number(result.stdout.match(/after=(\d+)/)?.[1]);
      assert.ok(after > before, `pids.events max must grow: ${result.stdout}`);
      assert.match(result.stdout, /loop-exit=[1-9]/);
      // The sleeps end on their own; then the box works as before.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      assert.equal(await shOk(box, 'echo alive'), 'alive\n');
    });

    test('a memory hog is OOM-killed and reported as oom', async () => {
      if (runtime.gvisor) {
        // Under gVisor the host's OOM killer takes the Sentry: the whole box stops, so this runs in a box of its own.
        const hogOwner = `${ownerId}-oom`;
        const hogBox = await Box.create(engine!, testSettings({ image, memoryMiB: MEMORY_MIB, runtime: runtime.setting }), {
          folder,
          ownerId: hogOwner,
        });
        try {
          const result = await sh(hogBox, 'dd if=/dev/zero of=/dev/null bs=400M count=1', { timeoutMs: 60_000 });
          assert.equal(result.outcome, 'oom', `outcome ${result.outcome}, exit ${result.exitCode}, stderr ${result.stderr}`);
          assert.equal(result.boxLost, true);
          assert.match(result.error ?? '', /ran out of memory.*gVisor.*agentSandbox\.memoryMiB/);
          // The same hog within the limit is an ordinary run: only exceeding it stops the box.
          assert.equal(await shOk(box, 'dd if=/dev/zero of=/dev/null bs=16M count=1 2>/dev/null; echo fits'), 'fits\n');
        } finally {
          await removeEverythingOwnedBy(engine, hogOwner);
        }
        return;
      }
      // ash keeps a command substitution's output in memory: 200 MB cannot fit in 64 MiB.
      const result = await sh(box, 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); exit $?', { timeoutMs: 60_000 });
      assert.equal(result.outcome, 'oom', `outcome ${result.outcome}, exit ${result.exitCode}, stderr ${result.stderr}`);
      assert.equal(result.exitCode, 137);
      assert.equal(await shOk(box, 'echo still-alive'), 'still-alive\n');
      // An ordinary exit 137 is not an OOM.
      const plain = await sh(box, 'exit 137');
      assert.equal(plain.outcome, 'exited');
      assert.equal(plain.exitCode, 137);
    });

    test('pid 1 is the init process', async () => {
      const cmdline = await shOk(box, 'tr "\\0" " " < /proc/1/cmdline');
      assert.match(cmdline, /^(\/sbin\/docker-init|\/dev\/init|\S*tini)\b/);
      assert.equal(inspect.HostConfig.Init, true);
    });

    test('labels let the extension find the box', () => {
      const labels = inspect.Config.Labels ?? {};
      assert.equal(labels[LABEL_MANAGED], 'true');
      assert.equal(labels[LABEL_FOLDER], folder);
      assert.equal(labels[LABEL_OWNER], ownerId);
      assert.equal(labels[LABEL_OWNER_PID], String(process.pid));
      assert.equal(inspect.Config.User, '1000:1000');
      assert.equal(box.image.reference, image);
      assert.match(box.image.id, /^sha256:[0-9a-f]{64}$/);
    });

    test('an unknown runtime fails creation with the engine message and leaves nothing behind', async () => {
      const runtimeOwner = `${ownerId}-runtime`;
      await assert.rejects(
        Box.create(engine!, testSettings({ runtime: 'agent-sandbox-no-such-runtime' }), { folder, ownerId: runtimeOwner }),
        (error: unknown) => SandboxError.is(error, 'engine-error') && /agent-sandbox-no-such-runtime/.test((error as Error).message),
      );
      const label = [`${LABEL_OWNER}=${runtimeOwner}`];
      assert.deepEqual(await engine!.call('list', (d) => d.listContainers({ all: true, filters: { label } })), []);
      assert.deepEqual((await engine!.call('list', (d) => d.listVolumes({ filters: { label } }))).Volumes ?? [], []);
    });
  });
}
