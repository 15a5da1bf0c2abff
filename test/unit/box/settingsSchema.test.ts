// The setting limits have one source: package.json's configuration schema. The server's validation reads
// it (settingsSchema.ts); these tests prove every bound and enum the schema declares is the one enforced.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CPUS_RANGE, DEFAULT_BOX_SETTINGS, INTEGER_RANGES, validateBoxSettings } from '../../../src/core/box/boxConfig';
import { SandboxError } from '../../../src/core/errors';
import type { BoxSettings } from '../../../src/shared/protocol';

const manifest = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', '..', 'package.json'), 'utf8'));
const properties: Record<string, { type: string; minimum?: number; maximum?: number; enum?: string[]; default?: unknown }> =
  manifest.contributes.configuration.properties;

function rejected(partial: Partial<BoxSettings>): string | undefined {
  try {
    validateBoxSettings(partial);
    return undefined;
  } catch (error) {
    assert.ok(SandboxError.is(error, 'invalid-setting'), String(error));
    return error.options.setting;
  }
}

suite('unit: setting limits come from package.json', () => {
  const numeric = Object.keys(DEFAULT_BOX_SETTINGS).filter((key) => ['integer', 'number'].includes(properties[`agentSandbox.${key}`]?.type));

  test('every numeric box setting of the schema has bounds, and the server enforces exactly those', () => {
    assert.deepEqual([...numeric].sort(), [...Object.keys(INTEGER_RANGES), 'cpus'].sort());
    for (const key of numeric) {
      const schema = properties[`agentSandbox.${key}`];
      assert.equal(typeof schema.minimum, 'number', `${key} has a minimum`);
      assert.equal(typeof schema.maximum, 'number', `${key} has a maximum`);
      const range = key === 'cpus' ? CPUS_RANGE : INTEGER_RANGES[key as keyof typeof INTEGER_RANGES];
      assert.deepEqual({ min: range.min, max: range.max }, { min: schema.minimum, max: schema.maximum }, key);
      const step = schema.type === 'integer' ? 1 : 0.01;
      assert.equal(rejected({ [key]: schema.minimum }), undefined, `${key} = minimum is accepted`);
      assert.equal(rejected({ [key]: schema.maximum }), undefined, `${key} = maximum is accepted`);
      assert.equal(rejected({ [key]: schema.minimum! - step }), `agentSandbox.${key}`, `${key} below the minimum is refused`);
      assert.equal(rejected({ [key]: schema.maximum! + step }), `agentSandbox.${key}`, `${key} above the maximum is refused`);
    }
  });

  test('the limits the issue found disagreeing now agree (memoryMiB 64, tmpSizeMiB 8)', () => {
    assert.equal(rejected({ memoryMiB: 63 }), 'agentSandbox.memoryMiB');
    assert.equal(rejected({ memoryMiB: 64 }), undefined);
    assert.equal(rejected({ tmpSizeMiB: 7 }), 'agentSandbox.tmpSizeMiB');
    assert.equal(rejected({ tmpSizeMiB: 8 }), undefined);
  });

  test("enum values and the variable-name pattern are the schema's", () => {
    for (const value of properties['agentSandbox.workspaceVolume'].enum!) {
      assert.equal(rejected({ workspaceVolume: value as BoxSettings['workspaceVolume'] }), undefined);
    }
    assert.equal(rejected({ workspaceVolume: 'bind' as never }), 'agentSandbox.workspaceVolume');
    const pattern = new RegExp((properties['agentSandbox.envAllowlist'] as unknown as { items: { pattern: string } }).items.pattern);
    for (const name of ['GITHUB_TOKEN', '_X', 'a1', '1A', 'A-B', 'A B', '']) {
      assert.equal(rejected({ envAllowlist: [name] }) === undefined, pattern.test(name), name);
    }
  });

  test("the server's defaults are the schema's defaults", () => {
    for (const [key, value] of Object.entries(DEFAULT_BOX_SETTINGS)) {
      assert.deepEqual(properties[`agentSandbox.${key}`]?.default, value, key);
    }
  });
});
