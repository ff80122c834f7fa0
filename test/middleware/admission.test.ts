import assert from 'node:assert/strict';
import request from 'supertest';
import { resilience, type ResilienceMiddleware } from '../../lib/index.js';
import { APP_KINDS, json, makeApp } from '../helpers/apps.js';

describe('admission edge cases', () => {
  let r: ResilienceMiddleware | undefined;
  afterEach(async () => {
    await r?.close();
    r = undefined;
  });

  for (const kind of APP_KINDS) {
    describe(kind, () => {
      it('answers 504 at once, without calling the handler, for a deadline header of 0', async () => {
        r = resilience({
          middleware: {
            deadlineHeader: { enabled: true, name: 'x-request-timeout-ms' },
            defaults: { timeout: { duration: '5s' }, bulkhead: { maxConcurrent: 1 } },
          },
        });
        let calls = 0;
        const app = makeApp(kind, r, {
          '/sync': (_req, res) => {
            calls++;
            json(res, 200, {});
          },
        });
        const res = await request(app).get('/sync').set('x-request-timeout-ms', '0');
        assert.equal(res.status, 504);
        assert.equal(calls, 0);
        // The bulkhead slot was given back: the next request runs.
        await request(app).get('/sync').expect(200);
        assert.equal(calls, 1);
      });

      it('lets an allowlisted header key through a header-keyed rate limit', async () => {
        r = resilience({
          middleware: {
            defaults: {
              rateLimit: {
                enabled: true,
                limit: 1,
                window: '1m',
                key: 'header:x-api-key',
                allowlist: ['vip-key'],
              },
            },
          },
        });
        const app = makeApp(kind, r, { '/x': (_req, res) => json(res, 200, {}) });
        for (let i = 0; i < 3; i++)
          await request(app).get('/x').set('x-api-key', 'vip-key').expect(200);
        await request(app).get('/x').set('x-api-key', 'other').expect(200);
        await request(app).get('/x').set('x-api-key', 'other').expect(429);
        // The internal prefix is not a way in.
        await request(app).get('/x').set('x-api-key', 'h:vip-key').expect(200);
        await request(app).get('/x').set('x-api-key', 'h:vip-key').expect(429);
      });
    });
  }
});
