import type { TimeoutError } from '../errors.js';
import type { BreakerPermit } from '../policies/breaker.js';
import type { BulkheadLease } from '../policies/bulkhead.js';
import { peekDeadline, runInRequestContext } from '../policies/deadline-context.js';
import { Deadline, withTimeout } from '../policies/timeout.js';
import type { PolicyRuntime } from './policy-runtime.js';

/**
 * `r.wrap()`: breaker → bulkhead → timeout around a plain function. Admission is synchronous
 * and the admitted call is one promise racing `fn` against its deadline: composing
 * `breaker.execute(() => bulkhead.execute(() => withTimeout(...)))` costs two more promises
 * and an async frame per call, which AsyncLocalStorage's hooks (on for `wrap`, whose calls
 * inherit the request's deadline) make several hundred nanoseconds dearer each.
 */
export function executeUnderPolicy<T>(rt: PolicyRuntime, fn: () => Promise<T> | T): Promise<T> {
  const { breaker, bulkhead, policies } = rt;
  let permit: BreakerPermit | null = null;
  if (breaker !== undefined) {
    permit = breaker.tryAcquire();
    if (permit === null) {
      if (policies.breaker.enforce) {
        rt.countRejection('breaker_open', true);
        return Promise.reject(rt.breakerOpenError());
      }
      rt.countRejection('breaker_open', false);
    }
  }
  if (bulkhead !== undefined) {
    const lease = bulkhead.tryAcquire();
    if (lease !== null) return new WrappedCall<T>(rt, permit, lease).run(fn);
    if (policies.bulkhead.enforce) return queueThenRun(rt, permit, fn);
    rt.countRejection('bulkhead_full', false);
  }
  return new WrappedCall<T>(rt, permit, null).run(fn);
}

async function queueThenRun<T>(
  rt: PolicyRuntime,
  permit: BreakerPermit | null,
  fn: () => Promise<T> | T,
): Promise<T> {
  let lease: BulkheadLease;
  try {
    lease = await rt.bulkhead!.acquire(peekDeadline()?.signal);
  } catch (err) {
    permit?.release();
    const reason = (err as { reason?: string }).reason;
    rt.countRejection(
      reason === 'queue-timeout' ? 'bulkhead_queue_timeout' : 'bulkhead_full',
      true,
    );
    throw err;
  }
  return new WrappedCall<T>(rt, permit, lease).run(fn);
}

/** One admitted call: its permit and slot, given back exactly once when it settles or expires. */
class WrappedCall<T> {
  private deadline: Deadline | undefined = undefined;
  private settled = false;
  private resolve: ((value: T) => void) | undefined = undefined;
  private reject: ((err: unknown) => void) | undefined = undefined;

  constructor(
    private readonly rt: PolicyRuntime,
    private readonly permit: BreakerPermit | null,
    private readonly lease: BulkheadLease | null,
  ) {}

  run(fn: () => Promise<T> | T): Promise<T> {
    const timeout = this.rt.policies.timeout;
    if (!timeout.enabled) {
      let result: Promise<T> | T;
      try {
        result = fn();
      } catch (err) {
        this.failed(err);
        return Promise.reject(err);
      }
      return Promise.resolve(result).then(
        (value) => {
          this.succeeded();
          return value;
        },
        (err: unknown) => {
          this.failed(err);
          throw err;
        },
      );
    }
    const parent = peekDeadline();
    const ms =
      parent === undefined ? timeout.duration : Math.min(timeout.duration, parent.remaining());
    if (ms <= 0) {
      // No time left: withTimeout rejects at once, without calling fn.
      return withTimeout(ms, fn, { status: timeout.status }).catch((err: unknown) => {
        this.failed(err);
        throw err;
      });
    }
    return new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      const deadline = new Deadline({
        timeoutMs: ms,
        status: timeout.status,
        onExpire: this.expire,
      });
      this.deadline = deadline;
      let result: Promise<T> | T;
      try {
        result = runInRequestContext(deadline, fn);
      } catch (err) {
        this.finish(err, true);
        return;
      }
      if (typeof (result as PromiseLike<T> | null | undefined)?.then !== 'function') {
        this.finish(result, false);
        return;
      }
      (result as PromiseLike<T>).then(
        (value) => this.finish(value, false),
        (err: unknown) => this.finish(err, true),
      );
    });
  }

  private readonly expire = (err: TimeoutError): void => this.finish(err, true);

  private finish(outcome: unknown, failed: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.deadline!.clear();
    if (failed) {
      this.failed(outcome);
      this.reject!(outcome);
    } else {
      this.succeeded();
      this.resolve!(outcome as T);
    }
  }

  private succeeded(): void {
    this.permit?.success();
    this.lease?.release();
  }

  private failed(err: unknown): void {
    this.permit?.failure();
    if ((err as { code?: string } | null)?.code === 'ERR_TIMEOUT') {
      this.rt.countRejection('timeout', true);
    }
    this.lease?.release();
  }
}
