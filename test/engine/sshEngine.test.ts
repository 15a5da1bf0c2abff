// ssh:// engines go through the system ssh, which checks known_hosts: a host whose key changed (an impostor)
// is refused by ssh itself and nothing reaches its engine. Against a real sshd on 127.0.0.1 with generated host
// and user keys; its ForceCommand logs each dial and runs `docker system dial-stdio` against this tier's engine.
// scripts/setup-ssh-test.sh installs openssh-server when missing (scripts/run-tests.mjs runs it for this tier).
import * as assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Box } from '../../src/core/box/box';
import { DockerEngine } from '../../src/core/docker/dockerEngine';
import { SandboxError } from '../../src/core/errors';
import { removeEverythingOwnedBy, shOk, testOwnerId, testSettings } from './engineHarness';

const SSHD = '/usr/sbin/sshd';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A private sshd on 127.0.0.1 with its own host key, a user key, a client config and known_hosts. */
class TestSshServer {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asb-sshd-'));
  readonly dialLog = path.join(this.dir, 'dialed.log');
  readonly clientConfig = path.join(this.dir, 'ssh_config');
  port = 0;
  private sshd: ChildProcess | undefined;
  private readonly sshdLog: string[] = [];

  constructor(private readonly engineSocket: string) {}

  private keygen(name: string): string {
    const file = path.join(this.dir, name);
    fs.rmSync(file, { force: true });
    fs.rmSync(`${file}.pub`, { force: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
    return fs.readFileSync(`${file}.pub`, 'utf8').trim();
  }

  async setUp(): Promise<void> {
    assert.ok(fs.existsSync(SSHD), `${SSHD} is missing: run \`bash scripts/setup-ssh-test.sh\` (npm run test:engine does)`);
    this.port = await freePort();
    const user = os.userInfo().username;
    const hostKey = this.keygen('host_key');
    const userKey = this.keygen('user_key');
    fs.writeFileSync(path.join(this.dir, 'authorized_keys'), `${userKey}\n`, { mode: 0o600 });
    const dial = path.join(this.dir, 'dial.sh');
    fs.writeFileSync(
      dial,
      `#!/bin/sh\necho "$SSH_ORIGINAL_COMMAND" >> '${this.dialLog}'\nexec docker -H 'unix://${this.engineSocket}' system dial-stdio\n`,
      { mode: 0o755 },
    );
    fs.writeFileSync(
      path.join(this.dir, 'sshd_config'),
      [
        `Port ${this.port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${path.join(this.dir, 'host_key')}`,
        `PidFile ${path.join(this.dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${path.join(this.dir, 'authorized_keys')}`,
        `AllowUsers ${user}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'MaxStartups 50',
        'MaxSessions 50',
        `ForceCommand ${dial}`,
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    // The client trusts exactly this host key; ~/.ssh is never read or written.
    fs.writeFileSync(path.join(this.dir, 'known_hosts'), `[127.0.0.1]:${this.port} ${hostKey}\n`);
    fs.writeFileSync(
      this.clientConfig,
      [
        'Host sandbox-engine',
        '  HostName 127.0.0.1',
        `  Port ${this.port}`,
        `  User ${user}`,
        `  IdentityFile ${path.join(this.dir, 'user_key')}`,
        '  IdentitiesOnly yes',
        '  IdentityAgent none',
        `  UserKnownHostsFile ${path.join(this.dir, 'known_hosts')}`,
        '  GlobalKnownHostsFile /dev/null',
        '',
      ].join('\n'),
    );
    await this.start();
  }

  /** Starts sshd in the foreground (-D) and waits until it accepts connections. */
  async start(): Promise<void> {
    fs.mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation folder
    this.sshdLog.length = 0;
    this.sshd = spawn(SSHD, ['-D', '-e', '-f', path.join(this.dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.sshd.stderr?.on('data', (chunk: Buffer) => this.sshdLog.push(chunk.toString('utf8')));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (this.sshd.exitCode !== null) throw new Error(`sshd exited: ${this.sshdLog.join('')}`);
      const up = await new Promise<boolean>((resolve) => {
        const socket = net.connect(this.port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
        socket.on('error', () => resolve(false));
      });
      if (up) return;
      if (Date.now() > deadline) throw new Error(`sshd did not listen on ${this.port}: ${this.sshdLog.join('')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async stop(): Promise<void> {
    const sshd = this.sshd;
    if (!sshd || sshd.exitCode !== null) return;
    const exited = new Promise((resolve) => sshd.once('exit', resolve));
    sshd.kill();
    await exited;
  }

  /** The impostor: the same address now answers with another host key. */
  async replaceHostKey(): Promise<void> {
    await this.stop();
    this.keygen('host_key');
    await this.start();
  }

  dials(): string[] {
    return fs.existsSync(this.dialLog) ? fs.readFileSync(this.dialLog, 'utf8').split('\n').filter(Boolean) : [];
  }

  log(): string {
    return this.sshdLog.join('');
  }

  async tearDown(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

suite('engine: ssh:// engines through the system ssh (real sshd on 127.0.0.1)', function () {
  this.timeout(120_000);
  const engineHost = process.env.DOCKER_HOST ?? '';
  const ownerId = testOwnerId('ssh');
  let server: TestSshServer;
  let engine: DockerEngine | undefined;

  suiteSetup(async () => {
    assert.match(engineHost, /^unix:\/\//, 'the engine tier runs on a unix-socket DOCKER_HOST (scripts/run-tests.mjs sets it)');
    server = new TestSshServer(engineHost.slice('unix://'.length));
    await server.setUp();
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
    engine?.dispose();
    await server?.tearDown();
  });

  function sshEngine(): DockerEngine {
    return new DockerEngine(
      { host: 'ssh://sandbox-engine', source: 'setting' },
      { defaultTimeoutMs: 60_000, ssh: { extraArgs: ['-F', server.clientConfig] } },
    );
  }

  test('a box is created and runs over ssh, with connections kept alive and shared', async () => {
    engine = sshEngine();
    const started = Date.now();
    const version = await engine.version();
    assert.match(version.Version, /^\d+\./);
    const box = await Box.create(engine, testSettings(), { folder: '/ssh-test', ownerId, env: [] });
    try {
      assert.equal((await shOk(box, 'echo over-ssh')).trim(), 'over-ssh');
      console.log(`      first box + one run over ssh:// took ${Date.now() - started} ms; ${server.dials().length} ssh sessions`);
    } finally {
      await box.remove();
    }
    assert.ok(server.dials().length > 0);
    assert.ok(
      server.dials().every((line) => line === 'docker system dial-stdio'),
      server.dials().join('\n'),
    );
  });

  test('keep-alive: many API calls ride on few ssh sessions, and a run quieter than the idle timeout is not cut', async () => {
    const quiet = new DockerEngine(
      { host: 'ssh://sandbox-engine', source: 'setting' },
      { defaultTimeoutMs: 60_000, ssh: { extraArgs: ['-F', server.clientConfig], idleTimeoutMs: 500 } },
    );
    try {
      const before = server.dials().length;
      for (let i = 0; i < 10; i++) await quiet.version();
      assert.equal(server.dials().length - before, 1, 'ten sequential calls, one connection');
      const box = await Box.create(quiet, testSettings(), { folder: '/ssh-test-quiet', ownerId, env: [] });
      try {
        assert.equal((await shOk(box, 'sleep 2; echo still-here')).trim(), 'still-here');
      } finally {
        await box.remove();
      }
    } finally {
      quiet.dispose();
    }
  });

  test('after the server\'s host key changed, ssh refuses it ("host key changed") and nothing reaches the engine', async () => {
    await server.replaceHostKey();
    const before = server.dials().length;
    const impostor = new DockerEngine(
      { host: 'ssh://sandbox-engine', source: 'setting' },
      // No shared connection: the first test's master would still be authenticated to the old server process.
      { defaultTimeoutMs: 60_000, ssh: { extraArgs: ['-F', server.clientConfig], multiplex: false } },
    );
    await assert.rejects(
      impostor.version().finally(() => impostor.dispose()),
      (error: unknown) => {
        assert.ok(SandboxError.is(error, 'ssh-host-key'), `expected ssh-host-key, got ${error}`);
        assert.match(error.message, /host key changed/);
        assert.match(error.message, /nothing was sent/);
        return true;
      },
    );
    assert.equal(server.dials().length, before, 'no docker command ran on the impostor');
    assert.doesNotMatch(server.log(), /Accepted publickey/, 'the impostor never saw a login');
  });

  test('a missing ssh names the cause', async () => {
    const noSsh = new DockerEngine(
      { host: 'ssh://sandbox-engine', source: 'setting' },
      { defaultTimeoutMs: 20_000, ssh: { command: path.join(server.dir, 'no-such-ssh') } },
    );
    await assert.rejects(
      noSsh.version().finally(() => noSsh.dispose()),
      (error: unknown) => SandboxError.is(error, 'ssh-failed') && /was not found/.test(error.message),
    );
  });
});
