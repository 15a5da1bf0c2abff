// Issue 12, "the part that must hold": attacks on the egress design from inside an allowlisted box (and from
// other containers), each with a control that shows the same attempt works where the defence is absent.
// The internet is a stand-in this suite creates (test/engine/egressInternet.ts): an internal Docker network
// with a 198.18.x.0/24 subnet, two upstream containers, a probe container; no traffic leaves this machine.
import * as assert from 'node:assert/strict';
import { Box } from '../../src/core/box/box';
import type { DockerEngine } from '../../src/core/docker/dockerEngine';
import { GATEWAY_LIMITS } from '../../src/core/egress/gatewayConfig';
import { GATEWAY_DOWN_TEXT } from '../../src/gateway/relayServer';
import { createHash, randomBytes } from 'node:crypto';
import { MODEL_KEY_PLACEHOLDER } from '../../src/core/egress/modelProviders';

/** The real key of these cases: unique per run. The stand-ins answer with SHA-256 of the credentials they got. */
const MODEL_KEY = `sk-ant-sec-${randomBytes(24).toString('hex')}`;
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
/** The provider route as the box's ANTHROPIC_BASE_URL names it. */
const ROUTE = 'http://127.0.0.1:3128/_agent-sandbox/anthropic';
import { connectTestEngine, removeEverythingOwnedBy, sh, shOk, TEST_IMAGES, testOwnerId, testSettings } from '../engine/engineHarness';
import { attemptsOf, createTestInternet, HOSTILE_NAMES, rawConnect, type TestInternet } from '../engine/egressInternet';

suite('security: egress — the box leaves only through its own gateway, and only to allowed hosts', function () {
  this.timeout(240_000);
  const ownerId = testOwnerId('egress-sec');
  let engine: DockerEngine;
  let internet: TestInternet;
  let box: Box;
  /** A plain container on the test network: what the box could do if it had a route. */
  let probe: string;

  suiteSetup(async () => {
    engine = await connectTestEngine();
    internet = await createTestInternet(engine, ownerId);
    probe = await internet.runOnNetwork('probe', ['sleep', '900'], { user: '1000:1000' });
    box = await Box.create(engine, testSettings({ image: TEST_IMAGES.net, pidsLimit: 256 }), {
      folder: '/tmp/egress-security',
      ownerId,
      env: [],
      // The gateway also holds a model key (the provider stand-in is api.anthropic.com on the test network).
      egress: internet.egress(['registry.test', 'api.test:80', '[::1]', '127.0.0.1', ...Object.keys(HOSTILE_NAMES)], {
        providerKeys: { anthropic: MODEL_KEY },
      }),
    });
    await shOk(box, 'cat > /tmp/ca.pem', { stdin: internet.caPem });
  });

  suiteTeardown(async () => {
    await removeEverythingOwnedBy(engine, ownerId);
    await internet?.remove();
  });

  const probeSh = (command: string): Promise<{ exitCode: number; stdout: string; stderr: string }> => internet.execIn(probe, ['bash', '-c', command]);

  test('a direct TCP connection to an upstream IP fails (no route); control: the probe on that network connects', async () => {
    const direct = await sh(box, `timeout 5 bash -c 'exec 3<>/dev/tcp/${internet.upstreamAddress}/443' 2>&1; echo "exit $?"`);
    assert.match(direct.stdout, /Network is unreachable/);
    const control = await probeSh(`timeout 5 bash -c 'exec 3<>/dev/tcp/${internet.upstreamAddress}/443' && echo connected`);
    assert.equal(control.stdout.trim(), 'connected');
  });

  test('a direct connection that ignores the proxy variables gets nowhere (curl --noproxy)', async () => {
    const curl = await sh(box, 'curl -sS --max-time 5 --noproxy "*" --cacert /tmp/ca.pem https://registry.test/');
    assert.notEqual(curl.exitCode, 0);
    assert.match(curl.stderr, /Could not resolve host/);
    const byAddress = await sh(box, `curl -sS --max-time 5 --noproxy "*" -k https://${internet.upstreamAddress}/`);
    assert.notEqual(byAddress.exitCode, 0);
    assert.match(byAddress.stderr, /Failed to connect|Couldn't connect|Network is unreachable/);
    const control = await probeSh('curl -sS --max-time 5 -k https://registry.test/');
    assert.equal(control.exitCode, 0, control.stderr);
  });

  test('DNS: the box resolves nothing, not through any resolver (embedded DNS, the upstream, loopback); control: the probe resolves', async () => {
    const lookup = `node -e "require('dns').lookup('registry.test',(e,a)=>console.log(e?e.code:a))"`;
    const lookups = await sh(
      box,
      `${lookup}; ` +
        `for server in 127.0.0.11 ${internet.upstreamAddress} 127.0.0.1; do timeout 5 nslookup registry.test $server >/dev/null 2>&1; echo "nslookup@$server $?"; done`,
    );
    assert.match(lookups.stdout, /^(EAI_AGAIN|ENOTFOUND)$/m);
    for (const server of ['127.0.0.11', internet.upstreamAddress, '127.0.0.1'])
      assert.match(lookups.stdout, new RegExp(`nslookup@${server.replace(/\./g, '\\.')} [1-9]`));
    const control = await probeSh(`${lookup}; timeout 5 nslookup registry.test 127.0.0.11 >/dev/null; echo "nslookup $?"`);
    assert.match(control.stdout, new RegExp(`^${internet.upstreamAddress.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(control.stdout, /nslookup 0/);
  });

  test('UDP to any address fails from the box (no route); control: the probe can send it', async () => {
    const udp = await sh(box, `bash -c 'echo x > /dev/udp/${internet.upstreamAddress}/53' 2>&1; echo "exit $?"`);
    assert.match(udp.stdout, /Network is unreachable/);
    assert.match(udp.stdout, /exit 1/);
    const control = await probeSh(`bash -c 'echo x > /dev/udp/${internet.upstreamAddress}/53'; echo "exit $?"`);
    assert.match(control.stdout, /exit 0/);
  });

  test('IPv6: the box has no IPv6 route, and listed loopback literals ([::1], 127.0.0.1) are refused by the gateway', async () => {
    const routes = await sh(box, 'cat /proc/net/ipv6_route 2>/dev/null | grep -v " lo$" | wc -l');
    assert.equal(routes.stdout.trim(), '0');
    for (const target of ['[::1]:443', '127.0.0.1:443', '[::ffff:127.0.0.1]:443']) {
      const raw = await sh(box, rawConnect(target));
      assert.match(raw.stdout, /^HTTP\/1\.1 403 Forbidden/, target);
    }
    const last = (await attemptsOf(box, 0)).slice(-3);
    assert.deepEqual(
      last.map((a) => a.reason),
      ['refused-address', 'refused-address', 'not-allowlisted'],
    );
  });

  test('a CONNECT to a denied host or to an upstream IP literal is answered 403; control: an allowed name through the same relay works', async () => {
    for (const target of ['other.test:443', `${internet.otherAddress}:443`, `${internet.upstreamAddress}:443`]) {
      const raw = await sh(box, rawConnect(target));
      assert.match(raw.stdout, /^HTTP\/1\.1 403 Forbidden[\s\S]*is not allowed/, target);
    }
    const control = await sh(box, rawConnect('registry.test:443'));
    assert.match(control.stdout, /^HTTP\/1\.1 200 Connection Established/);
  });

  test('allowed names that resolve to loopback, a private, the metadata or an IPv4-mapped loopback address are refused after resolution', async () => {
    for (const [name, address] of Object.entries(HOSTILE_NAMES)) {
      const raw = await sh(box, rawConnect(`${name}:443`));
      assert.match(raw.stdout, /^HTTP\/1\.1 403 Forbidden/, name);
      assert.match(raw.stdout, new RegExp(`${name.replace('.', '\\.')} resolved to ${address.replace(/\./g, '\\.')}`), raw.stdout);
    }
    // Control: the gateway's own resolver really returned those addresses (the records carry them), so only
    // the address check stood between the box and them.
    const records = (await attemptsOf(box, 0)).filter((a) => a.host in HOSTILE_NAMES);
    assert.deepEqual(
      records.map((a) => [a.host, a.address, a.reason]),
      Object.entries(HOSTILE_NAMES).map(([name, address]) => [name, address, 'refused-address']),
    );
  });

  test('Host-header mismatch on plain HTTP is refused; control: the right Host header is forwarded', async () => {
    const mismatch = await sh(box, 'curl -sS -H "Host: other.test" http://api.test/');
    assert.match(mismatch.stdout, /Host header says "other\.test"/);
    const control = await shOk(box, 'curl -sS --fail http://api.test/');
    assert.equal((JSON.parse(control) as { upstream: string }).upstream, 'registry');
  });

  test("SNI / Host mismatch inside a tunnel cannot move it: a CONNECT to an allowed name reaches that name's address, whatever TLS names; control: the probe reaches other.test", async () => {
    // curl sends CONNECT registry.test:443 (allowed) but TLS SNI and Host other.test (denied).
    const fronted = await shOk(box, 'curl -sS --fail --cacert /tmp/ca.pem --connect-to other.test:443:registry.test:443 https://other.test/');
    const answer = JSON.parse(fronted) as { upstream: string; host: string };
    assert.deepEqual({ upstream: answer.upstream, host: answer.host }, { upstream: 'registry', host: 'other.test' });
    const control = await probeSh(`curl -sS --fail --cacert /dev/stdin https://other.test/ <<'EOF'\n${internet.caPem}EOF`);
    assert.equal((JSON.parse(control.stdout) as { upstream: string }).upstream, 'other', control.stderr);
  });

  test('the gateway cannot be used from another container: it listens on no TCP port; control: that container reaches the upstream', async () => {
    const gateway = await engine.call('inspecting the gateway', (d) => d.getContainer(box.egress!.gatewayId).inspect());
    const address = gateway.NetworkSettings.Networks[internet.networkName]!.IPAddress;
    assert.match(address, /^198\.18\./);
    const tries = await probeSh(
      `for port in 3128 80 443 8080 1080; do timeout 3 bash -c "exec 3<>/dev/tcp/${address}/$port" 2>/dev/null && echo "open $port"; done; echo done`,
    );
    assert.equal(tries.stdout.trim(), 'done');
    const control = await probeSh(`timeout 3 bash -c 'exec 3<>/dev/tcp/${internet.upstreamAddress}/80' && echo reachable`);
    assert.equal(control.stdout.trim(), 'reachable');
  });

  test('the box has no gateway socket (no egress volume), sees no relay process, cannot take over port 3128; control: the relay serves it', async () => {
    const look = await sh(
      box,
      'ls /egress 2>&1; find / -xdev -type s 2>/dev/null | grep -c gateway; ls /proc | grep -c "^[0-9]"; pgrep -f gateway.js | wc -l',
    );
    assert.match(look.stdout, /No such file or directory/);
    const lines = look.stdout.trim().split('\n');
    assert.equal(lines[lines.length - 1], '0', 'no relay or gateway process is visible in the box');
    const bind = await sh(
      box,
      `node -e "const s=require('net').createServer();s.on('error',e=>{console.log(e.code);process.exit(0)});s.listen(3128,'127.0.0.1',()=>{console.log('bound');s.close()})"`,
    );
    assert.equal(bind.stdout.trim(), 'EADDRINUSE');
    const other = await sh(box, `node -e "const s=require('net').createServer();s.listen(3129,'127.0.0.1',()=>{console.log('bound');s.close()})"`);
    assert.equal(other.stdout.trim(), 'bound');
  });

  test("another box cannot use this box's gateway: its own relay leads to its own gateway and allowlist; a box with network none has nothing on 3128", async () => {
    const otherBox = await Box.create(engine, testSettings({ image: TEST_IMAGES.net }), {
      folder: '/tmp/egress-security-b',
      ownerId,
      env: [],
      egress: internet.egress([]),
    });
    const noneBox = await Box.create(engine, testSettings({ image: TEST_IMAGES.net }), { folder: '/tmp/egress-security-c', ownerId, env: [] });
    try {
      const viaB = await sh(otherBox, rawConnect('registry.test:443'));
      assert.match(viaB.stdout, /^HTTP\/1\.1 403[\s\S]*registry\.test:443 is not allowed/);
      assert.equal(otherBox.egress!.attempts.length, 1);
      assert.ok(
        !box.egress!.attempts.some((a) => a.start > otherBox.egress!.attempts[0]!.start && a.host === 'registry.test' && a.decision === 'denied'),
      );
      const viaNone = await sh(noneBox, `(${rawConnect('registry.test:443')}) 2>&1; echo "exit $?"`);
      assert.match(viaNone.stdout, /Connection refused/);
      // Control: box A's relay does reach registry.test.
      const viaA = await sh(box, rawConnect('registry.test:443'));
      assert.match(viaA.stdout, /^HTTP\/1\.1 200/);
    } finally {
      await otherBox.remove();
      await noneBox.remove();
    }
  });

  test(`many connections at once are bounded: of ${GATEWAY_LIMITS.maxConnections + 40} tunnels held open, ${GATEWAY_LIMITS.maxConnections} open and the rest get 503`, async () => {
    const total = GATEWAY_LIMITS.maxConnections + 40;
    const script = `
      const net = require('net'); const statuses = []; const sockets = [];
      let done = 0;
      for (let i = 0; i < ${total}; i++) {
        const s = net.connect(3128, '127.0.0.1'); sockets.push(s);
        s.on('error', () => {});
        s.once('data', (d) => { statuses.push(String(d).slice(9, 12)); if (++done === ${total}) finish(); });
        s.write('CONNECT registry.test:443 HTTP/1.1\\r\\n\\r\\n');
      }
      function finish() {
        const count = {}; for (const s of statuses) count[s] = (count[s] || 0) + 1;
        console.log(JSON.stringify(count)); for (const s of sockets) s.destroy(); process.exit(0);
      }
      setTimeout(() => { console.log('timeout ' + done); process.exit(1); }, 60000);`;
    const out = await shOk(box, `node -e "$SCRIPT"`, { env: [`SCRIPT=${script}`], timeoutMs: 90_000 });
    assert.deepEqual(JSON.parse(out), { '200': GATEWAY_LIMITS.maxConnections, '503': 40 });
  });

  test('a very large upload (64 MB through a TLS tunnel) is counted byte for byte in the record', async () => {
    const before = box.egress!.attempts.length;
    await shOk(box, 'head -c 64000000 /dev/zero | curl -sS --fail --cacert /tmp/ca.pem -T - https://registry.test/upload >/dev/null', {
      timeoutMs: 120_000,
    });
    // Records arrive when attempts end, so earlier tunnels closing now may come first: find this one.
    let upload;
    for (let i = 0; i < 100 && !upload; i++) {
      upload = box.egress!.attempts.slice(before).find((a) => a.host === 'registry.test' && a.bytesUp > 1_000_000);
      if (!upload) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(upload, JSON.stringify(box.egress!.attempts.slice(before)));
    assert.ok(upload.bytesUp > 64_000_000 && upload.bytesUp < 65_000_000, `bytesUp ${upload.bytesUp} (64 MB plus TLS framing)`);
  });

  test('the gateway and relay run hardened: uid 65532, no capabilities, no-new-privileges, read-only root', async () => {
    for (const id of [box.egress!.gatewayId]) {
      const status = await internet.execIn(id, [
        'node',
        '-e',
        "const s=require('fs').readFileSync('/proc/self/status','utf8');console.log(s.match(/^(Uid|CapEff|CapPrm|NoNewPrivs):.*$/gm).join('\\n'));try{require('fs').writeFileSync('/x','')}catch(e){console.log(e.code)}",
      ]);
      assert.match(status.stdout, /^Uid:\s+65532\s+65532/m);
      assert.match(status.stdout, /^CapEff:\s+0000000000000000$/m);
      assert.match(status.stdout, /^CapPrm:\s+0000000000000000$/m);
      assert.match(status.stdout, /^NoNewPrivs:\s+1$/m);
      assert.match(status.stdout, /^EROFS$/m);
    }
  });

  test('the gateway killed mid-run: the box gets a readable 502 and no connection at all (never a wider one); the engine side sees it exit', async () => {
    const victim = await Box.create(engine, testSettings({ image: TEST_IMAGES.net }), {
      folder: '/tmp/egress-security-kill',
      ownerId,
      env: [],
      egress: internet.egress(['registry.test']),
    });
    try {
      await shOk(victim, 'cat > /tmp/ca.pem', { stdin: internet.caPem });
      // A run in flight holds a tunnel when the gateway dies.
      const inFlight = sh(
        victim,
        'exec 3<>/dev/tcp/127.0.0.1/3128; printf "CONNECT registry.test:443 HTTP/1.1\\r\\n\\r\\n" >&3; head -1 <&3; timeout 20 cat <&3 >/dev/null; echo "closed $?"',
      );
      await new Promise((r) => setTimeout(r, 1000));
      await engine.call('killing the gateway', (d) => d.getContainer(victim.egress!.gatewayId).kill());
      const flight = await inFlight;
      assert.match(flight.stdout, /^HTTP\/1\.1 200/);
      assert.match(flight.stdout, /closed 0/, 'the tunnel closed when the gateway died');
      const after = await sh(victim, 'curl -sS --cacert /tmp/ca.pem https://registry.test/');
      assert.notEqual(after.exitCode, 0);
      assert.match(after.stderr, /CONNECT tunnel failed, response 502/);
      const text = await sh(victim, rawConnect('registry.test:443'));
      assert.ok(text.stdout.includes(GATEWAY_DOWN_TEXT.trim()), text.stdout);
      const direct = await sh(victim, `curl -sS --max-time 5 --noproxy "*" -k https://${internet.upstreamAddress}/`);
      assert.notEqual(direct.exitCode, 0);
      for (let i = 0; i < 50 && !victim.egress!.exited; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(victim.egress!.exited, true);
    } finally {
      await victim.remove();
    }
  });

  test('network "none" run inside an allowlisted box: nothing reaches an allowed host — not through the proxy variables, not 127.0.0.1:3128 directly, not the model provider route, not with another run\'s id, not over a tunnel opened before it; control: the same commands reach it without the offline run', async () => {
    const ways = [
      'curl -sS --fail --max-time 10 --cacert /tmp/ca.pem https://registry.test/offline',
      'curl -sS --fail --max-time 10 --cacert /tmp/ca.pem --proxy http://127.0.0.1:3128 https://registry.test/offline',
      'curl -sS --fail --max-time 10 --cacert /tmp/ca.pem --proxy http://run-run-someone-else@127.0.0.1:3128 https://registry.test/offline',
      // The model provider route (this box's gateway holds a key): paused too.
      `curl -sS --fail --max-time 10 -d "{}" ${ROUTE}/v1/messages`,
    ];
    const holdTunnel = (seconds: number) =>
      sh(
        box,
        `exec 3<>/dev/tcp/127.0.0.1/3128; printf "CONNECT registry.test:443 HTTP/1.1\\r\\n\\r\\n" >&3; head -1 <&3; timeout ${seconds} cat <&3 >/dev/null; echo "closed $?"`,
      );
    // Controls: every way reaches the allowed host, and a held tunnel stays open (cut by timeout: 124, or 143 where timeout reports the TERM).
    for (const way of ways) {
      const reached = await sh(box, way);
      assert.equal(reached.exitCode, 0, `${way}: ${reached.stderr}`);
    }
    const control = await holdTunnel(3);
    assert.match(control.stdout, /^HTTP\/1\.1 200[\s\S]*closed (124|143)/);

    const held = holdTunnel(30);
    await new Promise((r) => setTimeout(r, 1000));
    const endOffline = await box.egress!.beginOffline('sec-offline');
    try {
      const flight = await held;
      assert.match(flight.stdout, /^HTTP\/1\.1 200[\s\S]*closed 0/, 'the tunnel opened before the offline run was closed by it');
      for (const way of ways) {
        const refused = await sh(box, way);
        assert.notEqual(refused.exitCode, 0, way);
        assert.match(refused.stderr, /CONNECT tunnel failed, response 403|returned error: 403/, `${way}: ${refused.stderr}`);
      }
      const text = await sh(box, rawConnect('registry.test:443'));
      assert.match(text.stdout, /^HTTP\/1\.1 403[\s\S]*offline run \(network: "none"\) runs: sec-offline/);
    } finally {
      await endOffline();
    }
    const after = await sh(box, ways[0]!);
    assert.equal(after.exitCode, 0, `allowed again once the offline run ended: ${after.stderr}`);
  });

  test("model key: it goes only to the provider's host — a placeholder sent to another allowed host (CONNECT or plain HTTP) stays the placeholder; control: the route delivers the real key", async () => {
    const route = JSON.parse(await shOk(box, `curl -sS --fail -H "x-api-key: ${MODEL_KEY_PLACEHOLDER}" -d "{}" ${ROUTE}/v1/messages`)) as {
      host: string;
      apiKeySha256: string;
    };
    assert.deepEqual({ host: route.host, key: route.apiKeySha256 }, { host: 'api.anthropic.com', key: sha256(MODEL_KEY) });
    const tunnel = JSON.parse(
      await shOk(box, `curl -sS --fail --cacert /tmp/ca.pem -H "x-api-key: ${MODEL_KEY_PLACEHOLDER}" https://registry.test/v1/messages`),
    ) as { apiKeySha256: string };
    const plain = JSON.parse(
      await shOk(
        box,
        `curl -sS --fail -H "x-api-key: ${MODEL_KEY_PLACEHOLDER}" -H "authorization: Bearer ${MODEL_KEY_PLACEHOLDER}" http://api.test/v1/messages`,
      ),
    ) as { apiKeySha256: string; authorizationSha256: string };
    assert.equal(tunnel.apiKeySha256, sha256(MODEL_KEY_PLACEHOLDER));
    assert.deepEqual([plain.apiKeySha256, plain.authorizationSha256], [sha256(MODEL_KEY_PLACEHOLDER), sha256(`Bearer ${MODEL_KEY_PLACEHOLDER}`)]);
  });

  test('model key: Host-header, absolute-URL and path tricks cannot route it elsewhere; control: the same requests without the trick reach other.test directly', async () => {
    // The route with another Host header, and with paths that try to name another host: still the provider.
    for (const trick of [
      `-H "Host: other.test" ${ROUTE}/v1/messages`,
      `-H "X-Forwarded-Host: other.test" ${ROUTE}/v1/messages`,
      `--path-as-is "${ROUTE}/../../..//other.test/v1/messages"`,
      `"${ROUTE}/%2F%2Fother.test/v1"`,
    ]) {
      const out = await sh(box, `curl -sS -H "x-api-key: ${MODEL_KEY_PLACEHOLDER}" -d "{}" ${trick}`);
      const answer = JSON.parse(out.stdout) as { upstream: string; host: string; apiKeySha256: string };
      assert.deepEqual({ upstream: answer.upstream, host: answer.host }, { upstream: 'registry', host: 'api.anthropic.com' }, trick);
    }
    // Absolute-form through the proxy (what an HTTP_PROXY client sends): the request goes to the host it names,
    // as any proxied request, and the gateway adds no key to it, even under the route's path.
    const absolute = await sh(
      box,
      `curl -sS -x http://127.0.0.1:3128 -H "x-api-key: ${MODEL_KEY_PLACEHOLDER}" http://api.test/_agent-sandbox/anthropic/v1/messages`,
    );
    const proxied = JSON.parse(absolute.stdout) as { host: string; url: string; apiKeySha256: string };
    assert.deepEqual(proxied, {
      ...proxied,
      host: 'api.test',
      url: '/_agent-sandbox/anthropic/v1/messages',
      apiKeySha256: sha256(MODEL_KEY_PLACEHOLDER),
    });
    // A CONNECT to the provider's host is an opaque tunnel: the gateway cannot and does not add the key.
    const connect = await sh(box, rawConnect('api.anthropic.com:443'));
    assert.match(connect.stdout, /^HTTP\/1\.1 403[\s\S]*api\.anthropic\.com:443 is not allowed/);
    // Control: other.test answers as itself to a client that reaches it (the probe on the test network).
    const control = await probeSh(`curl -sS --fail --cacert /dev/stdin https://other.test/ <<'EOF'\n${internet.caPem}EOF`);
    assert.equal((JSON.parse(control.stdout) as { upstream: string }).upstream, 'other', control.stderr);
  });

  test("model key: no other container or box can use this box's route — the probe finds no listener, another box's route has no key; control: this box's route adds it", async () => {
    const gateway = await engine.call('inspecting the gateway', (d) => d.getContainer(box.egress!.gatewayId).inspect());
    const address = gateway.NetworkSettings.Networks[internet.networkName]!.IPAddress;
    const fromProbe = await probeSh(`curl -sS --max-time 5 -d "{}" http://${address}:3128/_agent-sandbox/anthropic/v1/messages; echo "exit $?"`);
    assert.match(fromProbe.stdout, /exit (7|28)/, fromProbe.stdout);
    const otherBox = await Box.create(engine, testSettings({ image: TEST_IMAGES.net }), {
      folder: '/tmp/egress-security-keys-b',
      ownerId,
      env: [],
      egress: internet.egress(['registry.test']),
    });
    try {
      const viaB = await sh(otherBox, `curl -sS -w "\\n%{http_code}" -d "{}" ${ROUTE}/v1/messages`);
      assert.match(viaB.stdout, /no Anthropic API key is stored[\s\S]*\n403$/);
    } finally {
      await otherBox.remove();
    }
    const control = JSON.parse(await shOk(box, `curl -sS --fail -d "{}" ${ROUTE}/v1/messages`)) as { apiKeySha256: string };
    assert.equal(control.apiKeySha256, sha256(MODEL_KEY));
  });

  test("model key: the box cannot read it — not in its environment, not in the egress volume its relay mounts, not in the gateway's configuration; control: the gateway holds it in memory only", async () => {
    const pattern = `${MODEL_KEY.slice(0, 6)}[${MODEL_KEY[6]}]${MODEL_KEY.slice(7)}`;
    const inBox = await sh(box, `cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '${pattern}'; true`);
    assert.equal(inBox.stdout.trim(), '0');
    const relayView = await internet.execIn(box.egress!.gatewayId, [
      'sh',
      '-c',
      `grep -r -l -s '${pattern}' /egress; cat /proc/1/environ /proc/*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -c '${pattern}'; true`,
    ]);
    assert.equal(relayView.stdout.trim(), '0');
    const inspected = await engine.call('inspecting the gateway', (d) => d.getContainer(box.egress!.gatewayId).inspect());
    assert.ok(!JSON.stringify(inspected).includes(MODEL_KEY));
    // Control: the gateway has it (its answers carry it upstream), so the searches above looked where it could have been.
    assert.deepEqual(box.egress!.configuration.providerKeys, { anthropic: MODEL_KEY });
  });
});
