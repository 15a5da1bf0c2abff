// Lint: the layer table of docs/architecture.md as import rules, plus the checks that catch real bugs.
// `npm run lint` is part of the unit tier (scripts/run-tests.mjs).
import tseslint from 'typescript-eslint';

/** `no-restricted-imports` patterns: a layer may not import these folders (relative paths, any depth). */
const layer = (message, ...folders) => ({
  group: folders.flatMap((folder) => [`**/${folder}`, `**/${folder}/**`]),
  message,
});

const noVscode = { name: 'vscode', message: 'The vscode API belongs in src/host and src/extension.ts only (docs/architecture.md, "Layers").' };

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', 'node_modules/**', 'media/**', 'test-results/**', 'bench/results/**', '**/*.js', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      '@typescript-eslint/no-require-imports': ['error', { allowAsImport: true }],
      'no-debugger': 'error',
      'no-var': 'error',
      'prefer-const': ['error', { destructuring: 'all' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-restricted-imports': ['error', { paths: [noVscode] }],
    },
  },
  {
    // Tests and the bench load built bundles and test-time modules with require() on purpose.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['src/host/**/*.ts', 'src/extension.ts', 'test/host/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [noVscode],
          patterns: [layer('src/core is the engine core: it imports no host, server, gateway, webview, MCP or CLI code.', 'host', 'server', 'gateway', 'webview', 'mcp', 'cli')],
        },
      ],
    },
  },
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [noVscode], patterns: [layer('src/shared holds protocol types and schemas used by every side: it imports none of them.', 'core', 'host', 'server', 'gateway', 'webview', 'mcp', 'cli')] },
      ],
    },
  },
  {
    files: ['src/server/**/*.ts', 'src/gateway/**/*.ts', 'src/mcp/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [noVscode], patterns: [layer('Processes outside VS Code (server, gateway, MCP, CLI) import no host or webview code.', 'host', 'webview')] },
      ],
    },
  },
  {
    files: ['src/gateway/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [noVscode],
          patterns: [
            layer('The gateway runs in its own container: it imports only core/egress and core/errors.', 'host', 'webview', 'server', 'session', 'box', 'docker', 'workspace', 'apply', 'changes', 'history', 'review'),
          ],
        },
      ],
    },
  },
  {
    files: ['src/webview/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [noVscode],
          patterns: [
            layer('The webview runs in the browser: it imports only its own files, src/shared and core types.', 'host', 'server', 'gateway', 'docker', 'session', 'box', 'workspace', 'apply'),
          ],
        },
      ],
    },
  },
);
