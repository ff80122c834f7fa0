import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../../lib/errors.js';
import {
  legacyRateLimitHeaders,
  rateLimitHeader,
  rateLimitPolicyHeader,
  retryAfterSeconds,
  ruleQuota,
  sfString,
} from '../../../lib/policies/rate-limit/headers.js';
import type { RateLimitDecision } from '../../../lib/policies/rate-limit/store.js';

function decision(fields: Partial<RateLimitDecision>): RateLimitDecision {
  return { allowed: true, limit: 10, remaining: 5, resetMs: 1000, retryAfterMs: 0, ...fields };
}

describe('rate-limit headers', () => {
  describe('sfString', () => {
    it('quotes, escaping double quotes and backslashes', () => {
      assert.equal(sfString('create-order'), '"create-order"');
      assert.equal(sfString('say "hi"'), '"say \\"hi\\""');
      assert.equal(sfString('a\\b'), '"a\\\\b"');
      assert.equal(sfString('"\\"'), '"\\"\\\\\\""');
      assert.equal(sfString(''), '""');
    });

    it('refuses characters an sf-string cannot carry', () => {
      for (const bad of ['tab\there', 'new\nline', 'café', '\x7f']) {
        assert.throws(() => sfString(bad), InvalidArgumentError);
      }
    });
  });

  describe('RateLimit-Policy', () => {
    it('advertises the quota and the window in seconds', () => {
      assert.equal(
        rateLimitPolicyHeader('create-order', {
          algorithm: 'fixed-window',
          limit: 10,
          windowMs: 1000,
          burst: 0,
        }),
        '"create-order";q=10;w=1',
      );
      assert.equal(
        rateLimitPolicyHeader('api', {
          algorithm: 'gcra',
          limit: 100,
          windowMs: 60_000,
          burst: 20,
        }),
        '"api";q=120;w=60',
      );
    });

    it('rounds the window up, to at least one second', () => {
      const rule = { algorithm: 'gcra', limit: 5, burst: 0 } as const;
      assert.equal(rateLimitPolicyHeader('p', { ...rule, windowMs: 250 }), '"p";q=5;w=1');
      assert.equal(rateLimitPolicyHeader('p', { ...rule, windowMs: 1001 }), '"p";q=5;w=2');
    });

    it('escapes the policy name', () => {
      assert.equal(
        rateLimitPolicyHeader('a"b', { algorithm: 'gcra', limit: 1, windowMs: 1000, burst: 0 }),
        '"a\\"b";q=1;w=1',
      );
    });

    it('counts the burst in the quota for gcra only', () => {
      assert.equal(ruleQuota({ algorithm: 'gcra', limit: 10, windowMs: 1000, burst: 5 }), 15);
      assert.equal(
        ruleQuota({ algorithm: 'fixed-window', limit: 10, windowMs: 1000, burst: 0 }),
        10,
      );
    });
  });

  describe('RateLimit', () => {
    it('reports remaining and the seconds until reset, rounded up', () => {
      assert.equal(
        rateLimitHeader('create-order', decision({ remaining: 3, resetMs: 1000 })),
        '"create-order";r=3;t=1',
      );
      assert.equal(rateLimitHeader('x', decision({ remaining: 0, resetMs: 1001 })), '"x";r=0;t=2');
      assert.equal(rateLimitHeader('x', decision({ remaining: 7, resetMs: 1 })), '"x";r=7;t=1');
      assert.equal(rateLimitHeader('x', decision({ remaining: 10, resetMs: 0 })), '"x";r=10;t=0');
    });

    it('escapes the policy name', () => {
      assert.equal(rateLimitHeader('a\\b', decision({})), '"a\\\\b";r=5;t=1');
    });
  });

  describe('retryAfterSeconds', () => {
    it('rounds up, at least 1 when denied, 0 when allowed', () => {
      assert.equal(retryAfterSeconds(decision({ allowed: true })), 0);
      assert.equal(retryAfterSeconds(decision({ allowed: false, retryAfterMs: 1 })), 1);
      assert.equal(retryAfterSeconds(decision({ allowed: false, retryAfterMs: 0 })), 1);
      assert.equal(retryAfterSeconds(decision({ allowed: false, retryAfterMs: 1000 })), 1);
      assert.equal(retryAfterSeconds(decision({ allowed: false, retryAfterMs: 1001 })), 2);
      assert.equal(retryAfterSeconds(decision({ allowed: false, retryAfterMs: 59_500 })), 60);
    });
  });

  describe('legacy X-RateLimit-*', () => {
    it('gives limit, remaining and the epoch second of the reset, rounded up', () => {
      assert.deepEqual(
        legacyRateLimitHeaders(
          decision({ limit: 100, remaining: 42, resetMs: 1500 }),
          1_700_000_000_000,
        ),
        {
          'X-RateLimit-Limit': '100',
          'X-RateLimit-Remaining': '42',
          'X-RateLimit-Reset': '1700000002',
        },
      );
      assert.equal(
        legacyRateLimitHeaders(decision({ resetMs: 1000 }), 1_700_000_000_000)['X-RateLimit-Reset'],
        '1700000001',
      );
    });
  });
});
