import * as assert from 'node:assert/strict';
import { classifyAddress, parseIPv6 } from '../../../src/core/egress/addressPolicy';

function refused(address: string): string {
  const verdict = classifyAddress(address);
  return verdict.allowed ? 'allowed' : verdict.reason;
}

suite('unit: egress address policy', () => {
  test('IPv4: loopback, private, link-local, metadata, shared, multicast, reserved and unspecified are refused', () => {
    const cases: Record<string, string> = {
      '127.0.0.1': 'loopback',
      '127.255.255.254': 'loopback',
      '10.0.0.1': 'private',
      '172.16.0.1': 'private',
      '172.31.255.255': 'private',
      '192.168.1.1': 'private',
      '169.254.0.1': 'link-local',
      '169.254.169.254': 'metadata',
      '100.100.100.200': 'metadata',
      '100.64.0.1': 'shared',
      '0.0.0.0': 'unspecified',
      '0.1.2.3': 'unspecified',
      '224.0.0.1': 'multicast',
      '239.255.255.250': 'multicast',
      '240.0.0.1': 'reserved',
      '255.255.255.255': 'reserved',
      '192.0.0.170': 'reserved',
    };
    for (const [address, reason] of Object.entries(cases)) assert.equal(refused(address), reason, address);
  });

  test('IPv4: public addresses, the edges of refused ranges and 198.18.0.0/15 are allowed', () => {
    for (const address of [
      '1.1.1.1',
      '8.8.8.8',
      '172.15.255.255',
      '172.32.0.0',
      '100.63.255.255',
      '100.128.0.0',
      '11.0.0.0',
      '126.255.255.255',
      '128.0.0.0',
      '169.253.255.255',
      '198.18.0.2',
      '198.19.255.254',
      '223.255.255.255',
      '203.0.113.7',
    ]) {
      assert.equal(refused(address), 'allowed', address);
    }
  });

  test('IPv6: loopback, unspecified, unique-local, link-local, site-local, multicast, metadata are refused', () => {
    const cases: Record<string, string> = {
      '::1': 'loopback',
      '0:0:0:0:0:0:0:1': 'loopback',
      '::': 'unspecified',
      'fc00::1': 'unique-local',
      'fdff:ffff::1': 'unique-local',
      'fd00:ec2::254': 'metadata',
      'fe80::1': 'link-local',
      'fe80::1%eth0': 'link-local',
      'febf::1': 'link-local',
      'fec0::1': 'private',
      'ff02::1': 'multicast',
      '2001:0:4136:e378:8000:63bf:3fff:fdd2': 'reserved',
      '100::1': 'reserved',
      '64:ff9b:1::a00:1': 'private',
    };
    for (const [address, reason] of Object.entries(cases)) assert.equal(refused(address), reason, address);
  });

  test('IPv6 forms that embed an IPv4 address are judged by it: mapped, compatible, NAT64, 6to4', () => {
    const cases: Record<string, string> = {
      '::ffff:127.0.0.1': 'loopback',
      '::ffff:7f00:1': 'loopback',
      '0:0:0:0:0:ffff:a9fe:a9fe': 'metadata',
      '::ffff:10.1.2.3': 'private',
      '::ffff:192.168.0.1': 'private',
      '::127.0.0.1': 'loopback',
      '::a00:1': 'private',
      '64:ff9b::169.254.169.254': 'metadata',
      '64:ff9b::c0a8:101': 'private',
      '2002:7f00:1::': 'loopback',
      '2002:a00:1::1': 'private',
      '::ffff:8.8.8.8': 'allowed',
      '64:ff9b::808:808': 'allowed',
      '2002:808:808::1': 'allowed',
    };
    for (const [address, reason] of Object.entries(cases)) assert.equal(refused(address), reason, address);
    const metadata = classifyAddress('::ffff:169.254.169.254');
    assert.deepEqual(metadata, { allowed: false, reason: 'metadata', range: '169.254.169.254/32 inside ::ffff:0:0/96' });
  });

  test('public IPv6 is allowed; anything that is not an address is refused as invalid', () => {
    for (const address of ['2606:4700:4700::1111', '2a00:1450:4001:82b::200e', 'fbff::1', 'fe00::1']) {
      assert.equal(refused(address), 'allowed', address);
    }
    for (const text of ['', 'localhost', '1.2.3', '::g', '1.2.3.4.5', '127.0.0.1:80']) {
      assert.equal(refused(text), 'invalid', text);
    }
  });

  test('parseIPv6 expands every spelling to the same 16 bytes', () => {
    const loopback = [...Array(15).fill(0), 1];
    assert.deepEqual(parseIPv6('::1'), loopback);
    assert.deepEqual(parseIPv6('0:0:0:0:0:0:0:1'), loopback);
    assert.deepEqual(parseIPv6('0000:0000::0001'), loopback);
    assert.deepEqual(parseIPv6('::ffff:1.2.3.4'), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
    assert.deepEqual(parseIPv6('1:2:3:4:5:6:7:8'), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    assert.deepEqual(parseIPv6('fd00:ec2::254'), [0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54]);
    assert.equal(parseIPv6('1.2.3.4'), undefined);
  });
});
