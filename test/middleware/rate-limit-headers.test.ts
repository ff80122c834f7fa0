import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import FakeTimers from '@sinonjs/fake-timers';
import connect from 'connect';
import express5 from 'express';
import express4 from 'express4';
import request from 'supertest';
import { resilience, type ResilienceMiddleware } from '../../lib/index.js';
import { APP_KINDS, json, makeApp, type AppKind } from '../helpers/apps.js';

type App = (req: IncomingMessage, res: ServerResponse) => void;

// A whole minute on the epoch, so fixed windows of a minute start here.
const MINUTE_START = 1_700_000_040_000;

/** An app with `r` app-wide and `r.policy('billing')` on everything under /billing. */
function nestedApp(kind: AppKind, r: ResilienceMiddleware): App {
  const ok = (_req: IncomingMessage, res: ServerResponse): void => json(res, 200, { ok: true });
  if (kind === 'connect') {
    const app = connect();
    app.use(r);
    app.use('/billing', r.policy('billing'));
    app.use('/billing', ok);
    return app as unknown as App;
  }
  const express = (kind === 'express5' ? express5 : express4) as unknown as typeof express5;
  const app = express();
  app.use(r);
  const billing = express.Router();
  billing.use(r.policy('billing'));
  billing.get('/invoice', ok);
  app.use('/billing', billing);
  return app as unknown as App;
}

for (const kind of APP_KINDS) {
  describe(`RateLimit headers on ${kind}`, () => {
    let r: ResilienceMiddleware | undefined;
    let clock: ReturnType<typeof FakeTimers.install> | undefined;

    beforeEach(() => {
      clock = FakeTimers.install({ now: MINUTE_START + 15_000, toFake: ['Date'] });
    });

    afterEach(async () => {
      clock?.uninstall();
      clock = undefined;
      await r?.close();
      r = undefined;
    });

    function limitedApp(rateLimit: Record<string, unknown>, legacyHeaders = false): App {
      r = resilience({
        middleware: {
          routes: [
            {
              name: 'limited',
              match: '/limited',
              rateLimit: { enabled: true, window: '1m', legacyHeaders, ...rateLimit },
            },
          ],
        },
      });
      return makeApp(kind, r, { '/limited': (_req, res) => json(res, 200, { ok: true }) });
    }

    it('GCRA: t is the time until the next request is allowed, equal to Retry-After on a 429', async () => {
      const app = limitedApp({ limit: 2 });
      const first = await request(app).get('/limited').expect(200);
      assert.equal(first.headers['ratelimit-policy'], '"limited";q=2;w=60');
      assert.equal(first.headers['ratelimit'], '"limited";r=1;t=30');
      const second = await request(app).get('/limited').expect(200);
      assert.equal(second.headers['ratelimit'], '"limited";r=0;t=30');
      const denied = await request(app).get('/limited').expect(429);
      assert.equal(denied.headers['retry-after'], '30');
      assert.equal(denied.headers['ratelimit'], '"limited";r=0;t=30');
      clock!.tick(10_000);
      const later = await request(app).get('/limited').expect(429);
      assert.equal(later.headers['retry-after'], '20');
      assert.equal(later.headers['ratelimit'], '"limited";r=0;t=20');
      clock!.tick(20_000);
      const again = await request(app).get('/limited').expect(200);
      assert.equal(again.headers['ratelimit'], '"limited";r=0;t=30');
    });

    it('GCRA with a burst: advertises the sustained rate, and the burst as a second policy', async () => {
      const app = limitedApp({ limit: 2, burst: 1 });
      const first = await request(app).get('/limited').expect(200);
      // Pacing to either item never meets a 429: 2 per 60 s, or 3 at once then 3 per 90 s.
      assert.equal(
        first.headers['ratelimit-policy'],
        '"limited";q=2;w=60, "limited-burst";q=3;w=90',
      );
      assert.equal(first.headers['ratelimit'], '"limited";r=2;t=30, "limited-burst";r=2;t=30');
      await request(app).get('/limited').expect(200);
      const third = await request(app).get('/limited').expect(200);
      assert.equal(third.headers['ratelimit'], '"limited";r=0;t=30, "limited-burst";r=0;t=30');
      const denied = await request(app).get('/limited').expect(429);
      assert.equal(denied.headers['retry-after'], '30');
      assert.equal(denied.headers['ratelimit'], '"limited";r=0;t=30, "limited-burst";r=0;t=30');
    });

    it('fixed window: t is the time until the window ends, equal to Retry-After on a 429', async () => {
      const app = limitedApp({ algorithm: 'fixed-window', limit: 2 });
      const first = await request(app).get('/limited').expect(200);
      assert.equal(first.headers['ratelimit-policy'], '"limited";q=2;w=60');
      assert.equal(first.headers['ratelimit'], '"limited";r=1;t=45');
      await request(app).get('/limited').expect(200);
      const denied = await request(app).get('/limited').expect(429);
      assert.equal(denied.headers['retry-after'], '45');
      assert.equal(denied.headers['ratelimit'], '"limited";r=0;t=45');
    });

    it('lists both the app-wide and the r.policy() limit; legacy headers show the stricter', async () => {
      r = resilience({
        middleware: {
          routes: [
            {
              name: 'api',
              match: '/billing/*',
              rateLimit: { enabled: true, limit: 6, window: '1m', legacyHeaders: true },
            },
          ],
          policies: {
            billing: {
              rateLimit: { enabled: true, limit: 1, window: '1m', legacyHeaders: true },
            },
          },
        },
      });
      const app = nestedApp(kind, r);
      const first = await request(app).get('/billing/invoice').expect(200);
      assert.equal(first.headers['ratelimit-policy'], '"api";q=6;w=60, "billing";q=1;w=60');
      assert.equal(first.headers['ratelimit'], '"api";r=5;t=10, "billing";r=0;t=60');
      assert.equal(first.headers['x-ratelimit-limit'], '1');
      assert.equal(first.headers['x-ratelimit-remaining'], '0');
      assert.equal(first.headers['x-ratelimit-reset'], String((MINUTE_START + 75_000) / 1000));
      const denied = await request(app).get('/billing/invoice').expect(429);
      assert.equal(denied.headers['retry-after'], '60');
      assert.equal(denied.headers['ratelimit'], '"api";r=4;t=10, "billing";r=0;t=60');
      assert.equal(denied.headers['x-ratelimit-limit'], '1');
      assert.equal(denied.headers['x-ratelimit-remaining'], '0');
    });
  });
}
