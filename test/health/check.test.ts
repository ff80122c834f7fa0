import assert from 'node:assert/strict';
import { probeErrorMessage, redactMessage } from '../../lib/health/check.js';

describe('health check messages', () => {
  it('mask the password of every URL, keeping the user', () => {
    assert.equal(
      redactMessage('connect redis://app:hunter2@cache:6379/0 and rediss://:s3cret@replica failed'),
      'connect redis://app:***@cache:6379/0 and rediss://:***@replica failed',
    );
    assert.equal(redactMessage('redis://u:p@ss@host:6379'), 'redis://u:***@host:6379');
  });

  it('mask a lone userinfo, which is usually a token', () => {
    assert.equal(
      redactMessage('GET https://ghp_token@api.internal/x'),
      'GET https://***@api.internal/x',
    );
  });

  it('leave URLs without credentials and other text alone', () => {
    for (const text of [
      'GET http://payments:8080/healthz answered 503',
      'http://host/path?next=a@b',
      'http://host:8080/users/@me',
      'ECONNREFUSED 127.0.0.1:6379',
      'mail ops@example.com',
    ]) {
      assert.equal(redactMessage(text), text);
    }
  });

  it('describe any thrown value, short and safe', () => {
    assert.equal(probeErrorMessage(new Error('boom')), 'boom');
    const coded = Object.assign(new Error(''), { code: 'ECONNRESET' });
    assert.equal(probeErrorMessage(coded), 'ECONNRESET');
    assert.equal(probeErrorMessage(new RangeError('')), 'RangeError');
    assert.equal(probeErrorMessage('redis://a:b@c down'), 'redis://a:***@c down');
    assert.equal(probeErrorMessage(undefined), 'undefined');
    const long = probeErrorMessage(new Error('x'.repeat(1000)));
    assert.equal(long.length, 300);
    assert.ok(long.endsWith('…'));
  });
});
