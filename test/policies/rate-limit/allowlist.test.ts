import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../../lib/errors.js';
import { compileAllowlist } from '../../../lib/policies/rate-limit/allowlist.js';

describe('compileAllowlist', () => {
  it('matches nothing when empty', () => {
    const allowed = compileAllowlist([]);
    assert.equal(allowed('1.2.3.4', '1.2.3.4'), false);
    assert.equal(allowed('', undefined), false);
  });

  it('matches literal keys exactly', () => {
    const allowed = compileAllowlist(['partner-key', 'user:42']);
    assert.equal(allowed('partner-key'), true);
    assert.equal(allowed('user:42', '9.9.9.9'), true);
    assert.equal(allowed('partner-key2'), false);
    assert.equal(allowed('PARTNER-KEY'), false);
  });

  it('matches single IPv4 and IPv6 addresses against the client ip', () => {
    const allowed = compileAllowlist(['10.1.2.3', '2001:db8::1']);
    assert.equal(allowed('some-key', '10.1.2.3'), true);
    assert.equal(allowed('some-key', '10.1.2.4'), false);
    assert.equal(allowed('k', '2001:db8::1'), true);
    assert.equal(allowed('k', '2001:0db8:0:0:0:0:0:1'), true);
    assert.equal(allowed('k', '2001:db8::2'), false);
  });

  it('matches IPv4 and IPv6 CIDR ranges', () => {
    const allowed = compileAllowlist(['10.0.0.0/8', '192.168.1.0/24', '2001:db8:ab00::/56']);
    assert.equal(allowed('k', '10.255.0.1'), true);
    assert.equal(allowed('k', '11.0.0.1'), false);
    assert.equal(allowed('k', '192.168.1.200'), true);
    assert.equal(allowed('k', '192.168.2.1'), false);
    assert.equal(allowed('k', '2001:db8:ab00:ff::1'), true);
    assert.equal(allowed('k', '2001:db8:ab00:100::1'), false);
  });

  it('matches IPv4-mapped clients and ranges as IPv4, and ignores zone ids', () => {
    const allowed = compileAllowlist(['10.0.0.0/8', '::ffff:172.16.0.0/108', 'fe80::/10']);
    assert.equal(allowed('k', '::ffff:10.9.8.7'), true);
    assert.equal(allowed('k', '172.16.5.5'), true);
    assert.equal(allowed('k', '172.32.0.1'), false);
    assert.equal(allowed('k', 'fe80::1%eth0'), true);
  });

  it('checks the key as an address when no ip is given', () => {
    const allowed = compileAllowlist(['10.0.0.0/8']);
    assert.equal(allowed('10.1.1.1'), true);
    assert.equal(allowed('12.1.1.1'), false);
    assert.equal(allowed('not-an-ip'), false);
    // An explicit ip wins over the key.
    assert.equal(allowed('10.1.1.1', '12.1.1.1'), false);
  });

  it('ignores garbage client addresses', () => {
    const allowed = compileAllowlist(['0.0.0.0/0', '::/0']);
    assert.equal(allowed('k', 'garbage'), false);
    assert.equal(allowed('k', '8.8.8.8'), true);
    assert.equal(allowed('k', '2001:db8::1'), true);
  });

  it('throws on invalid CIDRs and empty entries', () => {
    for (const entry of [
      '10.0.0.0/33',
      '10.0.0/8',
      '2001:db8::/129',
      '10.0.0.0/',
      '10.0.0.0/x',
      '::1/-1',
      '',
    ]) {
      assert.throws(
        () => compileAllowlist(['ok', entry]),
        (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError, entry);
          assert.ok(err.message.includes(JSON.stringify(entry)), err.message);
          return true;
        },
      );
    }
    assert.throws(() => compileAllowlist([42 as unknown as string]), InvalidArgumentError);
    assert.throws(
      () => compileAllowlist('10.0.0.0/8' as unknown as string[]),
      InvalidArgumentError,
    );
  });

  it('treats strings with a slash that do not look like addresses as keys', () => {
    const allowed = compileAllowlist(['team/alpha']);
    assert.equal(allowed('team/alpha'), true);
  });
});
