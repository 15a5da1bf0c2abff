import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EXTENSION_ID, folderStorage } from '../../../src/cli/folderStorage';
import { commandLine, parseArgs } from '../../../src/cli/main';

suite("Command line: where a folder's review and history live, and its arguments", () => {
  let home: string;
  setup(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'as-home-'));
  });
  teardown(() => rmSync(home, { recursive: true, force: true }));

  /** A VS Code workspace storage entry for `folder`, as VS Code writes it. */
  function workspaceStorage(userData: string, id: string, folder: string, mtimeSeconds: number): string {
    const dir = path.join(userData, 'User', 'workspaceStorage', id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'workspace.json'), JSON.stringify({ folder: pathToFileURL(folder).href }));
    utimesSync(dir, mtimeSeconds, mtimeSeconds);
    return dir;
  }

  test("the extension's own workspace storage of the folder, found by VS Code's workspace.json (the newest when several)", async () => {
    const folder = '/work/my project';
    const userData = path.join(home, 'portable-data');
    workspaceStorage(userData, 'old', folder, 1_000);
    const newest = workspaceStorage(userData, 'new', folder, 2_000);
    workspaceStorage(userData, 'other', '/work/other', 3_000);
    mkdirSync(path.join(userData, 'User', 'workspaceStorage', 'multi-root'));
    writeFileSync(path.join(userData, 'User', 'workspaceStorage', 'multi-root', 'workspace.json'), '{"workspace":"file:///x.code-workspace"}');
    assert.deepEqual(await folderStorage(folder, { AGENT_SANDBOX_VSCODE_USER_DATA: userData }, home), {
      dir: path.join(newest, EXTENSION_ID),
      kind: 'vscode',
    });
    // Without the user data directory it is not found: the command line's own directory instead.
    assert.equal((await folderStorage(folder, {}, home)).kind, 'own');
  });

  test("$AGENT_SANDBOX_STORAGE wins; a folder VS Code never opened gets a directory of the command line's own", async () => {
    assert.deepEqual(await folderStorage('/w', { AGENT_SANDBOX_STORAGE: '/s' }, home), { dir: '/s', kind: 'override' });
    const own = await folderStorage('/never/opened', { XDG_STATE_HOME: path.join(home, 'state') }, home);
    assert.equal(own.kind, 'own');
    assert.match(own.dir, new RegExp(`^${path.join(home, 'state', 'agent-sandbox', 'folders')}/[0-9a-f]{32}$`));
  });

  test('arguments: the folder resolves against the current directory; everything after -- is the command', () => {
    const parsed = parseArgs(['run', '--folder', 'sub', '--timeout=5', '--', 'echo', '--folder', 'x'], '/base', {});
    assert.equal(parsed.folder, '/base/sub');
    assert.equal(parsed.values.get('--timeout'), '5');
    assert.deepEqual(parsed.rest, ['echo', '--folder', 'x']);
    assert.equal(parseArgs(['diff'], '/base', { AGENT_SANDBOX_IMAGE: 'busybox' }).image, 'busybox');
    assert.throws(() => parseArgs(['diff', '--json'], '/base', {}), /Unknown option "--json" for "diff"/);
    assert.throws(() => parseArgs(['nope'], '/base', {}), /Unknown command "nope"/);
    assert.equal(commandLine(['npm test && echo ok']), 'npm test && echo ok');
    assert.equal(commandLine(['sh', '-c', "echo 'hi' > a.txt"]), `sh -c 'echo '\\''hi'\\'' > a.txt'`);
  });
});
