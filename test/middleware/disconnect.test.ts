import assert from 'node:assert/strict';
import http from 'node:http';
import request from 'supertest';
import { resilience, type ResilienceMiddleware } from '../../lib/index.js';
import { APP_KINDS, json, listen, makeApp } from '../helpers/apps.js';
import { deferred, until } from '../helpers/deferred.js';
import { metricValue } from '../helpers/metrics.js';

describe('client disconnect and the bulkhead', () => {
  let r: ResilienceMiddleware | undefined;
  const servers: { close(): Promise<void> }[] = [];

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await r?.close();
    r = undefined;
  });

  const active = () =>
    metricValue(r!.metrics.registry, 'resilience_bulkhead_active', { route: 'default' });

  for (const kind of APP_KINDS) {
    describe(kind, () => {
      const serve = async (timeout: boolean, slow: (res: http.ServerResponse) => void) => {
        r = resilience({
          middleware: {
            defaults: {
              timeout: { enabled: timeout, duration: '30s' },
              bulkhead: { maxConcurrent: 1, maxQueue: 0, releaseGrace: '30s' },
            },
          },
          metrics: { defaultMetrics: false },
        });
        const server = await listen(
          makeApp(kind, r, {
            '/slow': (_req, res) => slow(res),
            '/ok': (_req, res) => json(res, 200, { ok: true }),
          }),
        );
        servers.push(server);
        return server;
      };

      /** Opens /slow on a socket of its own, waits for the handler, then drops the socket. */
      const disconnectMidRequest = async (
        url: string,
        entered: Promise<AbortSignal>,
      ): Promise<AbortSignal> => {
        const req = http.get(`${url}/slow`);
        req.on('error', () => undefined);
        const signal = await entered;
        req.destroy();
        await until(() => signal.aborted, 'abort on disconnect');
        return signal;
      };

      for (const timeout of [true, false]) {
        it(`frees the slot when the handler ends its response from its abort listener (timeout ${timeout ? 'on' : 'off'})`, async () => {
          const entered = deferred<AbortSignal>();
          const server = await serve(timeout, (res) => {
            const req = res.req as http.IncomingMessage;
            const signal = req.resilience!.signal;
            signal.addEventListener('abort', () => res.end());
            entered.resolve(signal);
          });
          const signal = await disconnectMidRequest(server.url, entered.promise);
          assert.equal((signal.reason as { code?: string }).code, 'ERR_CLIENT_DISCONNECTED');
          assert.equal(await active(), 0);
          assert.equal((await request(server.url).get('/ok')).status, 200);
        });
      }
    });
  }
});
