// One per-call contender in a fresh process: `per-call-worker.ts <contender> <seconds> <warmup>`.
// A process of its own because AsyncLocalStorage, once used (r.wrap() uses it, so that calls
// inherit a request's deadline), turns on promise hooks for the whole process on Node 20 and
// would tax every other contender measured after it. Prints one JSON line.
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

const [name = '', secondsText = '1', warmupText = '0.5'] = process.argv.slice(2);
const noop = async (): Promise<number> => 1;

let aborts = 0;
const originalAbort = AbortController.prototype.abort;
AbortController.prototype.abort = function abort(this: AbortController, reason?: unknown) {
  aborts++;
  originalAbort.call(this, reason);
};

async function contender(): Promise<{ call: () => Promise<unknown>; close(): Promise<void> }> {
  const { bulkhead, circuitBreaker, resilience, withTimeout } = await loadPack();
  const none = async () => {};
  switch (name) {
    case 'none':
      return { call: noop, close: none };
    case 'pack': {
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
        metrics: { enabled: true, defaultMetrics: false },
      });
      return { call: r.wrap('call', noop), close: () => r.close() };
    }
    case 'pack-composed': {
      const breaker = circuitBreaker({ window: { type: 'count', size: 100 } });
      const slots = bulkhead({ maxConcurrent: 100, maxQueue: 200 });
      return {
        call: () => breaker.execute(() => slots.execute(() => withTimeout(5000, noop))),
        close: none,
      };
    }
    case 'pack-breaker': {
      const breaker = circuitBreaker({ window: { type: 'count', size: 100 } });
      return { call: () => breaker.execute(noop), close: none };
    }
    case 'pack-bulkhead': {
      const slots = bulkhead({ maxConcurrent: 100, maxQueue: 200 });
      return { call: () => slots.execute(noop), close: none };
    }
    case 'pack-timeout':
      return { call: () => withTimeout(5000, noop), close: none };
    case 'cockatiel-all': {
      const all = wrap(
        cockatielBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) }),
        cockatielBulkhead(100, 200),
        cockatielTimeout(5000, TimeoutStrategy.Cooperative),
      );
      return { call: () => all.execute(noop), close: none };
    }
    case 'cockatiel-breaker': {
      const breaker = cockatielBreaker(handleAll, {
        halfOpenAfter: 10_000,
        breaker: new ConsecutiveBreaker(5),
      });
      return { call: () => breaker.execute(noop), close: none };
    }
    case 'cockatiel-bulkhead': {
      const slots = cockatielBulkhead(100, 200);
      return { call: () => slots.execute(noop), close: none };
    }
    case 'cockatiel-timeout': {
      const timeout = cockatielTimeout(5000, TimeoutStrategy.Cooperative);
      return { call: () => timeout.execute(noop), close: none };
    }
    case 'opossum': {
      const breaker = new CircuitBreaker(noop, { timeout: 5000, errorThresholdPercentage: 50 });
      return { call: () => breaker.fire(), close: async () => breaker.shutdown() };
    }
    default:
      throw new Error(`unknown per-call contender ${name}`);
  }
}

const BATCH = 10_000;

/** Calls `call` one after another for `seconds`: nanoseconds and aborts per call. */
async function timeCalls(call: () => Promise<unknown>, seconds: number) {
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
    nsPerCall: Number(now - start) / calls,
    calls,
    abortsPerCall: (aborts - abortsBefore) / calls,
  };
}

const { call, close } = await contender();
await timeCalls(call, Number(warmupText));
const result = await timeCalls(call, Number(secondsText));
await close();
process.stdout.write(`${JSON.stringify(result)}\n`);
