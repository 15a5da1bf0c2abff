// Measures `require(<extension bundle>)` (default dist/extension.js) + `activate()` in a fresh plain-Node process with a stub `vscode`
// module (not a real extension host): what the extension itself costs at activation, without VS Code's own
// loading. Prints one JSON line: { requireMs, activateMs, totalMs }.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

const Module = require('node:module') as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };

/**
 * Any property is another stub (or what was assigned to it), calling or constructing one returns a stub:
 * enough for registrations, status bar items and event emitters.
 */
function stub(name: string): unknown {
  const target = function () {
    /* stub */
  };
  const assigned = new Map<string | symbol, unknown>();
  return new Proxy(target, {
    get(_t, key) {
      if (assigned.has(key)) return assigned.get(key);
      if (key === Symbol.toPrimitive) return () => name;
      if (key === Symbol.iterator) return undefined;
      if (key === 'then') return undefined; // not a thenable
      if (key === 'prototype') return Object.prototype;
      if (key === 'dispose') return () => undefined;
      const child = stub(`${name}.${String(key)}`);
      assigned.set(key, child);
      return child;
    },
    set(_t, key, value) {
      assigned.set(key, value);
      return true;
    },
    apply: () => stub(`${name}()`),
    construct: () => stub(`new ${name}`) as object,
  });
}

const repoRoot = process.argv[2] ?? path.resolve(__dirname, '..', '..');
const bundle = process.argv[3] ?? path.join(repoRoot, 'dist', 'extension.js');
const originalLoad = Module._load;
let loadedLanguageClient = false;
/**
 * esbuild's `import * as vscode` copies the module's own keys, so the stub module lists every top-level name
 * of the real API (read from @types/vscode), each a stub.
 */
function vscodeModule(): Record<string, unknown> {
  const declarations = readFileSync(path.join(repoRoot, 'node_modules', '@types', 'vscode', 'index.d.ts'), 'utf8');
  const names = new Set([...declarations.matchAll(/^\texport (?:namespace|class|enum|const|let|function) (\w+)/gm)].map((m) => m[1]));
  return Object.fromEntries([...names].map((n) => [n, stub(`vscode.${n}`)]));
}
const vscodeStub = vscodeModule();
// A window with no folder open (what `activate()` costs before any folder's review exists): the API's
// `undefined`, not a stub.
(vscodeStub.workspace as Record<string, unknown>).workspaceFolders = undefined;
Module._load = function (request: string, parent: unknown, isMain: boolean) {
  if (request === 'vscode') return vscodeStub;
  // The language client bundle must be loaded on first engine use, not by activate(): recorded, and reported.
  if (/languageClient(\.js)?$|vscode-languageclient/.test(request)) loadedLanguageClient = true;
  return originalLoad.call(this, request, parent, isMain);
};

const subscriptions: { dispose(): unknown }[] = [];
/** Storage folders the extension may write to (a temp dir the caller removes). */
const storage = process.argv[4] ?? path.join(repoRoot, 'out', 'bench', 'storage');
const uri = (fsPath: string) => ({ fsPath, path: fsPath, scheme: 'file', toString: () => `file://${fsPath}` });
const memento = () => {
  const values = new Map<string, unknown>();
  return {
    get: (key: string, fallback?: unknown) => (values.has(key) ? values.get(key) : fallback),
    update: async (key: string, value: unknown) => void values.set(key, value),
    keys: () => [...values.keys()],
    setKeysForSync: () => undefined,
  };
};
const context = new Proxy(
  {
    subscriptions,
    extensionPath: repoRoot,
    extensionUri: uri(repoRoot),
    asAbsolutePath: (p: string) => path.join(repoRoot, p),
    globalStorageUri: uri(path.join(storage, 'global')),
    storageUri: uri(path.join(storage, 'workspace')),
    logUri: uri(path.join(storage, 'log')),
    globalStoragePath: path.join(storage, 'global'),
    storagePath: path.join(storage, 'workspace'),
    logPath: path.join(storage, 'log'),
    globalState: memento(),
    workspaceState: memento(),
  } as Record<string | symbol, unknown>,
  { get: (t, key) => (key in t ? t[key] : stub(`context.${String(key)}`)) },
);

const t0 = process.hrtime.bigint();

const extension = require(bundle) as { activate(c: unknown): unknown };
const t1 = process.hrtime.bigint();
void Promise.resolve(extension.activate(context)).then(() => {
  const t2 = process.hrtime.bigint();
  const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
  process.stdout.write(
    `${JSON.stringify({ requireMs: ms(t0, t1), activateMs: ms(t1, t2), totalMs: ms(t0, t2), registered: subscriptions.length, loadedLanguageClient })}\n`,
  );
  process.exit(0);
});
