// Per call: what each policy adds around `async () => 1`, measured in this process one call
// after another (no concurrency: the policy's own cost, not the event loop's). Also counts
// AbortController aborts, since an abort on every success is what makes a timeout expensive.
import {
  ConsecutiveBreaker,
  TimeoutStrategy,
  bulkhead as cockatielBulkhead,
  circuitBreaker as cockatielBreaker,
  handleAll,
  timeout as cockatielTimeout,
  wrap,
} from 'cockatiel';
import CircuitBreaker from 'opossum';
import { loadPack } from '../pack.js';
import { contender, fmt, type Benchmark, type Contender, type Sample } from '../harness.js';

const noop = async (): Promise<number> => 1;

/** Aborts of any AbortController in this process, counted while a contender runs. */
let aborts = 0;
function countAborts(): () => void {
  const original = AbortController.prototype.abort;
  AbortController.prototype.abort = function abort(this: AbortController, reason?: unknown) {
    aborts++;
    original.call(this, reason);
  };
  return () => {
    AbortController.prototype.abort = original;
  };
}

const BATCH = 10_000;

/** Calls `call` one after another for `seconds`; nanoseconds per call and aborts per call. */
async function timeCalls(call: () => Promise<unknown>, seconds: number): Promise<Sample> {
  const abortsBefore = aborts;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let calls = 0;
  let now = start;
  while (now < end) {
    for (let i = 0; i < BATCH; i++) await call();
    calls += BATCH;
    now = process.hrtime.bigint();
  }
  return {
    value: Number(now - start) / calls,
    extra: { calls, abortsPerCall: (aborts - abortsBefore) / calls },
  };
}

export const benchmark: Benchmark = {
  name: 'per-call',
  title: 'Per call: policies around `async () => 1`, one call at a time',
  unit: 'ns/call',
  higherIsBetter: false,
  comparison: 'overhead',
  columns: [{ key: 'abortsPerCall', label: 'aborts/call' }],
  async start(options) {
    const { bulkhead, circuitBreaker, resilience, withTimeout } = await loadPack();
    const restore = countAborts();
    // The user-facing way: a named policy from the config, wrapped around a function.
    const r = resilience({
      middleware: {
        policies: {
          call: {
            breaker: { enabled: true },
            bulkhead: { enabled: true, maxConcurrent: 100, maxQueue: 200 },
            timeout: { enabled: true, duration: '5s' },
          },
        },
      },
      metrics: { enabled: true },
    });
    const wrapped = r.wrap('call', noop);
    const breaker = circuitBreaker({ window: { type: 'count', size: 100 } });
    const slots = bulkhead({ maxConcurrent: 100, maxQueue: 200 });
    const composed = () => breaker.execute(() => slots.execute(() => withTimeout(5000, noop)));

    const cBreaker = cockatielBreaker(handleAll, {
      halfOpenAfter: 10_000,
      breaker: new ConsecutiveBreaker(5),
    });
    const cBulkhead = cockatielBulkhead(100, 200);
    const cTimeout = cockatielTimeout(5000, TimeoutStrategy.Cooperative);
    const cAll = wrap(cBreaker, cBulkhead, cTimeout);
    const opossum = new CircuitBreaker(noop, { timeout: 5000, errorThresholdPercentage: 50 });

    const seconds = Math.min(options.duration, 2);
    const warmup = Math.min(options.warmup, 1);
    const entry = (
      name: string,
      label: string,
      call: () => Promise<unknown>,
      baseline = false,
    ): Contender => ({
      name,
      label,
      baseline,
      run: (phase) => timeCalls(call, phase === 'warmup' ? warmup : seconds),
    });
    return {
      contenders: [
        entry('none', 'no policy: `await fn()`', noop, true),
        entry('pack', 'express-resilience `r.wrap()`: breaker → bulkhead → timeout', wrapped),
        entry('pack-composed', 'express-resilience primitives composed by hand', composed),
        entry('pack-breaker', 'express-resilience circuitBreaker().execute', () =>
          breaker.execute(noop),
        ),
        entry('pack-bulkhead', 'express-resilience bulkhead().execute', () => slots.execute(noop)),
        entry('pack-timeout', 'express-resilience withTimeout (never fires)', () =>
          withTimeout(5000, noop),
        ),
        entry('cockatiel-all', 'cockatiel wrap(breaker, bulkhead, timeout)', () =>
          cAll.execute(noop),
        ),
        entry('cockatiel-breaker', 'cockatiel circuitBreaker', () => cBreaker.execute(noop)),
        entry('cockatiel-bulkhead', 'cockatiel bulkhead', () => cBulkhead.execute(noop)),
        entry('cockatiel-timeout', 'cockatiel timeout (cooperative)', () => cTimeout.execute(noop)),
        entry('opossum', 'opossum fire (timeout 5 s)', () => opossum.fire()),
      ],
      notes: [
        `Each contender makes calls one after another for ${seconds} s; overhead = its ns/call minus the bare call's, in the same round.`,
      ],
      async close() {
        restore();
        opossum.shutdown();
        await r.close();
      },
    };
  },
  targets(summary) {
    const pack = contender(summary, 'pack');
    return [
      {
        description: 'breaker + bulkhead + timeout (`r.wrap()`) add <= 1 µs per call',
        met: (pack.overhead ?? Infinity) <= 1000,
        actual: `${fmt(pack.overhead)} ns (cockatiel's three: ${fmt(contender(summary, 'cockatiel-all').overhead)} ns)`,
      },
      {
        description: 'a timeout that never fires aborts no AbortController',
        met:
          pack.extra.abortsPerCall === 0 &&
          contender(summary, 'pack-timeout').extra.abortsPerCall === 0,
        actual: `${pack.extra.abortsPerCall} aborts per call`,
      },
    ];
  },
};
