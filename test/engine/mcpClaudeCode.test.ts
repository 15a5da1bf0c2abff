// End to end: the real Claude Code CLI acts on a folder only through `agent-sandbox mcp` (dist/cli.js), which
// starts an engine server of its own (no VS Code runs). Its model is the Messages-API stand-in
// (test/standIns/messagesApiServer.ts) playing a scripted conversation of MCP tool calls; the CLI's own tools are
// off (`--tools ""`), only the box's MCP tools are allowed, and only the MCP server of `--mcp-config` is loaded
// (`--strict-mcp-config`).
//
// How the CLI runs (a loopback-only network namespace, the stand-in beside it): claudeCodeOnHost.ts.
import * as assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ScriptedTurn } from '../standIns/messagesApiServer';
import { CLAUDE_OWN_TOOLS, cachedClaudeBinary, MCP_SERVER_NAME, mcpToolName as tool, runClaudeOnHost } from './claudeCodeOnHost';
import { removeCachesUnder } from './cacheHarness';

const cliJs = path.resolve(__dirname, '..', '..', '..', 'dist', 'cli.js');
const IMAGE = 'agent-sandbox-test/busybox';

const NOTE_FILE = 'notes/from-claude.md';
const NOTE_TEXT = '# Notes\n\nWritten by Claude Code through the box.\n';
const GREETING_BEFORE = 'Hello from the workspace.\n';
const GREETING_AFTER = 'Hello from Claude Code over MCP.\n';
const FINAL_TEXT = 'Done: a note written and the greeting changed, all in the box.';

const SCRIPT: ScriptedTurn[] = [
  { tool: { name: tool('agentSandbox_writeFile'), input: { path: NOTE_FILE, content: NOTE_TEXT } } },
  {
    tool: {
      name: tool('agentSandbox_runCommand'),
      input: { command: "sed -i 's/the workspace/Claude Code over MCP/' greeting.txt && cat greeting.txt && id -u" },
    },
  },
  { text: FINAL_TEXT },
];

suite(
  'engine: the real Claude Code CLI acts only through `agent-sandbox mcp` (its own engine server), against the Messages-API stand-in',
  function () {
    this.timeout(240_000);
    let root: string;
    let folder: string;
    let env: NodeJS.ProcessEnv;
    let claude: string;

    const cli = (...args: string[]): SpawnSyncReturns<string> =>
      spawnSync(process.execPath, [cliJs, ...args, '--folder', folder], { env, encoding: 'utf8', timeout: 90_000 });

    suiteSetup(() => {
      if (!existsSync(cliJs)) throw new Error(`${cliJs} is missing: run "npm run build" first`);
      claude = cachedClaudeBinary();
      root = mkdtempSync(path.join(os.tmpdir(), 'as-mcp-claude-'));
      folder = path.join(root, 'project');
      mkdirSync(folder);
      mkdirSync(path.join(root, 'home'));
      writeFileSync(path.join(folder, 'greeting.txt'), GREETING_BEFORE);
      env = {
        PATH: process.env.PATH,
        DOCKER_HOST: process.env.DOCKER_HOST,
        AGENT_SANDBOX_IMAGE: IMAGE,
        AGENT_SANDBOX_STORAGE: path.join(root, 'storage'),
        AGENT_SANDBOX_MCP_DIR: path.join(root, 'sockets'),
      };
    });

    suiteTeardown(() => {
      if (!root) return;
      for (const id of spawnSync('docker', ['ps', '-aq', '--filter', `label=dev.agent-sandbox.folder=${folder}`], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter(Boolean)) {
        spawnSync('docker', ['rm', '-f', id]);
      }
      removeCachesUnder(root); // the command line's own server runs with package caches on
      rmSync(root, { recursive: true, force: true });
    });

    /** Claude Code in the folder with the box's MCP server (`agent-sandbox mcp` for the folder) and `extraArgs`. */
    function runClaude(script: ScriptedTurn[], extraArgs: string[]): ReturnType<typeof runClaudeOnHost> {
      const mcpConfig = path.join(root, 'mcp.json');
      writeFileSync(
        mcpConfig,
        JSON.stringify({ mcpServers: { [MCP_SERVER_NAME]: { command: process.execPath, args: [cliJs, 'mcp', '--folder', folder], env } } }),
      );
      return runClaudeOnHost({ binary: claude, workDir: root, cwd: folder, mcpConfig, script, extraArgs, env });
    }

    test('control: without `--tools ""` the CLI also offers its own tools (Bash, Edit…), which would act on the real folder', async () => {
      const run = await runClaude([{ text: 'nothing to do' }], []);
      const requests = run.requests;
      assert.equal(run.status, 0, `claude failed: ${run.stdout}\n${run.stderr}`);
      const offered = requests.find((r) => r.turn === 0)?.toolNames ?? [];
      assert.ok(offered.includes('Bash') && offered.includes('Edit'), JSON.stringify(offered));
    });

    test("its tool calls become pending changes of the folder's review and runs in its history (source mcp, the client's name); the folder changes only when applied", async () => {
      const run = await runClaude(SCRIPT, ['--tools', '']);
      const requests = run.requests;
      assert.equal(run.status, 0, `claude failed: ${run.stdout}\n${run.stderr}\n${JSON.stringify(requests)}`);
      assert.equal(run.stdout.trim(), FINAL_TEXT);

      // The stand-in played the whole conversation; the CLI offered the box's eight tools and none of its own.
      const conversation = requests.filter((r) => r.path === '/v1/messages' && r.turn !== undefined);
      assert.deepEqual(
        conversation.map((r) => r.turn),
        [0, 1, 2],
        JSON.stringify(requests.map((r) => [r.method, r.path, r.turn])),
      );
      for (const request of conversation) {
        assert.deepEqual(
          request.toolNames!.filter((name) => name.startsWith('mcp__')).sort(),
          ['applyPatch', 'deleteFile', 'editFile', 'listDirectory', 'pendingChanges', 'readFile', 'runCommand', 'writeFile'].map((t) =>
            tool(`agentSandbox_${t}`),
          ),
          "the box's eight tools are offered",
        );
        // (Claude Code 2.1 also sends a DeferredToolPlaceholder entry, which acts on nothing.)
        const own = request.toolNames!.filter((name) => CLAUDE_OWN_TOOLS.includes(name));
        assert.deepEqual(own, [], `none of the CLI's own tools is offered: ${JSON.stringify(request.toolNames)}`);
      }
      const results = conversation[2]!.toolResults!;
      assert.equal(results.length, 2, JSON.stringify(results));
      assert.match(results[0]!, /Wrote notes\/from-claude\.md \(\d+ bytes\)/);
      assert.match(
        results[1]!,
        /stdout:\nHello from Claude Code over MCP\.\n1000\b/,
        'the command ran in the box, as its user, on the mirrored folder',
      );

      // The folder is untouched: both changes are pending in its review.
      assert.equal(readFileSync(path.join(folder, 'greeting.txt'), 'utf8'), GREETING_BEFORE);
      assert.ok(!existsSync(path.join(folder, NOTE_FILE)));
      const diff = cli('diff');
      assert.equal(diff.status, 0, diff.stderr);
      assert.match(
        diff.stdout,
        /--- a\/greeting\.txt\n\+\+\+ b\/greeting\.txt\n@@ .* @@\n-Hello from the workspace\.\n\+Hello from Claude Code over MCP\.\n/,
      );
      assert.match(diff.stdout, /--- \/dev\/null\n\+\+\+ b\/notes\/from-claude\.md\n/);

      // Both calls are runs in the folder's history, from MCP, under the name the CLI gave in `initialize`.
      const history = cli('history', '--json');
      assert.equal(history.status, 0, history.stderr);
      const records = JSON.parse(history.stdout) as { source: string; agent?: string; command: string; files: { path: string }[] }[];
      const write = records.find((r) => r.command === `write ${NOTE_FILE}`);
      const sed = records.find((r) => r.command.startsWith("sed -i 's/the workspace/"));
      assert.ok(write && sed, history.stdout);
      for (const record of [write, sed]) {
        assert.equal(record.source, 'mcp');
        assert.equal(record.agent, 'claude-code');
      }
      assert.deepEqual(
        write.files.map((f) => f.path),
        [NOTE_FILE],
      );
      assert.deepEqual(
        sed.files.map((f) => f.path),
        ['greeting.txt'],
      );

      // Applied by the developer, the changes reach the folder.
      const apply = cli('apply');
      assert.equal(apply.status, 0, apply.stderr);
      assert.equal(readFileSync(path.join(folder, 'greeting.txt'), 'utf8'), GREETING_AFTER);
      assert.equal(readFileSync(path.join(folder, NOTE_FILE), 'utf8'), NOTE_TEXT);
    });
  },
);
