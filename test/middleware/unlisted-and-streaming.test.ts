import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import FakeTimers from '@sinonjs/fake-timers';
import request from 'supertest';
import { resilience, type ResilienceMiddleware } from '../../lib/index.js';
import type { ResilienceConfigInput } from '../../lib/config/types.js';
import { APP_KINDS, json, listen, makeApp } from '../helpers/apps.js';
import { deferred, type Deferred } from '../helpers/deferred.js';

describe('breakers: unlisted routes and long-lived responses', () => {
  let r: ResilienceMiddleware | undefined;
  let clock: ReturnType<typeof FakeTimers.install> | undefined;
  const servers: { close(): Promise<void> }[] = [];

  afterEach(async () => {
    clock?.uninstall();
    clock = undefined;
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await r?.close();
    r = undefined;
  });

  const create = (config: ResilienceConfigInput): ResilienceMiddleware => {
    r = resilience({ ...config, metrics: { defaultMetrics: false } });
    return r;
  };

  for (const kind of APP_KINDS) {
    describe(kind, () => {
      it('gives unlisted routes no shared breaker: one failing route never turns the others away', async () => {
        const mw = create({
          middleware: { defaults: { breaker: { window: { type: 'consecutive', size: 1 } } } },
        });
        const app = makeApp(kind, mw, {
          '/fail': (_req, res) => json(res, 500, {}),
          '/ok': (_req, res) => json(res, 200, {}),
        });
        for (let i = 0; i < 3; i++) await request(app).get('/fail').expect(500);
        await request(app).get('/ok').expect(200);
      });

      it('judges a streaming response when its headers go out: a long healthy stream is neither slow nor failed', async () => {
        clock = FakeTimers.install({ toFake: ['Date'] });
        const mw = create({
          middleware: {
            defaults: { timeout: { duration: '1h' } },
            routes: [
              {
                name: 'events',
                match: '/events',
                // Two slow calls out of two would open it.
                breaker: {
                  window: { type: 'count', size: 2 },
                  minimumCalls: 2,
                  slowCall: { duration: '1s', rate: 100 },
                },
              },
            ],
          },
        });
        let streams: Deferred<() => void> = deferred();
        const server = await listen(
          makeApp(kind, mw, {
            '/events': (_req, res: ServerResponse) => {
              res.writeHead(200, { 'content-type': 'text/event-stream' });
              res.write('data: hello\n\n');
              streams.resolve(() => res.end('data: bye\n\n'));
            },
          }),
        );
        servers.push(server);
        const stream = async (minutes: number): Promise<number> => {
          streams = deferred();
          const answer = request(server.url)
            .get('/events')
            .buffer(true)
            .then((res) => res.status);
          const end = await streams.promise;
          // The stream stays open (on the breaker's clock) before it ends.
          clock!.tick(minutes * 60_000);
          end();
          return answer;
        };
        assert.equal(await stream(1), 200);
        assert.equal(await stream(1), 200);
        assert.equal(await stream(0), 200, 'the breaker stayed closed');
      });

      it('still counts a stream that starts with a failure status as a failure', async () => {
        const mw = create({
          middleware: {
            routes: [
              {
                name: 'events',
                match: '/events',
                breaker: { window: { type: 'consecutive', size: 1 } },
              },
            ],
          },
        });
        const app = makeApp(kind, mw, {
          '/events': (_req, res) => {
            res.writeHead(503, { 'content-type': 'text/event-stream' });
            res.end('data: down\n\n');
          },
        });
        await request(app).get('/events').expect(503);
        const refused = await request(app).get('/events').expect(503);
        assert.equal(refused.body.code, 'ERR_BREAKER_OPEN');
      });
    });
  }
});
