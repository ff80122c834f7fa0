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
        '"api";q=100;w=60, "api-burst";q=120;w=72',
      );
    });

    it('advertises a burst as a second item that pacing to never exceeds the sustained rate', () => {
      // 2 per 60 s with a burst of 1: 3 at once, then back to 3 in 90 s (one per 30 s).
      assert.equal(
        rateLimitPolicyHeader('p', { algorithm: 'gcra', limit: 2, windowMs: 60_000, burst: 1 }),
        '"p";q=2;w=60, "p-burst";q=3;w=90',
      );
      // 3 per 1.5 s with a burst of 1: both windows rounded up, so the advertised rates are lower.
      assert.equal(
        rateLimitPolicyHeader('p', { algorithm: 'gcra', limit: 3, windowMs: 1500, burst: 1 }),
        '"p";q=3;w=2, "p-burst";q=4;w=2',
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

    it('gives t as the seconds until more quota, not until the quota is full', () => {
      assert.equal(
        rateLimitHeader('x', decision({ remaining: 1, resetMs: 30_000, refillMs: 10_000 })),
        '"x";r=1;t=10',
      );
    });

    it('gives t equal to Retry-After when denied', () => {
      const denied = decision({
        allowed: false,
        remaining: 0,
        resetMs: 60_000,
        refillMs: 29_001,
        retryAfterMs: 29_001,
      });
      assert.equal(rateLimitHeader('x', denied), '"x";r=0;t=30');
      assert.equal(retryAfterSeconds(denied), 30);
      // A store that reports no refillMs: t falls back to the retry delay.
      const { refillMs: _, ...bare } = denied;
      assert.equal(rateLimitHeader('x', bare), '"x";r=0;t=30');
    });

    it('lists the burst item of a gcra rule with a burst, capping the sustained r at its q', () => {
      const rule = { algorithm: 'gcra', limit: 2, windowMs: 60_000, burst: 1 } as const;
      assert.equal(
        rateLimitHeader('p', decision({ remaining: 2, refillMs: 30_000 }), rule),
        '"p";r=2;t=30, "p-burst";r=2;t=30',
      );
      assert.equal(
        rateLimitHeader('p', decision({ remaining: 3, refillMs: 0 }), rule),
        '"p";r=2;t=0, "p-burst";r=3;t=0',
      );
      assert.equal(
        rateLimitHeader('p', decision({ remaining: 3 }), { ...rule, burst: 0 }),
        '"p";r=3;t=1',
      );
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
