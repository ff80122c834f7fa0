import assert from 'node:assert/strict';
import {
  faultPhase,
  greedyClient,
  makeOrder,
  observe,
  parseTimeline,
  pickOrder,
  politeClient,
  rememberOrder,
  setUp,
} from '../../../load/processors/resilience.mjs';

/** Records what a hook emits: counters summed, histograms listed. */
function recorder() {
  const counters: Record<string, number> = {};
  const histograms: Record<string, number[]> = {};
  return {
    counters,
    histograms,
    emit(kind: 'counter' | 'histogram', name: string, value: number) {
      if (kind === 'counter') counters[name] = (counters[name] ?? 0) + value;
      else (histograms[name] ??= []).push(value);
    },
  };
}

const done = () => {};
const response = (statusCode: number, body: unknown = {}, type = 'application/json') => ({
  statusCode,
  headers: { 'content-type': type },
  body: typeof body === 'string' ? body : JSON.stringify(body),
  timings: { phases: { total: 12 } },
});

describe('load/processors/resilience', () => {
  it('makes varied but valid orders', () => {
    for (let i = 0; i < 50; i++) {
      const order = makeOrder('c1');
      assert.equal(order.customerId, 'c1');
      assert.ok(order.items.length >= 1 && order.items.length <= 5);
      for (const item of order.items) {
        assert.ok(Number.isInteger(item.quantity) && item.quantity >= 1 && item.quantity <= 5);
        assert.ok(item.price >= 0.5 && item.price <= 25);
      }
    }
  });

  it('parses timelines (seconds to ms, open ends) and refuses malformed ones', () => {
    assert.deepEqual(parseTimeline('a:0-10,b-2:10.5-'), [
      { name: 'a', from: 0, to: 10_000 },
      { name: 'b-2', from: 10_500, to: Infinity },
    ]);
    assert.deepEqual(parseTimeline(undefined), []);
    assert.deepEqual(parseTimeline('undefined'), []);
    assert.throws(() => parseTimeline('a:x-1'), /bad timeline window/);
  });

  it('places a moment around a fault schedule', () => {
    assert.equal(faultPhase(99, 100, 200, 50), 'before');
    assert.equal(faultPhase(100, 100, 200, 50), 'during');
    assert.equal(faultPhase(200, 100, 200, 50), 'recovering');
    assert.equal(faultPhase(250, 100, 200, 50), 'after');
  });

  it('sets a user up, with the counters its checks read at zero', () => {
    const events = recorder();
    const context = {
      vars: { faultStartsAt: 1, $env: { LOAD_TIMELINE: 'steady:0-' } } as Record<string, unknown>,
    };
    setUp(context, events, done);
    assert.match(String(context.vars.clientId), /^client-/);
    assert.ok(Number(context.vars.orderId) >= 1);
    assert.equal(events.counters['plugins.expect.failed'], 0);
    assert.equal(events.counters['phase.after.ok'], 0);
    assert.equal(events.counters['window.steady.total'], 0);
    politeClient(context, events, done);
    assert.equal(context.vars.clientId, 'polite-client');
    assert.equal(events.counters['group.greedy.limited'], 0);
    greedyClient(context, events, done);
    assert.equal(context.vars.group, 'greedy');
  });

  it('counts rejections by problem code, with their latency', () => {
    const events = recorder();
    observe(
      {},
      response(503, { code: 'ERR_BREAKER_OPEN' }, 'application/problem+json'),
      { vars: {} },
      events,
      done,
    );
    observe({}, response(502, 'not json', 'text/plain'), { vars: {} }, events, done);
    observe({}, response(200, { code: 'NOT_A_REJECTION' }), { vars: {} }, events, done);
    assert.deepEqual(events.counters, { 'rejections.ERR_BREAKER_OPEN': 1 });
    assert.deepEqual(events.histograms, { 'rejection_ms.ERR_BREAKER_OPEN': [12] });
  });

  it('tags answers by fault phase, time window and group', () => {
    const events = recorder();
    const now = Date.now();
    const vars = {
      faultStartsAt: now - 10_000,
      faultEndsAt: now - 5_000,
      recoverWithin: '2',
      group: 'greedy',
      $env: { LOAD_TIMELINE: 'all:0-,never:3600-7200' },
    };
    setUp({ vars: {} }, recorder(), done); // the run's start: now
    observe({}, response(200), { vars }, events, done);
    observe(
      {},
      response(429, { code: 'ERR_RATE_LIMITED' }, 'application/problem+json'),
      { vars },
      events,
      done,
    );
    observe({}, response(404), { vars }, events, done);
    assert.equal(events.counters['phase.after.total'], 3);
    assert.equal(events.counters['phase.after.ok'], 2, 'a 404 is a fine answer; a 429 is not');
    assert.equal(events.counters['window.all.total'], 3);
    assert.equal(events.counters['window.never.total'], undefined);
    assert.deepEqual(events.histograms['window_ms.all'], [12, 12]);
    assert.equal(events.counters['group.greedy.ok'], 1);
    assert.equal(events.counters['group.greedy.limited'], 1);
  });

  it('follows the orders a user saw or created', () => {
    const context = { vars: { orderId: 1 } as Record<string, unknown> };
    pickOrder({}, response(200, { orders: [{ id: 42 }] }), context, recorder(), done);
    assert.equal(context.vars.orderId, 42);
    pickOrder({}, response(503, 'x', 'text/plain'), context, recorder(), done);
    assert.equal(context.vars.orderId, 42);
    rememberOrder({}, response(201, { id: 77 }), context, recorder(), done);
    assert.equal(context.vars.orderId, 77);
    rememberOrder({}, response(429, { id: 1 }), context, recorder(), done);
    assert.equal(context.vars.orderId, 77);
  });
});
