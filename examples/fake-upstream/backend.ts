import type { Backend, Reply, RequestRecord } from './upstream.js';

/** An order as the fake upstream stores it. */
export interface Order {
  id: number;
  customerId: string;
  items: { sku: string; quantity: number; price: number }[];
  total: number;
  status: 'pending' | 'paid' | 'shipped';
  createdAt: string;
}

/** Options of {@link createBackend}. */
export interface BackendOptions {
  /** Orders created at start-up; default 50. */
  seedOrders?: number;
  /** Most orders kept (the oldest are dropped), so long load runs stay bounded; default 10 000. */
  maxOrders?: number;
  /** Random source in [0, 1); default `Math.random`. */
  random?: () => number;
  /** Clock (epoch milliseconds); default `Date.now`. */
  now?: () => number;
}

const SKUS = ['apple', 'bread', 'cheese', 'dates', 'eggs', 'flour', 'grapes', 'honey'];
const STATUSES: Order['status'][] = ['pending', 'paid', 'shipped'];
const MAX_PAGE = 100;

const json = (status: number, body: unknown): Reply => ({ status, body });
const notFound = (what: string): Reply => json(404, { error: `${what} not found` });

/**
 * The fake upstream's application, a small orders service: the example service's "external"
 * dependency. In memory, bounded, and fast: every delay or failure comes from the upstream's
 * behaviours, never from here.
 *
 * - `GET /healthz` → `{ status: "ok" }`
 * - `GET /orders?offset&limit&customerId` → `{ orders, total, offset, limit }`, newest first
 * - `GET /orders/:id` → the order, or 404
 * - `POST /orders` `{ customerId, items: [{ sku, quantity, price }] }` → 201 and the order, or 400
 * - `GET /quotes/:symbol` → `{ symbol, price, currency, at }` (a random walk per symbol)
 * - `GET /inventory/:sku` → `{ sku, available, warehouse }`
 */
export function createBackend(options: BackendOptions = {}): Backend {
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const maxOrders = options.maxOrders ?? 10_000;
  const orders = new Map<number, Order>();
  // Oldest first, for listing newest first without copying; trimmed in batches.
  const ordered: Order[] = [];
  const quotes = new Map<string, number>();
  let nextId = 1;

  const add = (customerId: string, items: Order['items'], status: Order['status']): Order => {
    const total = Math.round(items.reduce((sum, i) => sum + i.quantity * i.price, 0) * 100) / 100;
    const order: Order = {
      id: nextId++,
      customerId,
      items,
      total,
      status,
      createdAt: new Date(now()).toISOString(),
    };
    orders.set(order.id, order);
    ordered.push(order);
    if (ordered.length > maxOrders + Math.ceil(maxOrders / 10)) {
      for (const old of ordered.splice(0, ordered.length - maxOrders)) orders.delete(old.id);
    }
    return order;
  };

  for (let i = 0; i < (options.seedOrders ?? 50); i++) {
    const sku = SKUS[i % SKUS.length]!;
    add(
      `customer-${(i % 10) + 1}`,
      [{ sku, quantity: (i % 3) + 1, price: 2.5 + (i % 7) }],
      STATUSES[i % 3]!,
    );
  }

  const list = (query: RequestRecord['query']): Reply => {
    const offset = clampInt(query.offset, 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = clampInt(query.limit, 20, 1, MAX_PAGE);
    const customerId = typeof query.customerId === 'string' ? query.customerId : undefined;
    const page: Order[] = [];
    let total = 0;
    for (let i = ordered.length - 1; i >= 0; i--) {
      const order = ordered[i]!;
      if (customerId !== undefined && order.customerId !== customerId) continue;
      if (total >= offset && page.length < limit) page.push(order);
      total++;
      // Without a filter the total is known; no need to walk the rest.
      if (customerId === undefined && page.length === limit) {
        total = ordered.length;
        break;
      }
    }
    return json(200, { orders: page, total, offset, limit });
  };

  const create = (body: string | undefined): Reply => {
    let input: unknown;
    try {
      input = JSON.parse(body ?? '');
    } catch {
      return json(400, { error: 'the body must be JSON' });
    }
    const problem = validateOrder(input);
    if (problem !== undefined) return json(400, { error: problem });
    const { customerId, items } = input as Pick<Order, 'customerId' | 'items'>;
    const order = add(
      customerId,
      items.map((i) => ({ sku: i.sku, quantity: i.quantity, price: i.price })),
      'pending',
    );
    return { status: 201, body: order, headers: { location: `/orders/${order.id}` } };
  };

  const quote = (symbol: string): Reply => {
    const last = quotes.get(symbol) ?? 50 + random() * 100;
    const price = Math.max(1, last * (1 + (random() - 0.5) / 50));
    quotes.set(symbol, price);
    if (quotes.size > 1000) quotes.delete(quotes.keys().next().value as string);
    return json(200, {
      symbol,
      price: Math.round(price * 100) / 100,
      currency: 'EUR',
      at: new Date(now()).toISOString(),
    });
  };

  return (request) => {
    const { method, path } = request;
    const parts = path.split('/').filter((p) => p !== '');
    if (path === '/healthz') return json(200, { status: 'ok' });
    if (parts[0] === 'orders' && parts.length === 1) {
      if (method === 'GET') return list(request.query);
      if (method === 'POST') return create(request.body);
      return json(405, { error: `${method} not allowed` });
    }
    if (parts[0] === 'orders' && parts.length === 2 && method === 'GET') {
      const order = orders.get(Number(parts[1]));
      return order === undefined ? notFound(`order ${parts[1]}`) : json(200, order);
    }
    if (parts[0] === 'quotes' && parts.length === 2 && method === 'GET') return quote(parts[1]!);
    if (parts[0] === 'inventory' && parts.length === 2 && method === 'GET') {
      const sku = parts[1]!;
      const available = [...sku].reduce((sum, c) => sum + c.charCodeAt(0), 0) % 97;
      return json(200, { sku, available, warehouse: available % 2 === 0 ? 'north' : 'south' });
    }
    return notFound(`${method} ${path}`);
  };
}

function clampInt(raw: unknown, fallback: number, min: number, max: number): number {
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : fallback;
  return Math.min(max, Math.max(min, n));
}

/** Why an order body is invalid, or undefined when it is fine. */
export function validateOrder(input: unknown): string | undefined {
  if (typeof input !== 'object' || input === null) return 'the order must be an object';
  const { customerId, items } = input as Record<string, unknown>;
  if (typeof customerId !== 'string' || customerId.length === 0 || customerId.length > 64) {
    return 'customerId must be a non-empty string of at most 64 characters';
  }
  if (!Array.isArray(items) || items.length === 0 || items.length > 50) {
    return 'items must be a list of 1 to 50 items';
  }
  for (const [i, item] of items.entries()) {
    const { sku, quantity, price } = (item ?? {}) as Record<string, unknown>;
    if (typeof sku !== 'string' || sku.length === 0) return `items[${i}].sku must be a string`;
    if (!Number.isInteger(quantity) || (quantity as number) < 1 || (quantity as number) > 1000) {
      return `items[${i}].quantity must be an integer from 1 to 1000`;
    }
    if (typeof price !== 'number' || !(price >= 0) || price > 1e6) {
      return `items[${i}].price must be a number from 0 to 1000000`;
    }
  }
  return undefined;
}
