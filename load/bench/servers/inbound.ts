// One inbound stack, in its own process: `node --import tsx inbound.ts <bare|pack|peers>`.
// Every stack answers GET /hello with the same small JSON body; only what runs before the
// handler differs. Prints "listening on <url>" once it accepts connections.
import { bulkhead as cockatielBulkhead } from 'cockatiel';
import timeout from 'connect-timeout';
import express from 'express';
import promBundle from 'express-prom-bundle';
import { rateLimit } from 'express-rate-limit';
import CircuitBreaker from 'opossum';
import type { NextFunction, Request, Response } from 'express';
import { loadPack } from '../pack.js';

const stack = process.argv[2];
// Optional JSON overriding parts of the pack's config, to find what costs what:
// '{"defaults":{"timeout":{"enabled":false}},"metrics":{"enabled":false}}'.
const variant = JSON.parse(process.argv[3] ?? '{}') as {
  defaults?: Record<string, object>;
  metrics?: Record<string, unknown>;
};
const app = express();
let close = async (): Promise<void> => {};

if (stack === 'pack') {
  const { resilience } = await loadPack();
  // Every policy on: a GCRA limit that never rejects (in memory), breaker, bulkhead, timeout
  // and metrics (on by default).
  const r = resilience({
    middleware: {
      defaults: {
        rateLimit: { enabled: true, algorithm: 'gcra', limit: 1_000_000, window: '1s' },
        breaker: { enabled: true },
        bulkhead: { enabled: true, maxConcurrent: 100, maxQueue: 200 },
        timeout: { enabled: true, duration: '5s' },
        ...variant.defaults,
      },
    },
    metrics: { enabled: true, ...variant.metrics },
  });
  app.use(r);
  close = () => r.close();
} else if (stack === 'peers') {
  // The same policies from the usual separate packages, wired the way their READMEs show.
  app.use(promBundle({ includeMethod: true, includePath: true, includeStatusCode: true }));
  app.use(
    rateLimit({
      windowMs: 1000,
      limit: 1_000_000_000,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
    }),
  );
  app.use(timeout('5s'));
  const bulkhead = cockatielBulkhead(100, 200);
  const breaker = new CircuitBreaker(
    (_req: Request, res: Response, next: NextFunction) =>
      new Promise<number>((resolve, reject) => {
        res.once('close', () =>
          res.statusCode >= 500
            ? reject(new Error(`status ${res.statusCode}`))
            : resolve(res.statusCode),
        );
        next();
      }),
    { timeout: false, errorThresholdPercentage: 50, resetTimeout: 10_000, volumeThreshold: 20 },
  );
  app.use((req: Request, res: Response, next: NextFunction) => {
    bulkhead
      .execute(() => breaker.fire(req, res, next))
      .catch(() => {
        if (!res.headersSent) res.status(503).end();
      });
  });
  close = async () => breaker.shutdown();
} else if (stack === 'noop') {
  app.use((_req, _res, next) => next());
} else if (stack !== 'bare') {
  console.error(`unknown stack ${stack ?? '(none)'}: bare, pack or peers`);
  process.exit(2);
}

app.get('/hello', (_req, res) => {
  res.json({ hello: 'world' });
});

const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  console.log(`inbound ${stack} listening on http://127.0.0.1:${port}`);
});
// A normal exit, so --cpu-prof writes its profile.
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close();
  void close().finally(() => process.exit(0));
});
