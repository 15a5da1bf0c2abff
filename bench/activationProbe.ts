// Measures `require('dist/extension.js')` + `activate()` in a fresh plain-Node process with a stub `vscode`
// module (not a real extension host): what the extension itself costs at activation, without VS Code's own
// loading. Prints one JSON line: { requireMs, activateMs, totalMs }.
import * as path from 'node:path';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Module = require('node:module') as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };

/** Any property is another stub, calling or constructing one returns a stub: enough for registrations. */
function stub(name: string): unknown {
  const target = function () {
    /* stub */
  };
  return new Proxy(target, {
    get(_t, key) {
      if (key === Symbol.toPrimitive) return () => name;
      if (key === 'then') return undefined; // not a thenable
      if (key === 'prototype') return Object.prototype;
      if (key === 'dispose') return () => undefined;
      return stub(`${name}.${String(key)}`);
    },
    apply: () => stub(`${name}()`),
    construct: () => stub(`new ${name}`) as object,
  });
}

const repoRoot = process.argv[2] ?? path.resolve(__dirname, '..', '..');
const originalLoad = Module._load;
const vscodeStub = stub('vscode');
Module._load = function (request: string, parent: unknown, isMain: boolean) {
  if (request === 'vscode') return vscodeStub;
  return originalLoad.call(this, request, parent, isMain);
};

const subscriptions: { dispose(): unknown }[] = [];
const context = new Proxy(
  {
    subscriptions,
    extensionPath: repoRoot,
    extensionUri: stub('extensionUri'),
    asAbsolutePath: (p: string) => path.join(repoRoot, p),
  } as Record<string | symbol, unknown>,
  { get: (t, key) => (key in t ? t[key] : stub(`context.${String(key)}`)) },
);

const t0 = process.hrtime.bigint();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const extension = require(path.join(repoRoot, 'dist', 'extension.js')) as { activate(c: unknown): unknown };
const t1 = process.hrtime.bigint();
void Promise.resolve(extension.activate(context)).then(() => {
  const t2 = process.hrtime.bigint();
  const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
  process.stdout.write(`${JSON.stringify({ requireMs: ms(t0, t1), activateMs: ms(t1, t2), totalMs: ms(t0, t2), registered: subscriptions.length })}\n`);
  process.exit(0);
});
