import assert from 'node:assert/strict';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import connect from 'connect';
import express5 from 'express';
import express4 from 'express4';
import {
  resilience,
  type ResilienceConfigInput,
  type ResilienceMiddleware,
} from '../../lib/index.js';
import { APP_KINDS, json, listen, type AppKind } from '../helpers/apps.js';
import { rawRequest } from '../helpers/raw-http.js';

type Next = (err?: unknown) => void;
type Handler = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

/**
 * A real app of `kind` routing `paths` the framework's own way (Express `app.all`, Connect
 * `app.use` mounts), so the pack's matching is checked against real dispatch.
 */
function routedApp(
  kind: AppKind,
  r: ResilienceMiddleware,
  paths: readonly string[],
  settings: Record<string, unknown> = {},
): RequestListener {
  const handler: Handler = (req, res) => json(res, 200, { url: req.url });
  if (kind === 'connect') {
    const app = connect();
    app.use(r as connect.NextHandleFunction);
    for (const p of paths) app.use(p, handler as connect.NextHandleFunction);
    return app as unknown as RequestListener;
  }
  const app = (kind === 'express5' ? express5 : express4)() as unknown as {
    set(key: string, value: unknown): void;
    use(fn: unknown): void;
    all(path: string, fn: Handler): void;
  };
  for (const [key, value] of Object.entries(settings)) app.set(key, value);
  app.use(r);
  for (const p of paths) app.all(p, handler);
  return app as unknown as RequestListener;
}

/** Targets that every framework dispatches to `/limited`, or that some reading reads so. */
const LIMITED_TARGETS = [
  '/limited',
  '/LIMITED',
  '/Limited',
  '/limited/',
  '/limited?x=1',
  '/limited#f',
  '/limited?x=1#f',
  'http://x/limited',
  'http://x/LIMITED?y',
  'http://x/limited#f',
  '/%6Cimited',
  '/%6cimited',
  '//limited',
  '/./limited',
  '/x/../limited',
  '/%2e%2e/limited',
  '/%2E/limited',
  '/limited/.',
  '/%252e%252e/limited',
];

const limitedConfig = (extra: ResilienceConfigInput['middleware'] = {}): ResilienceConfigInput => ({
  middleware: {
    routes: [
      {
        name: 'limited',
        match: 'GET /limited',
        rateLimit: { enabled: true, limit: 1, window: '1m', headers: true },
      },
    ],
    ...extra,
  },
});

describe('route policies and the request target', () => {
  let r: ResilienceMiddleware | undefined;
  const servers: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await r?.close();
    r = undefined;
  });
  const serve = async (app: RequestListener) => {
    const s = await listen(app);
    servers.push(s);
    return s.url;
  };

  for (const kind of APP_KINDS) {
    describe(kind, () => {
      for (const target of LIMITED_TARGETS) {
        it(`applies the /limited route's policies to GET ${target}`, async () => {
          r = resilience(limitedConfig());
          const url = await serve(routedApp(kind, r, ['/limited']));
          assert.equal((await rawRequest(url, 'GET', '/limited')).status, 200);
          const res = await rawRequest(url, 'GET', target);
          assert.equal(res.status, 429, `GET ${target}: ${res.status} ${res.body}`);
        });
      }

      it('applies a GET route to HEAD, which the app answers with the GET handler', async () => {
        r = resilience(limitedConfig());
        const url = await serve(routedApp(kind, r, ['/limited']));
        assert.equal((await rawRequest(url, 'HEAD', '/limited')).status, 200);
        assert.equal((await rawRequest(url, 'HEAD', '/limited')).status, 429);
      });

      it('excludes a path only when every reading of it is excluded', async () => {
        r = resilience(
          limitedConfig({
            exclude: ['/skip'],
            defaults: { rateLimit: { enabled: true, limit: 1, window: '1m' } },
          }),
        );
        const url = await serve(routedApp(kind, r, ['/skip']));
        for (const target of ['/skip', '/SKIP', 'http://x/skip', '/skip#f']) {
          assert.equal((await rawRequest(url, 'GET', target)).status, 200, target);
        }
        // Read as written, this is not /skip: the default limit applies.
        await rawRequest(url, 'GET', '/a/../skip');
        assert.equal((await rawRequest(url, 'GET', '/a/../skip')).status, 429);
      });

      it('answers /metrics and /healthz under the spellings the app routes there', async () => {
        r = resilience(limitedConfig());
        const url = await serve(routedApp(kind, r, []));
        for (const target of [
          '/metrics',
          '/METRICS',
          '/metrics/',
          'http://x/metrics?x',
          '/metrics#f',
        ]) {
          const res = await rawRequest(url, 'GET', target);
          assert.equal(res.status, 200, target);
          assert.match(res.headers['content-type'] ?? '', /^text\/plain/, target);
        }
        assert.equal((await rawRequest(url, 'GET', '/Healthz/')).status, 200);
      });
    });
  }

  describe('Connect mounts', () => {
    for (const target of ['/limited/sub', '/LIMITED/sub', '/limited.json']) {
      it(`applies the /limited route to GET ${target}, which Connect dispatches to it`, async () => {
        r = resilience(limitedConfig());
        const url = await serve(routedApp('connect', r, ['/limited']));
        assert.equal((await rawRequest(url, 'GET', '/limited')).status, 200);
        assert.equal((await rawRequest(url, 'GET', target)).status, 429);
      });
    }
  });

  describe("Express's routing settings", () => {
    for (const kind of ['express5', 'express4'] as const) {
      it(`${kind}: honours case sensitive and strict routing`, async () => {
        r = resilience(limitedConfig());
        const url = await serve(
          routedApp(kind, r, ['/limited'], {
            'case sensitive routing': true,
            'strict routing': true,
          }),
        );
        // Neither spelling reaches the /limited handler: no quota is taken.
        assert.equal((await rawRequest(url, 'GET', '/LIMITED')).status, 404);
        assert.equal((await rawRequest(url, 'GET', '/limited/')).status, 404);
        assert.equal((await rawRequest(url, 'GET', '/limited')).status, 200);
        assert.equal((await rawRequest(url, 'GET', '/limited')).status, 429);
      });
    }
  });
});
