import * as assert from 'node:assert/strict';
import {
  MAX_TOOL_INPUT_BYTES,
  checkToolInput,
  findToolDefinition,
  languageModelToolContribution,
  sandboxToolDefinitions,
} from '../../../src/core/tools/toolDefinitions';

function definition(name: string) {
  const found = findToolDefinition(name);
  assert.ok(found, `${name} is defined`);
  return found;
}

suite('Tool definitions: one definition serves the VS Code tools and the MCP server', () => {
  test('package.json languageModelTools is exactly the shared definitions, in order', () => {
    const manifest = require('../../../../package.json') as { contributes: { languageModelTools: unknown[] } };
    assert.deepEqual(manifest.contributes.languageModelTools, sandboxToolDefinitions.map(languageModelToolContribution));
  });

  test('eight tools, each with an object schema whose required fields are properties', () => {
    assert.equal(sandboxToolDefinitions.length, 8);
    for (const d of sandboxToolDefinitions) {
      assert.equal(d.inputSchema.type, 'object');
      for (const key of (d.inputSchema as { required?: string[] }).required ?? []) assert.ok(key in d.inputSchema.properties, `${d.name}.${key}`);
    }
  });

  test('runCommand takes an optional network "none"', () => {
    const run = definition('agentSandbox_runCommand');
    assert.equal(checkToolInput(run, { command: 'true', network: 'none' }), undefined);
    assert.match(checkToolInput(run, { command: 'true', network: 'bridge' }) ?? '', /"network" must be "none", got "bridge"/);
  });

  test('inputs that do not fit the schema get a message naming the field', () => {
    const read = definition('agentSandbox_readFile');
    assert.equal(checkToolInput(read, { path: 'a.txt', startLine: 2 }), undefined);
    assert.match(checkToolInput(read, {}) ?? '', /^"path" is required: File to read/);
    assert.match(checkToolInput(read, { path: 3 }) ?? '', /"path" must be a string, got 3/);
    assert.match(checkToolInput(read, { path: 'a', startLine: 1.5 }) ?? '', /"startLine" must be a whole number/);
    assert.match(checkToolInput(read, { path: 'a', startLine: 0 }) ?? '', /"startLine" must be 1 or more, got 0/);
    assert.match(checkToolInput(read, { path: 'a', lines: 3 }) ?? '', /has no argument "lines"; it takes "path", "startLine", "endLine"/);
    assert.match(checkToolInput(read, null) ?? '', /takes an object of named arguments, got null/);
    assert.match(checkToolInput(read, ['a']) ?? '', /got an array/);
    assert.match(
      checkToolInput(definition('agentSandbox_editFile'), { path: 'a', oldString: 'x', newString: 'y', replaceAll: 'yes' }) ?? '',
      /"replaceAll" must be true or false/,
    );
    assert.match(checkToolInput(definition('agentSandbox_pendingChanges'), { x: 1 }) ?? '', /takes no arguments/);
  });

  test('an input over the size limit is refused before anything runs, with the way around it', () => {
    const write = definition('agentSandbox_writeFile');
    assert.equal(checkToolInput(write, { path: 'a', content: 'x'.repeat(MAX_TOOL_INPUT_BYTES - 100) }), undefined);
    assert.match(
      checkToolInput(write, { path: 'a', content: 'x'.repeat(MAX_TOOL_INPUT_BYTES) }) ?? '',
      /take 8\.0 MiB; the limit is 8 MiB\. Write large content in parts/,
    );
  });
});
