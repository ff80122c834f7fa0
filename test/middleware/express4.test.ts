import assert from 'node:assert/strict';
import express4 from 'express4';
import request from 'supertest';
import { resilience, type ResilienceMiddleware } from '../../lib/index.js';

describe('Express 4 specifics', () => {
  let r: ResilienceMiddleware | undefined;
  afterEach(async () => {
    await r?.close();
    r = undefined;
  });

  const app = (options?: Parameters<typeof resilience>[1]) => {
    r = resilience({ middleware: { defaults: { timeout: { duration: '5s' } } } }, options);
    const a = express4();
    a.use(r);
    a.get('/async-throw', async () => {
      throw new Error('async boom');
    });
    a.get('/async-ok', async (_req, res) => {
      res.json({ ok: true });
    });
    a.use(async (_req: unknown, _res: unknown, next: (err?: unknown) => void) => {
      next(new Error('fell through'));
    });
    a.use((err: Error, _req: unknown, res: express4.Response, _next: unknown) => {
      res.status(500).json({ error: err.message });
    });
    return a;
  };

  it('forwards rejected promises of async handlers to next(err)', async () => {
    const res = await request(app()).get('/async-throw').expect(500);
    assert.deepEqual(res.body, { error: 'async boom' });
    await request(app()).get('/async-ok').expect(200, { ok: true });
  });

  describe('per app, with two apps on one copy of Express 4', () => {
    const instances: ResilienceMiddleware[] = [];
    afterEach(async () => {
      await Promise.all(instances.splice(0).map((i) => i.close()));
    });

    /**
     * An app whose handler returns a rejecting thenable (not a promise: an ignored one would
     * be an unhandled rejection) and answers 200 a turn later unless the rejection reached the
     * error handler first.
     */
    const appWith = (options: Parameters<typeof resilience>[1] | null) => {
      const a = express4();
      if (options !== null) {
        const instance = resilience({}, options);
        instances.push(instance);
        a.use(instance);
      }
      a.get('/reject', (_req, res) => {
        setImmediate(() => {
          if (!res.headersSent) res.json({ forwarded: false });
        });
        return { then: (_ok: unknown, fail: (err: Error) => void) => fail(new Error('boom')) };
      });
      a.use((err: Error, _req: unknown, res: express4.Response, _next: unknown) => {
        res.status(500).json({ forwarded: err.message });
      });
      return a;
    };

    it('leaves an app with express4AsyncErrors: false and an app without the pack unchanged', async () => {
      const patched = appWith({});
      const optedOut = appWith({ express4AsyncErrors: false });
      const plain = appWith(null);
      await request(patched).get('/reject').expect(500, { forwarded: 'boom' });
      await request(optedOut).get('/reject').expect(200, { forwarded: false });
      await request(plain).get('/reject').expect(200, { forwarded: false });
      // The opted-in app still forwards after the others ran.
      await request(patched).get('/reject').expect(500, { forwarded: 'boom' });
    });
  });
});
