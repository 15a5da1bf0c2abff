import * as assert from 'node:assert/strict';
import { PidLine } from '../../../src/core/box/pidLine';

suite('PidLine: the wrapper pid line of runs and terminals', () => {
  test('a pid line split across chunks gives the pid, and only what follows it is output', async () => {
    const line = new PidLine();
    assert.equal(line.take(Buffer.from('12')).length, 0);
    assert.equal(line.take(Buffer.from('34\nhello')).toString(), 'hello');
    assert.equal(line.take(Buffer.from(' world')).toString(), ' world');
    assert.equal(await line.pid, 1234);
    assert.equal(line.pending, false);
  });

  test("a TTY's CR LF ends the line too", async () => {
    const line = new PidLine();
    assert.equal(line.take(Buffer.from('77\r\n$ ')).toString(), '$ ');
    assert.equal(await line.pid, 77);
  });

  test('a first line that is not a pid (the wrapper never ran) is output, whole, and there is no pid', async () => {
    const line = new PidLine();
    const message = 'exec: "/bin/sh": stat /bin/sh: no such file or directory\n';
    assert.equal(line.take(Buffer.from(message)).toString(), message);
    assert.equal(await line.pid, undefined);
  });

  test('a long first line without a newline is not held back for ever', async () => {
    const line = new PidLine();
    const text = 'x'.repeat(100);
    assert.equal(line.take(Buffer.from(text)).toString(), text);
    assert.equal(await line.pid, undefined);
  });

  test('a stream that ends inside the line gives back what was held, and no pid', async () => {
    const line = new PidLine();
    assert.equal(line.take(Buffer.from('oops')).length, 0);
    assert.equal(line.end().toString(), 'oops');
    assert.equal(await line.pid, undefined);
  });
});
