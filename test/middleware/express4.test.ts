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
});
