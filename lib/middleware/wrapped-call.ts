import type { TimeoutError } from '../errors.js';
import type { BreakerPermit } from '../policies/breaker.js';
import type { BulkheadLease } from '../policies/bulkhead.js';
import { peekDeadline, runInRequestContext } from '../policies/deadline-context.js';
import { Deadline, followDeadline, withTimeout } from '../policies/timeout.js';
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

/**
 * One admitted call: its permit, given back exactly once when the call settles, expires or its
 * request goes away; and its slot, held until `fn` itself settles — a timeout does not stop
 * `fn`, so freeing the slot then would let more than `maxConcurrent` run at once. An `fn` that
 * never settles loses its slot `releaseGrace` after the call ended, counted as a forced release.
 */
class WrappedCall<T> {
  private deadline: Deadline | undefined = undefined;
  private settled = false;
  private workDone = false;
  private graceTimer: ReturnType<typeof setTimeout> | undefined = undefined;
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
        this.workEnded();
        return Promise.reject(err);
      }
      return Promise.resolve(result).then(
        (value) => {
          this.permit?.success();
          this.workEnded();
          return value;
        },
        (err: unknown) => {
          this.failed(err);
          this.workEnded();
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
        this.workEnded();
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
      // The request (or enclosing call) going away aborts this call's signal too.
      if (parent !== undefined && !followDeadline(deadline, parent, this.abandon)) {
        this.workEnded();
        return;
      }
      let result: Promise<T> | T;
      try {
        result = runInRequestContext(deadline, fn);
      } catch (err) {
        this.workEnded();
        this.finish(err, true);
        return;
      }
      if (typeof (result as PromiseLike<T> | null | undefined)?.then !== 'function') {
        this.workEnded();
        this.finish(result, false);
        return;
      }
      (result as PromiseLike<T>).then(
        (value) => {
          this.workEnded();
          this.finish(value, false);
        },
        (err: unknown) => {
          this.workEnded();
          this.finish(err, true);
        },
      );
    });
  }

  private readonly expire = (err: TimeoutError): void => {
    this.finish(err, true);
    this.holdSlot();
  };

  /** The parent deadline was aborted: the caller is gone, which says nothing of the callee. */
  private readonly abandon = (reason: unknown): void => {
    if (this.settled) return;
    this.settled = true;
    this.permit?.release();
    this.reject!(reason);
    this.holdSlot();
  };

  private finish(outcome: unknown, failed: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.deadline!.clear();
    if (failed) {
      this.failed(outcome);
      this.reject!(outcome);
    } else {
      this.permit?.success();
      this.resolve!(outcome as T);
    }
  }

  private failed(err: unknown): void {
    this.permit?.failure();
    if ((err as { code?: string } | null)?.code === 'ERR_TIMEOUT') {
      this.rt.countRejection('timeout', true);
    }
  }

  /** The caller has its answer but `fn` still runs: keep the slot, for `releaseGrace` at most. */
  private holdSlot(): void {
    if (this.workDone || this.lease === null || this.graceTimer !== undefined) return;
    this.graceTimer = setTimeout(() => {
      if (this.lease!.release()) {
        this.rt.env.metrics.bulkheadForcedReleases.inc({ route: this.rt.name });
      }
    }, this.rt.policies.bulkhead.releaseGrace);
    this.graceTimer.unref();
  }

  /** `fn` has settled: its slot goes back. */
  private workEnded(): void {
    this.workDone = true;
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.lease?.release();
  }
}
