import * as assert from 'node:assert/strict';
import * as https from 'node:https';
import * as path from 'node:path';
import { contextDigest, dockerodeOptions, resolveEngineLocation } from '../../../src/core/docker/engineLocation';
import type { EngineLocationInput } from '../../../src/core/docker/engineLocation';
import { SshAgent, sshArgs, sshFailure, sshTargetOf } from '../../../src/core/docker/sshDialer';
import { SandboxError } from '../../../src/core/errors';

// Compiled to out/test/unit/docker/; fixtures stay in the source tree.
const FIXTURES = path.resolve(__dirname, '../../../../test/fixtures/docker-config');
const HOME_WITH_CONTEXTS = path.join(FIXTURES, 'home-with-contexts');
const CONFIG_WITH_CONTEXTS = path.join(HOME_WITH_CONTEXTS, '.docker');
const EMPTY_HOME = path.join(FIXTURES, 'no-such-home');

function resolve(partial: Partial<EngineLocationInput> & { env?: Record<string, string | undefined> }) {
  return resolveEngineLocation({ homeDir: EMPTY_HOME, platform: 'linux', ...partial, env: partial.env ?? {} });
}

suite('unit: resolveEngineLocation', () => {
  test('the platform default when nothing is configured', () => {
    assert.deepEqual(resolve({}), { host: 'unix:///var/run/docker.sock', source: 'default' });
    assert.deepEqual(resolve({ platform: 'darwin' }), { host: 'unix:///var/run/docker.sock', source: 'default' });
    assert.deepEqual(resolve({ platform: 'win32' }), { host: 'npipe:////./pipe/docker_engine', source: 'default' });
    assert.deepEqual(resolve({ env: { DOCKER_CONFIG: path.join(FIXTURES, 'config-no-current-context') } }), {
      host: 'unix:///var/run/docker.sock',
      source: 'default',
    });
  });

  test('the setting wins over DOCKER_HOST, DOCKER_CONTEXT and the current context', () => {
    const location = resolve({
      setting: 'unix:///run/user/1000/docker.sock',
      homeDir: HOME_WITH_CONTEXTS,
      env: { DOCKER_HOST: 'tcp://1.2.3.4:2375', DOCKER_CONTEXT: 'colima' },
    });
    assert.deepEqual(location, { host: 'unix:///run/user/1000/docker.sock', source: 'setting' });
    assert.equal(resolve({ setting: '  ', env: { DOCKER_HOST: 'unix:///x.sock' } }).source, 'DOCKER_HOST');
    assert.equal(resolve({ setting: 'build-box:2375' }).host, 'tcp://build-box:2375');
  });

  test('a setting that is no engine address is an invalid setting', () => {
    assert.throws(
      () => resolve({ setting: 'ftp://example.com' }),
      (error: unknown) => SandboxError.is(error, 'invalid-setting') && error.options.setting === 'agentSandbox.dockerHost',
    );
  });

  test('DOCKER_HOST: unix, npipe and plain tcp', () => {
    assert.deepEqual(resolve({ env: { DOCKER_HOST: 'unix:///tmp/d.sock' } }), { host: 'unix:///tmp/d.sock', source: 'DOCKER_HOST' });
    assert.deepEqual(resolve({ platform: 'win32', env: { DOCKER_HOST: 'npipe:////./pipe/docker_engine_linux' } }), {
      host: 'npipe:////./pipe/docker_engine_linux',
      source: 'DOCKER_HOST',
    });
    assert.deepEqual(resolve({ env: { DOCKER_HOST: 'tcp://10.1.1.1:2375' } }), { host: 'tcp://10.1.1.1:2375', source: 'DOCKER_HOST' });
  });

  test('DOCKER_HOST with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH', () => {
    const location = resolve({ env: { DOCKER_HOST: 'tcp://10.1.1.1:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' } });
    assert.deepEqual(location.tls, { ca: '/certs/ca.pem', cert: '/certs/cert.pem', key: '/certs/key.pem', verify: true });
    // Without DOCKER_CERT_PATH the files are looked for in the docker config folder.
    const fromConfig = resolve({ homeDir: '/home/dev', env: { DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1' } });
    assert.equal(fromConfig.tls?.ca, '/home/dev/.docker/ca.pem');
    const fromDockerConfig = resolve({ env: { DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CONFIG: '/cfg' } });
    assert.equal(fromDockerConfig.tls?.key, '/cfg/key.pem');
    // A cert path alone means TLS without verification (docker's client library behaviour).
    assert.equal(resolve({ env: { DOCKER_HOST: 'tcp://h:2376', DOCKER_CERT_PATH: '/certs' } }).tls?.verify, false);
    // TLS variables mean nothing for a unix socket.
    assert.equal(resolve({ env: { DOCKER_HOST: 'unix:///d.sock', DOCKER_TLS_VERIFY: '1' } }).tls, undefined);
  });

  test('DOCKER_HOST wins over DOCKER_CONTEXT', () => {
    assert.equal(resolve({ homeDir: HOME_WITH_CONTEXTS, env: { DOCKER_HOST: 'unix:///a.sock', DOCKER_CONTEXT: 'colima' } }).host, 'unix:///a.sock');
  });

  test('DOCKER_CONTEXT names a context in the config folder', () => {
    assert.deepEqual(resolve({ homeDir: HOME_WITH_CONTEXTS, env: { DOCKER_CONTEXT: 'colima' } }), {
      host: 'unix:///Users/dev/.colima/default/docker.sock',
      source: 'DOCKER_CONTEXT',
    });
    assert.deepEqual(resolve({ env: { DOCKER_CONFIG: CONFIG_WITH_CONTEXTS, DOCKER_CONTEXT: 'skip-verify' } }), {
      host: 'tcp://10.0.0.6:2376',
      source: 'DOCKER_CONTEXT',
      tls: { ca: undefined, cert: undefined, key: undefined, verify: false },
    });
    assert.equal(resolve({ homeDir: HOME_WITH_CONTEXTS, env: { DOCKER_CONTEXT: 'over-ssh' } }).host, 'ssh://dev@build-box:2222');
    assert.deepEqual(resolve({ homeDir: HOME_WITH_CONTEXTS, env: { DOCKER_CONTEXT: 'default' } }), {
      host: 'unix:///var/run/docker.sock',
      source: 'DOCKER_CONTEXT',
    });
  });

  test('the current context of ~/.docker/config.json, with its TLS files', () => {
    const tlsDir = path.join(CONFIG_WITH_CONTEXTS, 'contexts', 'tls', contextDigest('remote-tls'), 'docker');
    assert.deepEqual(resolve({ homeDir: HOME_WITH_CONTEXTS }), {
      host: 'tcp://10.0.0.5:2376',
      source: 'context:remote-tls',
      tls: { ca: path.join(tlsDir, 'ca.pem'), cert: path.join(tlsDir, 'cert.pem'), key: path.join(tlsDir, 'key.pem'), verify: true },
    });
    assert.deepEqual(resolve({ env: { DOCKER_CONFIG: path.join(FIXTURES, 'config-default-context') }, platform: 'win32' }), {
      host: 'npipe:////./pipe/docker_engine',
      source: 'context:default',
    });
  });

  test('context folders are the SHA-256 of the name, like the docker CLI', () => {
    assert.equal(contextDigest('default'), '37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f');
  });

  test('an unknown context fails with engine-unreachable naming it and the fix', () => {
    for (const input of [
      { env: { DOCKER_CONFIG: path.join(FIXTURES, 'config-unknown-context') } },
      { homeDir: HOME_WITH_CONTEXTS, env: { DOCKER_CONTEXT: 'ghost' } },
    ]) {
      assert.throws(
        () => resolve(input),
        (error: unknown) =>
          SandboxError.is(error, 'engine-unreachable') &&
          /Docker context "ghost"/.test(error.message) &&
          /docker context use/.test(error.message) &&
          /agentSandbox\.dockerHost/.test(error.message),
      );
    }
  });

  test('a broken config or context fails with engine-unreachable', () => {
    assert.throws(
      () => resolve({ env: { DOCKER_CONFIG: path.join(FIXTURES, 'config-invalid-json') } }),
      (error: unknown) => SandboxError.is(error, 'engine-unreachable') && /not valid JSON/.test(error.message),
    );
    assert.throws(
      () => resolve({ homeDir: HOME_WITH_CONTEXTS, env: { DOCKER_CONTEXT: 'no-endpoint' } }),
      (error: unknown) => SandboxError.is(error, 'engine-unreachable') && /no docker endpoint/.test(error.message),
    );
  });
});

suite('unit: dockerodeOptions', () => {
  test('unix sockets and named pipes become socket paths', () => {
    assert.deepEqual(dockerodeOptions({ host: 'unix:///var/run/docker.sock', source: 'default' }), { socketPath: '/var/run/docker.sock' });
    assert.deepEqual(dockerodeOptions({ host: 'npipe:////./pipe/docker_engine', source: 'default' }), { socketPath: '//./pipe/docker_engine' });
  });

  test('plain tcp is http with the given or the standard port', () => {
    assert.deepEqual(dockerodeOptions({ host: 'tcp://10.1.1.1:2375', source: 'DOCKER_HOST' }), {
      protocol: 'http',
      host: '10.1.1.1',
      port: '2375',
    });
    assert.equal(dockerodeOptions({ host: 'tcp://box', source: 'DOCKER_HOST' }).port, 2375);
  });

  test('verified TLS reads the CA, certificate and key files', () => {
    const location = resolve({ homeDir: HOME_WITH_CONTEXTS });
    const options = dockerodeOptions(location);
    assert.equal(options.protocol, 'https');
    assert.equal(options.host, '10.0.0.5');
    assert.equal(options.port, '2376');
    assert.match(String(options.ca), /not a real ca\.pem/);
    assert.match(String(options.cert), /not a real cert\.pem/);
    assert.match(String(options.key), /not a real key\.pem/);
  });

  test('TLS without verification uses an agent that accepts any server certificate', () => {
    const options = dockerodeOptions({ host: 'tcp://h:2376', source: 'DOCKER_CONTEXT', tls: { verify: false } }) as {
      agent?: https.Agent;
      ca?: unknown;
    };
    assert.ok(options.agent instanceof https.Agent);
    assert.equal((options.agent as unknown as { options: { rejectUnauthorized?: boolean } }).options.rejectUnauthorized, false);
    assert.equal(options.ca, undefined);
  });

  test('a missing TLS file is reported with its path', () => {
    assert.throws(
      () => dockerodeOptions({ host: 'tcp://h:2376', source: 'DOCKER_HOST', tls: { ca: '/nope/ca.pem', verify: true } }),
      (error: unknown) => SandboxError.is(error, 'engine-unreachable') && /\/nope\/ca\.pem/.test(error.message),
    );
  });

  test("ssh hosts go through the system ssh (an agent that dials `ssh … -- host docker system dial-stdio`), never dockerode's ssh2", () => {
    const options = dockerodeOptions({ host: 'ssh://dev@build-box:2222', source: 'context:over-ssh' });
    assert.notEqual(options.protocol, 'ssh', "dockerode's ssh2 client checks no known_hosts");
    assert.ok((options as { agent?: unknown }).agent instanceof SshAgent);
    assert.deepEqual(sshTargetOf('ssh://dev@build-box:2222'), { host: 'build-box', port: 2222, user: 'dev' });
    assert.deepEqual(sshTargetOf('ssh://[fd00::5]'), { host: 'fd00::5' });
    const args = sshArgs({ host: 'build-box', port: 2222, user: 'dev' }, { controlDir: '/tmp/x' });
    assert.deepEqual(args.slice(args.indexOf('--')), ['--', 'build-box', 'docker', 'system', 'dial-stdio']);
    for (const option of ['BatchMode=yes', 'StrictHostKeyChecking=yes', 'ControlMaster=auto', 'ControlPath=/tmp/x/%C']) {
      assert.ok(args.includes(option), option);
    }
    assert.deepEqual(args.slice(args.indexOf('-l'), args.indexOf('-l') + 2), ['-l', 'dev']);
    assert.deepEqual(args.slice(args.indexOf('-p'), args.indexOf('-p') + 2), ['-p', '2222']);
    assert.equal(
      sshArgs({ host: 'h' }).some((a) => a.startsWith('ControlPath')),
      false,
    );
    assert.throws(
      () => sshArgs({ host: '-oProxyCommand=touch /tmp/pwned' }),
      (error: unknown) => SandboxError.is(error, 'invalid-setting'),
    );
  });

  test("ssh failures are typed from ssh's own report: host key changed or unknown, authentication, no docker there", () => {
    const target = { host: 'build-box', user: 'dev' };
    const changed = sshFailure(
      target,
      255,
      '@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@\nHost key verification failed.\n',
    );
    assert.equal(changed.reason, 'ssh-host-key');
    assert.match(changed.message, /host key changed/);
    const unknown = sshFailure(
      target,
      255,
      'No ED25519 host key is known for build-box and you have requested strict checking.\nHost key verification failed.\n',
    );
    assert.equal(unknown.reason, 'ssh-host-key');
    assert.match(unknown.message, /host key unknown/);
    const auth = sshFailure(target, 255, 'dev@build-box: Permission denied (publickey).\n');
    assert.equal(auth.reason, 'ssh-failed');
    assert.match(auth.message, /authentication failed/);
    assert.equal(sshFailure(target, 127, 'sh: 1: docker: not found\n').reason, 'ssh-failed');
    assert.equal(sshFailure(target, 255, 'ssh: connect to host build-box port 22: Connection refused\n').reason, 'engine-unreachable');
  });
});
