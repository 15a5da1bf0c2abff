// Looks for a secret everywhere a box could hold it: the environment and command line of every process it can
// see, and every file it can read (the read-only root, /workspace, /tmp and $HOME; not /proc, /sys, /dev). A
// Node program run in the box as its user with the secret on stdin, so the secret is in no argument or variable
// of the scan itself. The end-to-end agent tests run it while the agent CLI is alive, and run it for a string
// that is there (a control: the scan can see what it looks for).

/** What the scan found: where the secret is, and how much it looked at. */
export interface KeyScanResult {
  /** `/proc/<pid>/environ`, `/proc/<pid>/cmdline` or a file path, for each place the secret is in. */
  hits: string[];
  /** Processes whose environment was read, with their command lines (for the test's message). */
  processes: string[];
  /** Regular files searched. */
  files: number;
  /** What could not be read, with the error code. */
  unreadable: string[];
}

/** The scan program, for `node -e`. Reads the secret from stdin; prints one JSON `KeyScanResult`. */
export const KEY_SCAN_PROGRAM = `
const fs = require('fs'), path = require('path');
const needle = Buffer.from(fs.readFileSync(0, 'utf8').trim());
if (needle.length < 8) { console.error('the scan needs the secret (8 characters or more) on stdin'); process.exit(2); }
const result = { hits: [], processes: [], files: 0, unreadable: [] };
for (const pid of fs.readdirSync('/proc').filter((n) => /^[0-9]+$/.test(n))) {
  if (pid === String(process.pid)) continue;
  try {
    const environ = fs.readFileSync('/proc/' + pid + '/environ');
    const cmdline = fs.readFileSync('/proc/' + pid + '/cmdline');
    result.processes.push(pid + ' ' + cmdline.toString().split('\\0').join(' ').trim());
    if (environ.includes(needle)) result.hits.push('/proc/' + pid + '/environ');
    if (cmdline.includes(needle)) result.hits.push('/proc/' + pid + '/cmdline');
  } catch (error) {
    if (error.code !== 'ENOENT') result.unreadable.push('/proc/' + pid + ': ' + error.code);
  }
}
const chunk = Buffer.alloc(1 << 20);
function fileHolds(file) {
  const fd = fs.openSync(file, 'r');
  try {
    // Chunks overlap by the needle's length, so a match across a chunk boundary is found.
    for (let position = 0; ; ) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, position);
      if (n === 0) return false;
      if (chunk.subarray(0, n).includes(needle)) return true;
      if (n < chunk.length) return false;
      position += n - needle.length + 1;
    }
  } finally {
    fs.closeSync(fd);
  }
}
function walk(dir) {
  let entries;
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch (error) { result.unreadable.push(dir + ': ' + error.code); return; }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (['/proc', '/sys', '/dev'].includes(full)) continue;
    if (entry.isDirectory()) walk(full);
    else if (entry.isFile()) {
      try { result.files++; if (fileHolds(full)) result.hits.push(full); } catch (error) { result.unreadable.push(full + ': ' + error.code); }
    }
  }
}
walk('/');
console.log(JSON.stringify(result));
`;

/** Runs a command in the box as its user (stdin optional): the engine server's exec, the Box API or docker exec. */
export type BoxCommandRunner = (command: string, stdin?: string) => Promise<{ exitCode: number | null; stdout: string; stderr: string }>;

/**
 * While the CLI waits in the scripted conversation's Bash call: scans the box for `secret` and, as the scan's
 * control, for `present` (a string the scan must find), then lets the call finish.
 */
export async function scanWhileToolRuns(
  run: BoxCommandRunner,
  secret: string,
  present: string,
): Promise<{ secret: KeyScanResult; present: KeyScanResult }> {
  for (let i = 0; (await run('test -e /tmp/tool-running')).exitCode !== 0; i++) {
    if (i > 600) throw new Error('the CLI never ran its Bash call');
    await new Promise((r) => setTimeout(r, 200));
  }
  const scan = async (needle: string): Promise<KeyScanResult> => {
    const result = await run('node /tmp/key-scan.js', needle);
    if (result.exitCode !== 0) throw new Error(`the key scan failed: ${result.stderr}`);
    return JSON.parse(result.stdout) as KeyScanResult;
  };
  try {
    const written = await run('cat > /tmp/key-scan.js', KEY_SCAN_PROGRAM);
    if (written.exitCode !== 0) throw new Error(`could not write the key scan into the box: ${written.stderr}`);
    return { secret: await scan(secret), present: await scan(present) };
  } finally {
    await run('touch /tmp/scan-done');
  }
}

/** The pids of the CLI (`claude -p …`) among the scan's processes. */
export function claudePids(scan: KeyScanResult): string[] {
  return scan.processes.filter((p) => / claude -p /.test(` ${p.split(' ').slice(1).join(' ')} `)).map((p) => p.split(' ')[0]!);
}
