import { pbkdf2 } from 'node:crypto';
import { promisify } from 'node:util';
import express from 'express';
import type { Request, Router } from 'express';
import { UpstreamError } from 'express-resilience';
import type { HttpRequestOptions, HttpResponse, RequestResilience } from 'express-resilience';
import type { Cache } from './cache.js';
import { BadRequestError } from './errors.js';

const derive = promisify(pbkdf2);

/** The request's resilience context; every /api route runs behind the middleware. */
export function ctx(req: Request): RequestResilience {
  if (req.resilience === undefined) throw new Error('the resilience middleware is not mounted');
  return req.resilience;
}

/**
 * A call to the orders backend through the `upstream` HTTP resource: pooled, retried when
 * idempotent, behind the resource's breaker, and never longer than the request's remaining
 * deadline. A final 5xx answer becomes an UpstreamError (a 502, and a failure for the route's
 * breaker); other answers are returned as they are.
 */
export async function callUpstream(
  req: Request,
  options: HttpRequestOptions,
  resource = 'upstream',
): Promise<HttpResponse> {
  const answer = await ctx(req).resources.http(resource).request(options);
  if (answer.statusCode >= 500) {
    throw new UpstreamError(`${resource} answered ${answer.statusCode}`, {
      statusCode: answer.statusCode,
    });
  }
  return answer;
}

function pageParam(raw: unknown, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d{1,6}$/.test(raw) || Number(raw) > max) {
    throw new BadRequestError(`expected an integer from 0 to ${max}, got ${String(raw)}`);
  }
  return Number(raw);
}

interface OrderInput {
  customerId: string;
  items: { sku: string; quantity: number; price: number }[];
}

/** The order a client may send; anything else is a 400 before the upstream is bothered. */
function orderInput(body: unknown): OrderInput {
  const input = (body ?? {}) as Partial<OrderInput>;
  if (typeof input.customerId !== 'string' || input.customerId === '') {
    throw new BadRequestError('customerId must be a non-empty string');
  }
  if (!Array.isArray(input.items) || input.items.length === 0 || input.items.length > 50) {
    throw new BadRequestError('items must be a list of 1 to 50 items');
  }
  const items = input.items.map((item, i) => {
    const { sku, quantity, price } = (item ?? {}) as Partial<OrderInput['items'][number]>;
    if (typeof sku !== 'string' || sku === '')
      throw new BadRequestError(`items[${i}].sku is missing`);
    if (!Number.isInteger(quantity) || quantity! < 1 || quantity! > 1000) {
      throw new BadRequestError(`items[${i}].quantity must be an integer from 1 to 1000`);
    }
    if (typeof price !== 'number' || !(price >= 0)) {
      throw new BadRequestError(`items[${i}].price must be a number >= 0`);
    }
    return { sku, quantity: quantity!, price };
  });
  return { customerId: input.customerId, items };
}

/**
 * The orders API, mounted at /api/orders: list, view (cache-aside in Redis when there is one)
 * and create, each through the `upstream` resource.
 */
export function ordersRouter(cache: Cache): Router {
  const router = express.Router();

  router.get('/', async (req, res) => {
    const offset = pageParam(req.query.offset, 0, 100_000);
    const limit = pageParam(req.query.limit, 20, 100);
    const key = `orders:list:${offset}:${limit}`;
    const cached = await cache.get(ctx(req), key);
    if (cached !== undefined) {
      res.type('json').setHeader('x-cache', 'hit').send(cached);
      return;
    }
    const answer = await callUpstream(req, { path: '/orders', query: { offset, limit } });
    cache.set(ctx(req), key, answer.text(), 2);
    res
      .status(answer.statusCode)
      .type('json')
      .setHeader('x-cache', cache.enabled ? 'miss' : 'off');
    res.send(answer.text());
  });

  router.get('/:id', async (req, res) => {
    const id = req.params.id;
    if (!/^\d{1,12}$/.test(id)) throw new BadRequestError(`order id must be a number, got ${id}`);
    const key = `order:${id}`;
    const cached = await cache.get(ctx(req), key);
    if (cached !== undefined) {
      res.type('json').setHeader('x-cache', 'hit').send(cached);
      return;
    }
    const answer = await callUpstream(req, { path: `/orders/${id}` });
    if (answer.statusCode === 200) cache.set(ctx(req), key, answer.text(), 30);
    res
      .status(answer.statusCode)
      .type('json')
      .setHeader('x-cache', cache.enabled ? 'miss' : 'off');
    res.send(answer.text());
  });

  router.post('/', async (req, res) => {
    const order = orderInput(req.body);
    // Not idempotent: never retried (the upstream would create the order twice).
    const answer = await callUpstream(req, { method: 'POST', path: '/orders', body: order });
    if (answer.statusCode === 201) {
      const created = answer.json<{ id: number }>();
      res.setHeader('location', `/api/orders/${created.id}`);
    }
    res.status(answer.statusCode).type('json').send(answer.text());
  });

  return router;
}

/**
 * GET /api/reports/orders: the last 100 orders summed per status, signed with a deliberately
 * expensive key derivation (CPU work on the libuv pool) — the slow route its tight bulkhead
 * keeps from starving the others.
 */
export async function ordersReport(req: Request): Promise<unknown> {
  const answer = await callUpstream(req, { path: '/orders', query: { limit: 100 } });
  const { orders } = answer.json<{ orders: { status: string; total: number }[] }>();
  const byStatus: Record<string, { count: number; total: number }> = {};
  for (const order of orders) {
    const entry = (byStatus[order.status] ??= { count: 0, total: 0 });
    entry.count++;
    entry.total = Math.round((entry.total + order.total) * 100) / 100;
  }
  const summary = JSON.stringify(byStatus);
  const signature = (await derive(summary, 'report', 100_000, 32, 'sha256')).toString('hex');
  return { orders: orders.length, byStatus, signature };
}
