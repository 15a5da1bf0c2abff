import * as assert from 'node:assert/strict';
import { CALLER_MUST_SEE, SandboxError } from '../../../src/core/errors';

suite('SandboxError.isAny and the reasons a caller must see', () => {
  test('matches a SandboxError with one of the reasons, nothing else', () => {
    assert.equal(SandboxError.isAny(new SandboxError('no-box', 'gone'), CALLER_MUST_SEE), true);
    assert.equal(SandboxError.isAny(new SandboxError('cancelled', 'stop'), CALLER_MUST_SEE), true);
    assert.equal(SandboxError.isAny(new SandboxError('engine-error', 'x'), CALLER_MUST_SEE), false);
    assert.equal(SandboxError.isAny(Object.assign(new Error('no-box'), { reason: 'no-box' }), CALLER_MUST_SEE), false, 'a look-alike is not one');
    assert.equal(SandboxError.isAny(new SandboxError('no-box', 'gone'), []), false);
  });

  test('the list is the one named set and cannot be changed by a caller', () => {
    assert.deepEqual([...CALLER_MUST_SEE].sort(), ['cancelled', 'engine-unreachable', 'no-box']);
    assert.throws(() => (CALLER_MUST_SEE as string[]).push('engine-error'));
  });
});
