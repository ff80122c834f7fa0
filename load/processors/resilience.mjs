// The Artillery processor shared by every scenario in load/scenarios (plain ESM: Artillery
// imports .mjs processors as they are). It makes the virtual users realistic (a client id, a
// customer, varied orders, orders picked from what the list returned) and turns each response
// into the counters the scenarios' `ensure` checks read:
//
//   rejections.<code>, rejection_ms.<code>   problem+json rejections by code (ERR_RATE_LIMITED,
//                                            ERR_BREAKER_OPEN, ...) and their latency
//   phase.<p>.{total,ok,breaker_open}        around an upstream fault schedule captured in the
//                                            scenario's `before` (faultStartsAt, faultEndsAt):
//                                            p = before | during | recovering | after
//   window.<w>.{total,ok}, window_ms.<w>     in named time windows of the run (LOAD_TIMELINE,
//                                            which the runner sets from the scenario's phases):
//                                            requests, those that were ok, and their latency
//   group.<g>.{total,ok,limited}             per user group ("group" var, e.g. polite/greedy)
//
// "ok" means the request got what it asked for: a status below 400, or a 404 for an order that
// does not exist. Counters that an ensure expression reads are created at 0 up front: Artillery
// leaves a counter that never moved out of its report, and an expression naming a missing one
// fails.

const SKUS = ['apple', 'bread', 'cheese', 'dates', 'eggs', 'flour', 'grapes', 'honey'];
const SYMBOLS = ['ACME', 'GLOBX', 'INITEC', 'UMBR', 'WAYNE', 'STARK', 'OSCP', 'TYRL'];
const PHASES = ['before', 'during', 'recovering', 'after'];

const pick = (list) => list[Math.floor(Math.random() * list.length)];
const int = (min, max) => min + Math.floor(Math.random() * (max - min + 1));

// The first virtual user's start in this worker: time zero of the LOAD_TIMELINE windows.
let startedAt;

/** A varied order: one to five lines, small quantities, prices with cents. */
export function makeOrder(customerId) {
  const lines = int(1, 5);
  const items = [];
  for (let i = 0; i < lines; i++) {
    items.push({ sku: pick(SKUS), quantity: int(1, 5), price: int(50, 2500) / 100 });
  }
  return { customerId, items };
}

const timelines = new Map();

/** "name:from-to,..." (seconds from the run's start; "to" may be empty) → [{ name, from, to }] in ms. */
export function parseTimeline(text) {
  if (typeof text !== 'string' || text === '') return [];
  let parsed = timelines.get(text);
  if (parsed === undefined) {
    parsed = parseWindows(text);
    timelines.set(text, parsed);
  }
  return parsed;
}

function parseWindows(text) {
  // Run without the runner, the variable is not set: no windows.
  if (text === 'undefined') return [];
  return text.split(',').map((part) => {
    const match = /^\s*([\w-]+):(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?|)\s*$/.exec(part);
    if (match === null) throw new Error(`bad timeline window ${JSON.stringify(part)}`);
    return {
      name: match[1],
      from: Number(match[2]) * 1000,
      to: match[3] === '' ? Infinity : Number(match[3]) * 1000,
    };
  });
}

/** Where `at` falls around a fault schedule, with `recoverWithin` ms allowed to recover. */
export function faultPhase(at, startsAt, endsAt, recoverWithin) {
  if (at < startsAt) return 'before';
  if (at < endsAt) return 'during';
  if (at < endsAt + recoverWithin) return 'recovering';
  return 'after';
}

/** beforeScenario: who this virtual user is, and the counters its checks read. */
export function setUp(context, events, done) {
  startedAt ??= Date.now();
  const vars = context.vars;
  vars.clientId = `client-${Math.random().toString(36).slice(2, 10)}`;
  vars.customerId = `customer-${int(1, 200)}`;
  vars.symbol = pick(SYMBOLS);
  vars.sku = pick(SKUS);
  vars.orderId = int(1, 50); // the upstream's seed orders
  events.emit('counter', 'plugins.expect.failed', 0);
  if (vars.faultStartsAt !== undefined) {
    for (const p of PHASES) {
      for (const c of ['total', 'ok', 'breaker_open']) events.emit('counter', `phase.${p}.${c}`, 0);
    }
  }
  for (const w of parseTimeline(vars.$env?.LOAD_TIMELINE)) {
    events.emit('counter', `window.${w.name}.total`, 0);
    events.emit('counter', `window.${w.name}.ok`, 0);
  }
  done();
}

function joinGroup(group, context, events) {
  context.vars.group = group;
  // One client each: the rate limit keys by x-client-id, so each group is one client's bucket.
  context.vars.clientId = `${group}-client`;
  for (const g of ['polite', 'greedy']) {
    for (const c of ['total', 'ok', 'limited']) events.emit('counter', `group.${g}.${c}`, 0);
  }
}

/** A flow step: this user is the polite client (stays under the rate limit). */
export function politeClient(context, events, done) {
  joinGroup('polite', context, events);
  done();
}

/** A flow step: this user is the greedy client (sends well over the rate limit). */
export function greedyClient(context, events, done) {
  joinGroup('greedy', context, events);
  done();
}

/** beforeRequest: a fresh, varied order as the JSON body. */
export function orderBody(requestParams, context, events, done) {
  requestParams.json = makeOrder(context.vars.customerId);
  done();
}

/** afterResponse of a list: view one of the orders it returned next (or a seed order). */
export function pickOrder(requestParams, response, context, events, done) {
  try {
    const { orders } = JSON.parse(response.body);
    if (Array.isArray(orders) && orders.length > 0) context.vars.orderId = pick(orders).id;
  } catch {
    // not a list (a rejection): keep the seed order id
  }
  done();
}

/** afterResponse of a create: view the order just created next. */
export function rememberOrder(requestParams, response, context, events, done) {
  if (response.statusCode === 201) {
    try {
      context.vars.orderId = JSON.parse(response.body).id;
    } catch {
      // keep the previous id
    }
  }
  done();
}

function problemCode(response) {
  const type = String(response.headers['content-type'] ?? '');
  if (!type.includes('json')) return undefined;
  try {
    const code = JSON.parse(response.body).code;
    return typeof code === 'string' && /^[A-Z_]+$/.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

/** afterResponse (every request): the counters described at the top of this file. */
export function observe(requestParams, response, context, events, done) {
  const now = Date.now();
  const vars = context.vars;
  const status = response.statusCode;
  const ms = response.timings?.phases?.total;
  const ok = status < 400 || status === 404;
  const code = status >= 400 ? problemCode(response) : undefined;
  if (code !== undefined) {
    events.emit('counter', `rejections.${code}`, 1);
    if (typeof ms === 'number') events.emit('histogram', `rejection_ms.${code}`, ms);
  }
  if (vars.faultStartsAt !== undefined) {
    const phase = faultPhase(
      now,
      Number(vars.faultStartsAt),
      Number(vars.faultEndsAt),
      Number(vars.recoverWithin ?? 0) * 1000,
    );
    events.emit('counter', `phase.${phase}.total`, 1);
    if (ok) events.emit('counter', `phase.${phase}.ok`, 1);
    if (code === 'ERR_BREAKER_OPEN') events.emit('counter', `phase.${phase}.breaker_open`, 1);
  }
  for (const w of parseTimeline(vars.$env?.LOAD_TIMELINE)) {
    const at = now - startedAt;
    if (at >= w.from && at < w.to) {
      events.emit('counter', `window.${w.name}.total`, 1);
      if (ok) {
        events.emit('counter', `window.${w.name}.ok`, 1);
        if (typeof ms === 'number') events.emit('histogram', `window_ms.${w.name}`, ms);
      }
    }
  }
  if (typeof vars.group === 'string') {
    events.emit('counter', `group.${vars.group}.total`, 1);
    if (status < 400) events.emit('counter', `group.${vars.group}.ok`, 1);
    if (status === 429) events.emit('counter', `group.${vars.group}.limited`, 1);
  }
  done();
}
