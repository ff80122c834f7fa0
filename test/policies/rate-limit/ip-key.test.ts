import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../../lib/errors.js';
import { UNKNOWN_IP_KEY, ipKey } from '../../../lib/policies/rate-limit/ip-key.js';

describe('ipKey', () => {
  it('keeps IPv4 addresses as they are', () => {
    assert.equal(ipKey('1.2.3.4'), '1.2.3.4');
    assert.equal(ipKey('255.255.255.255', 64), '255.255.255.255');
  });

  it('unwraps IPv4-mapped IPv6 addresses', () => {
    assert.equal(ipKey('::ffff:1.2.3.4'), '1.2.3.4');
    assert.equal(ipKey('::FFFF:10.0.0.1'), '10.0.0.1');
    assert.equal(ipKey('::ffff:0102:0304'), '1.2.3.4');
  });

  it('groups IPv6 addresses by a /56 by default', () => {
    const key = '2001:db8:ab00::/56';
    assert.equal(ipKey('2001:db8:ab00::1'), key);
    assert.equal(ipKey('2001:db8:ab00:12:1:2:3:4'), key);
    assert.equal(ipKey('2001:0DB8:AB00:00FF:FFFF:FFFF:FFFF:FFFF'), key);
    // The next /56 starts at 2001:db8:ab00:100::.
    assert.equal(ipKey('2001:db8:ab00:100::1'), '2001:db8:ab00:100::/56');
    assert.equal(ipKey('2001:db8:ab12:3456::1'), '2001:db8:ab12:3400::/56');
  });

  it('groups by /64 and other prefixes', () => {
    assert.equal(ipKey('2001:db8:1:2:aaaa::1', 64), '2001:db8:1:2::/64');
    assert.equal(ipKey('2001:db8:1:2:bbbb::2', 64), '2001:db8:1:2::/64');
    assert.notEqual(ipKey('2001:db8:1:3::1', 64), ipKey('2001:db8:1:2::1', 64));
    assert.equal(ipKey('2001:db8:1:2:3:4:5:6', 128), '2001:db8:1:2:3:4:5:6/128');
    assert.equal(ipKey('2001:db8:ffff::1', 1), '::/1');
    assert.equal(ipKey('ffff::1', 1), '8000::/1');
    assert.equal(ipKey('2001:db8:1:2::1', 60), '2001:db8:1::/60');
  });

  it('strips zone ids and brackets', () => {
    assert.equal(ipKey('fe80::1%eth0', 64), 'fe80::/64');
    assert.equal(ipKey('fe80::1:2:3:4%25en0', 128), 'fe80::1:2:3:4/128');
    assert.equal(ipKey('[2001:db8::1]', 64), '2001:db8::/64');
  });

  it('maps missing or unparseable input to one fixed key', () => {
    assert.equal(UNKNOWN_IP_KEY, 'unknown');
    for (const bad of [
      undefined,
      '',
      'garbage',
      '1.2.3',
      '1.2.3.4.5',
      '2001:db8::g',
      ':::',
      '%eth0',
    ]) {
      assert.equal(ipKey(bad), UNKNOWN_IP_KEY, String(bad));
    }
  });

  it('validates the prefix', () => {
    for (const prefix of [0, 129, 56.5, NaN, -1]) {
      assert.throws(
        () => ipKey('2001:db8::1', prefix),
        (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError);
          assert.match(err.message, /ipv6Prefix/);
          return true;
        },
      );
    }
  });
});
