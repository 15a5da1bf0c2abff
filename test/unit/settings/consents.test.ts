import * as assert from 'node:assert/strict';
import { INSECURE_ENGINES_KEY, InsecureEngineConsent } from '../../../src/host/engineConsent';
import { ImageConsent, imageConsentKey, type ImageConsentRequest } from '../../../src/host/imageConsent';
import { IMAGE_BUILDS_KEY, ImageBuildConsent } from '../../../src/host/imageBuildConsent';
import type { ImageBuildRequest } from '../../../src/shared/protocol';

/** A Memento in memory (the extension's workspaceState / globalState). */
function memento(initial: Record<string, unknown> = {}) {
  const values = new Map(Object.entries(initial));
  return {
    values,
    get: <T>(key: string) => values.get(key) as T | undefined,
    update: async (key: string, value: unknown) => void values.set(key, value),
  };
}

const WHERE = '/repo/.vscode/settings.json';

suite("unit: a workspace image needs the user's confirmation", () => {
  function consent(answers: (boolean | undefined)[], options: { trusted?: boolean; state?: ReturnType<typeof memento> } = {}) {
    const asked: ImageConsentRequest[] = [];
    const log: string[] = [];
    const state = options.state ?? memento();
    const imageConsent = new ImageConsent({
      state,
      prompt: async (request) => {
        asked.push(request);
        return answers.shift();
      },
      log: (line) => log.push(line),
      isTrusted: () => options.trusted ?? true,
    });
    return { imageConsent, asked, log, state };
  }

  test('no question when the workspace sets no image, or the same image as the user', async () => {
    const { imageConsent, asked } = consent([]);
    assert.equal(await imageConsent.resolve({ defaultValue: 'node:22', globalValue: 'mine:1' }, WHERE), 'mine:1');
    assert.equal(await imageConsent.resolve({ defaultValue: 'node:22', globalValue: 'mine:1', workspaceValue: 'mine:1' }, WHERE), 'mine:1');
    assert.equal(await imageConsent.resolve({ defaultValue: 'node:22' }, WHERE), 'node:22');
    assert.equal(asked.length, 0);
  });

  test('allowed once: the workspace image is used, and not asked again for that workspace and image', async () => {
    const { imageConsent, asked, state } = consent([true]);
    const inspected = { defaultValue: 'node:22', workspaceValue: 'evil/image:1' };
    const [a, b] = await Promise.all([imageConsent.resolve(inspected, WHERE), imageConsent.resolve(inspected, WHERE)]);
    assert.deepEqual([a, b], ['evil/image:1', 'evil/image:1']);
    assert.equal(await imageConsent.resolve(inspected, WHERE), 'evil/image:1');
    assert.deepEqual(asked, [{ image: 'evil/image:1', where: WHERE, fallback: 'node:22' }]);
    assert.equal(state.values.get(imageConsentKey(WHERE, 'evil/image:1')), 'allowed');
  });

  test("refused: the user's (or default) image is used, the log says so, the refusal is remembered; another image asks again", async () => {
    const { imageConsent, asked, log } = consent([false, true]);
    const inspected = { defaultValue: 'node:22', globalValue: 'mine:1', workspaceValue: 'evil/image:1' };
    assert.equal(await imageConsent.resolve(inspected, WHERE), 'mine:1');
    assert.equal(await imageConsent.resolve(inspected, WHERE), 'mine:1');
    assert.equal(asked.length, 1);
    assert.ok(
      log.some((line) => line.includes('evil/image:1') && line.includes('refused') && line.includes('mine:1')),
      log.join('\n'),
    );
    assert.equal(await imageConsent.resolve({ ...inspected, workspaceValue: 'other/image:2' }, WHERE), 'other/image:2');
    assert.equal(asked.length, 2);
  });

  test('dismissed: the fallback is used and the question comes back next time', async () => {
    const { imageConsent, asked } = consent([undefined, true]);
    const inspected = { defaultValue: 'node:22', workspaceFolderValue: 'evil/image:1' };
    assert.equal(await imageConsent.resolve(inspected, WHERE), 'node:22');
    assert.equal(await imageConsent.resolve(inspected, WHERE), 'evil/image:1');
    assert.equal(asked.length, 2);
  });

  test('Restricted Mode: a workspace image is ignored without asking', async () => {
    const { imageConsent, asked, log } = consent([true], { trusted: false });
    assert.equal(await imageConsent.resolve({ defaultValue: 'node:22', workspaceValue: 'evil/image:1' }, WHERE), 'node:22');
    assert.equal(asked.length, 0);
    assert.ok(log.some((line) => line.includes('Restricted Mode')));
  });
});

suite("unit: an unencrypted remote engine needs the user's allowance", () => {
  test('asked once per address (concurrent requests share the question); an allowance is remembered', async () => {
    const state = memento();
    const asked: string[] = [];
    const consent = new InsecureEngineConsent({ state, prompt: async (address) => (asked.push(address), true), log: () => undefined });
    assert.deepEqual(consent.allowed(), []);
    assert.deepEqual(await Promise.all([consent.ask('10.0.0.5:2375'), consent.ask('10.0.0.5:2375')]), [true, true]);
    assert.equal(await consent.ask('10.0.0.5:2375'), true);
    assert.deepEqual(asked, ['10.0.0.5:2375']);
    assert.deepEqual(state.values.get(INSECURE_ENGINES_KEY), ['10.0.0.5:2375']);
    assert.deepEqual(consent.allowed(), ['10.0.0.5:2375']);
  });

  test('refused or dismissed: not allowed, nothing remembered, asked again next time', async () => {
    const state = memento();
    const answers = [false, undefined];
    const consent = new InsecureEngineConsent({ state, prompt: async () => answers.shift(), log: () => undefined });
    assert.equal(await consent.ask('10.0.0.5:2375'), false);
    assert.equal(await consent.ask('10.0.0.5:2375'), false);
    assert.deepEqual(consent.allowed(), []);
    assert.equal(answers.length, 0);
  });
});

const REQUEST: ImageBuildRequest = {
  folder: '/repo',
  file: '.devcontainer/devcontainer.json',
  inputHash: 'a'.repeat(64),
  builds: 'the image node:22',
  ignored: ['runArgs'],
};

suite("unit: building a folder's image needs the user's confirmation, per input hash", () => {
  function consent(answers: (boolean | undefined)[], options: { trusted?: boolean; state?: ReturnType<typeof memento> } = {}) {
    const asked: ImageBuildRequest[] = [];
    const state = options.state ?? memento();
    const builds = new ImageBuildConsent({
      state,
      prompt: async (request) => {
        asked.push(request);
        return answers.shift();
      },
      log: () => undefined,
      isTrusted: () => options.trusted ?? true,
    });
    return { builds, asked, state };
  }

  test('allowed once: remembered for that hash only; a changed file (another hash) asks again', async () => {
    const { builds, asked, state } = consent([true, false]);
    assert.deepEqual(builds.decisions(), { allowed: [], refused: [], ask: true });
    assert.equal(await builds.ask(REQUEST), true);
    assert.deepEqual(builds.decisions(), { allowed: [REQUEST.inputHash], refused: [], ask: true });
    assert.deepEqual(state.values.get(IMAGE_BUILDS_KEY), { allowed: [REQUEST.inputHash], refused: [] });
    const changed = { ...REQUEST, inputHash: 'b'.repeat(64) };
    assert.equal(await builds.ask(changed), false);
    assert.deepEqual(builds.decisions(), { allowed: [REQUEST.inputHash], refused: [changed.inputHash], ask: true });
    assert.deepEqual(asked, [REQUEST, changed]);
  });

  test('dismissed: not built, not remembered, not asked again in this window', async () => {
    const state = memento();
    const { builds } = consent([undefined], { state });
    assert.equal(await builds.ask(REQUEST), false);
    assert.deepEqual(builds.decisions().refused, [REQUEST.inputHash]);
    assert.equal(state.values.get(IMAGE_BUILDS_KEY), undefined);
    // A new window (a new consent over the same state) asks again.
    assert.deepEqual(consent([], { state }).builds.decisions(), { allowed: [], refused: [], ask: true });
  });

  test('concurrent requests share one question', async () => {
    const { builds, asked } = consent([true]);
    assert.deepEqual(await Promise.all([builds.ask(REQUEST), builds.ask(REQUEST)]), [true, true]);
    assert.equal(asked.length, 1);
  });

  test('Restricted Mode: never asks, and the server is told not to build even what was allowed before', async () => {
    const state = memento({ [IMAGE_BUILDS_KEY]: { allowed: [REQUEST.inputHash], refused: [] } });
    const { builds, asked } = consent([true], { trusted: false, state });
    assert.equal(await builds.ask(REQUEST), false);
    assert.equal(asked.length, 0);
    assert.equal(builds.decisions().ask, false);
  });
});
