// `agentSandbox.image: "auto"`: the folder's dev container (built with the Dev Containers CLI) or
// `.agent-sandbox/Dockerfile`, confirmed, tagged by the hash of its inputs; the box stays hardened whatever it runs.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_IMAGE } from '../../src/core/image/imageSource';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { SandboxError } from '../../src/core/errors';
import { ConfigureRequest, EnsureBoxRequest, ExecRequest, type BoxInfo, type ErrorData, type ExecResult } from '../../src/shared/protocol';
import { Box } from '../../src/core/box/box';
import { connectTestEngine, removeEverythingOwnedBy, sh, testOwnerId, testSettings, TEST_IMAGES } from './engineHarness';
import { startEngineServer, stopEngineServer, type EngineServerProcess } from '../builders/engineServer';
import { defineHardeningSuite } from './hardeningSuite';
import { writeTree } from '../builders/trees';
import { ASKING, confirmAndBuild, DEVCONTAINER_PROJECT, fixtureCopy, removeBuiltImages, testResolver } from './folderImageFixtures';

const built = new Set<string>();
let hardeningFolder: { folder: string; dispose(): void } | undefined;

defineHardeningSuite({
  title: 'image auto: a dev container with a Dockerfile and a local feature, built',
  tag: 'devcontainer',
  image: async (engine) => {
    hardeningFolder = fixtureCopy(DEVCONTAINER_PROJECT);
    const { image } = await confirmAndBuild(engine, hardeningFolder.folder);
    built.add(image.reference);
    assert.equal(image.source.kind, 'devcontainer');
    return image.reference;
  },
});

suite('engine: image auto (dev containers and .agent-sandbox/Dockerfile)', () => {
  let engine: DockerEngine | undefined;
  const copies: { dispose(): void }[] = [];
  const copy = (source?: string) => {
    const made = fixtureCopy(source);
    copies.push(made);
    return made.folder;
  };

  suiteSetup(async () => {
    engine = await connectTestEngine();
  });

  suiteTeardown(async () => {
    hardeningFolder?.dispose();
    for (const made of copies) made.dispose();
    await removeBuiltImages(engine, built);
  });

  test('an image-form devcontainer.json: asked about, then built on the image and tagged by its input hash', async () => {
    const folder = copy();
    await writeTree(folder, {
      '.devcontainer.json': JSON.stringify({ image: TEST_IMAGES.node, runArgs: ['--privileged'], forwardPorts: [8080] }),
    });
    const progress: string[] = [];
    const { image, request } = await confirmAndBuild(engine!, folder, { progress: (message) => progress.push(message) });
    built.add(image.reference);
    assert.equal(request.file, '.devcontainer.json');
    assert.equal(request.builds, `the image ${TEST_IMAGES.node}`);
    assert.deepEqual(request.ignored, ['runArgs', 'forwardPorts']);
    assert.match(request.inputHash, /^[0-9a-f]{64}$/);
    assert.equal(image.reference, `agent-sandbox-built:devcontainer-${request.inputHash.slice(0, 32)}`);
    assert.deepEqual(image.source, {
      kind: 'devcontainer',
      file: '.devcontainer.json',
      inputHash: request.inputHash,
      built: true,
      ignored: ['runArgs', 'forwardPorts'],
    });
    const inspect = await engine!.inspectImage(image.reference);
    assert.ok(inspect, 'the built image is on the engine');
    assert.ok(inspect.Config.Labels?.['devcontainer.metadata'], 'built by the Dev Containers CLI (its metadata label)');
    assert.ok(
      progress.some((m) => /^Building the image: Step \d+\/\d+/.test(m)),
      `build steps as progress: ${progress.join(' | ')}`,
    );
  });

  test('unchanged inputs reuse the image; a changed feature or Dockerfile builds anew; a file outside them does not count', async () => {
    const folder = copy(DEVCONTAINER_PROJECT);
    const resolver = testResolver();
    const first = (await confirmAndBuild(engine!, folder, { resolver })).image;
    built.add(first.reference);
    const decisions = { allowed: [first.source.inputHash!], refused: [], ask: true };
    const again = await resolver.resolve({ engine: engine!, folder, setting: 'auto', decisions, progress: () => undefined });
    assert.equal(again.reference, first.reference);
    assert.equal(again.source.built, false, 'unchanged inputs: no build');
    // The project's own files are not the image's inputs (the build context is .devcontainer).
    fs.appendFileSync(path.join(folder, 'README.md'), 'more\n');
    fs.appendFileSync(path.join(folder, 'greet.js'), '// more\n');
    const untouched = await resolver.resolve({ engine: engine!, folder, setting: 'auto', decisions, progress: () => undefined });
    assert.equal(untouched.source.inputHash, first.source.inputHash);
    assert.equal(untouched.source.built, false);

    fs.appendFileSync(path.join(folder, '.devcontainer', 'hello-feature', 'install.sh'), `# changed ${Date.now()}\n`);
    const changed = await confirmAndBuild(engine!, folder, { resolver });
    built.add(changed.image.reference);
    assert.notEqual(changed.request.inputHash, first.source.inputHash, 'a changed feature is another build (and asks again)');
    assert.notEqual(changed.image.reference, first.reference);
    assert.equal(changed.image.source.built, true);
  });

  test('declined, in Restricted Mode (no asking) or without a client that can ask: nothing is built and the default image is used', async () => {
    const folder = copy(DEVCONTAINER_PROJECT);
    const log: string[] = [];
    const resolver = testResolver(log);
    const hash = await resolver.resolve({ engine: engine!, folder, setting: 'auto', decisions: ASKING, progress: () => undefined }).then(
      () => assert.fail('must ask'),
      (error: unknown) => (error as SandboxError).options.imageBuild!.inputHash,
    );
    const cases = [
      { decisions: { allowed: [], refused: [hash], ask: true }, note: /you declined building it/ },
      { decisions: { allowed: [hash], refused: [], ask: false }, note: /needs a trusted workspace/ },
      { decisions: undefined, note: /this client cannot confirm/ },
    ];
    for (const { decisions, note } of cases) {
      const image = await resolver.resolve({ engine: engine!, folder, setting: 'auto', decisions, progress: () => undefined });
      assert.equal(image.reference, DEFAULT_IMAGE);
      assert.equal(image.source.kind, 'default');
      assert.equal(image.source.file, '.devcontainer/devcontainer.json');
      assert.match(image.source.note ?? '', note);
    }
    assert.ok(!log.some((line) => line.includes(': building ')), `nothing was built: ${log.join('\n')}`);
    // A named image is used as is, whatever the folder holds.
    const named = await resolver.resolve({ engine: engine!, folder, setting: TEST_IMAGES.busybox, decisions: ASKING, progress: () => undefined });
    assert.deepEqual(named, { reference: TEST_IMAGES.busybox, source: { kind: 'setting' } });
  });

  test('.agent-sandbox/Dockerfile when there is no dev container; a dev container wins when both exist', async () => {
    const folder = copy();
    await writeTree(folder, {
      '.agent-sandbox/Dockerfile': `FROM ${TEST_IMAGES.busybox}\nCOPY marker.txt /marker.txt\n`,
      '.agent-sandbox/marker.txt': 'from the agent-sandbox folder\n',
    });
    const { image, request } = await confirmAndBuild(engine!, folder);
    built.add(image.reference);
    assert.equal(request.file, '.agent-sandbox/Dockerfile');
    assert.equal(image.source.kind, 'dockerfile');
    assert.equal(image.reference, `agent-sandbox-built:dockerfile-${request.inputHash.slice(0, 32)}`);
    const inspect = await engine!.inspectImage(image.reference);
    assert.equal(inspect?.Config.Labels?.['dev.agent-sandbox.image-inputs'], request.inputHash);

    await writeTree(folder, { '.devcontainer/devcontainer.json': JSON.stringify({ image: TEST_IMAGES.busybox }) });
    const withDevcontainer = await testResolver()
      .resolve({ engine: engine!, folder, setting: 'auto', decisions: ASKING, progress: () => undefined })
      .catch((error: SandboxError) => error.options.imageBuild);
    assert.equal((withDevcontainer as { file: string }).file, '.devcontainer/devcontainer.json');
  });

  test('cancelling stops a build: the build container is gone and nothing is tagged', async () => {
    const folder = copy();
    const token = `agent-sandbox-cancel-${process.pid}-${Date.now()}`;
    await writeTree(folder, { '.agent-sandbox/Dockerfile': `FROM ${TEST_IMAGES.busybox}\nRUN echo ${token} && sleep 60\n` });
    const builtTags = async () =>
      (await engine!.call('list', (d) => d.listImages({ filters: { reference: ['agent-sandbox-built'] } }))).flatMap((i) => i.RepoTags ?? []);
    const before = await builtTags();
    const controller = new AbortController();
    const started = Date.now();
    const outcome = confirmAndBuild(engine!, folder, {
      signal: controller.signal,
      progress: (message) => {
        if (message.includes(token)) setTimeout(() => controller.abort(), 1500);
      },
    }).then(
      () => assert.fail('a cancelled build must not succeed'),
      (error: unknown) => error,
    );
    const error = await outcome;
    assert.ok(SandboxError.is(error, 'cancelled'), String(error));
    assert.ok(Date.now() - started < 30_000, 'cancelled long before the 60 s step ended');
    // The engine stops the step when its client goes: no container still runs it.
    let running: string[] = [];
    for (let i = 0; i < 20; i++) {
      const containers = await engine!.call('list', (d) => d.listContainers({ all: false }));
      running = containers.filter((c) => c.Command.includes(token)).map((c) => c.Id);
      if (running.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.deepEqual(running, [], 'the build step still runs after the cancel');
    const after = await builtTags();
    assert.deepEqual(
      after.filter((tag) => !before.includes(tag)),
      [],
      'no image was tagged by the cancelled build',
    );
  });

  test('a missing docker command line is a clear error naming the cause and the fix', async () => {
    const folder = copy();
    await writeTree(folder, { '.agent-sandbox/Dockerfile': `FROM ${TEST_IMAGES.busybox}\nRUN echo ${Date.now()}\n` });
    const resolver = testResolver([], { dockerPath: path.join(folder, 'no-such-docker') });
    await assert.rejects(
      confirmAndBuild(engine!, folder, { resolver }),
      (error: unknown) =>
        SandboxError.is(error, 'docker-cli-missing') && /docker command line/.test(error.message) && /Install Docker's CLI/.test(error.message),
    );
  });
});

suite('engine: image auto through the engine server (the fixture project builds and runs its own tests in the box)', () => {
  let server: EngineServerProcess | undefined;
  let engine: DockerEngine | undefined;
  const fixture = fixtureCopy(DEVCONTAINER_PROJECT);
  let info: BoxInfo;

  suiteSetup(async () => {
    engine = await connectTestEngine();
    server = await startEngineServer({ box: { memoryMiB: 512, idleTimeoutMinutes: 0 } });
    const configure = (allowed: string[]) =>
      server!.connection.sendRequest(ConfigureRequest.type, {
        engine: {},
        box: { memoryMiB: 512, idleTimeoutMinutes: 0, caches: false },
        imageBuilds: { allowed, refused: [], ask: true },
      });
    await configure([]);
    const refused = await server.connection.sendRequest(EnsureBoxRequest.type, { folder: fixture.folder }).then(
      () => assert.fail('the build must be confirmed first'),
      (error: { data?: ErrorData }) => error,
    );
    assert.equal(refused.data?.reason, 'image-build-unconfirmed');
    const request = refused.data!.imageBuild!;
    assert.equal(request.folder, fixture.folder);
    assert.equal(request.file, '.devcontainer/devcontainer.json');
    assert.match(request.builds, /the Dockerfile \.devcontainer\/Dockerfile \(build context \.devcontainer\) with the features \.\/hello-feature/);
    await configure([request.inputHash]);
    info = await server.connection.sendRequest(EnsureBoxRequest.type, { folder: fixture.folder });
  });

  suiteTeardown(async () => {
    await stopEngineServer(server ?? {});
    await removeBuiltImages(engine, info ? [info.image.reference] : []);
    fixture.dispose();
  });

  const exec = (command: string) =>
    server!.connection.sendRequest(ExecRequest.type, { folder: fixture.folder, command, timeoutSeconds: 60 }) as Promise<ExecResult>;

  test("the project's own tests pass in the box (they need the Dockerfile's and the feature's work)", async () => {
    assert.match(info.image.reference, /^agent-sandbox-built:devcontainer-[0-9a-f]{32}$/);
    const result = await exec('node --test 2>&1');
    assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /# pass 2/);
    assert.match(result.stdout, /# fail 0/);
    // Control: the base image has neither the feature's program nor the Dockerfile's file the tests read.
    const ownerId = testOwnerId('devcontainer-control');
    try {
      const bare = await Box.create(engine!, testSettings({ image: TEST_IMAGES.node }), { folder: fixture.folder, ownerId });
      const missing = await sh(bare, 'command -v hello; cat /etc/fixture-built; echo rc=$?');
      assert.match(missing.stdout, /^rc=[1-9]$/m);
      assert.doesNotMatch(missing.stdout, /hello|from-build-args/);
    } finally {
      await removeEverythingOwnedBy(engine, ownerId);
    }
  });

  test('the ignored devcontainer options are listed in the box info and in every run, and none took effect', async () => {
    const ignored = [
      'runArgs',
      'mounts',
      'privileged',
      'capAdd',
      'securityOpt',
      'init',
      'remoteEnv',
      'remoteUser',
      'forwardPorts',
      'postCreateCommand',
    ];
    assert.deepEqual(info.imageSource?.ignored, ignored);
    assert.equal(info.imageSource?.kind, 'devcontainer');
    assert.match(info.imageSource?.note ?? '', /postCreateCommand/);
    // With features, the Dev Containers CLI writes containerEnv into the image (as ENV lines would be): repository
    // values, part of the image, and said so; remoteEnv is not applied.
    assert.match(info.imageSource?.note ?? '', /containerEnv \(FIXTURE_CONTAINER_ENV\) is part of the image/);
    const result = await exec(
      'id -u; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; env; ls /workspace; ls /host 2>&1; cat /proc/net/dev',
    );
    assert.deepEqual(result.imageSource, info.imageSource);
    assert.match(result.stdout, /^1000$/m, 'remoteUser root is not used');
    assert.match(result.stdout, /^CapEff:\s+0000000000000000$/m, 'capAdd and privileged are not used');
    assert.match(result.stdout, /^NoNewPrivs:\s+1$/m);
    assert.match(result.stdout, /^Seccomp:\s+2$/m, 'securityOpt seccomp=unconfined is not used');
    assert.doesNotMatch(result.stdout, /FIXTURE_REMOTE_ENV/);
    assert.match(result.stdout, /^FIXTURE_CONTAINER_ENV=from-the-repository$/m);
    assert.doesNotMatch(result.stdout, /post-create-ran/, 'postCreateCommand did not run');
    assert.match(result.stdout, /No such file or directory/, 'the mount of / at /host is not there');
    assert.doesNotMatch(result.stdout, /eth0/, 'runArgs --network=host is not used');
    const inspect = await engine!.call('inspect', (d) => d.getContainer(info.containerId).inspect());
    assert.equal(inspect.HostConfig.Privileged, false);
    assert.equal(inspect.HostConfig.Init, true);
    assert.deepEqual(inspect.HostConfig.CapDrop, ['ALL']);
    assert.ok(!inspect.HostConfig.CapAdd || inspect.HostConfig.CapAdd.length === 0);
  });
});
