import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import {
  ShuttingDownError,
  type BulkheadFullError,
  type ResilienceError,
  type TimeoutError,
} from '../errors.js';
import type { BreakerPermit } from '../policies/breaker.js';
import type { BulkheadLease } from '../policies/bulkhead.js';
import { peekDeadline, runInRequestContext } from '../policies/deadline-context.js';
import {
  legacyRateLimitHeaders,
  rateLimitHeader,
  type LegacyRateLimitHeaders,
} from '../policies/rate-limit/headers.js';
import type { RateLimitDecision } from '../policies/rate-limit/store.js';
import { Deadline, parseDeadlineHeader } from '../policies/timeout.js';
import type { ResourceManager } from '../resources/manager.js';
import type { RequestResilience } from './context.js';
import type { InflightRequest } from './lifecycle.js';
import type { PolicyRuntime } from './policy-runtime.js';
import { retryAfterSeconds, sendProblem } from './problem.js';

type Next = (err?: unknown) => void;

/** Where a request is in the pipeline. */
const enum Stage {
  /** Rate limit, breaker and bulkhead decisions; nothing of the app has run yet. */
  Admission,
  /** The app's handlers own the response. */
  Handler,
  /** We answered (rejection or timeout) or the client is gone. */
  Settled,
}

/** The reason a request's signal aborts with when the client goes away first. */
export class ClientDisconnectedError extends Error {
  override readonly name = 'AbortError';
  readonly code = 'ERR_CLIENT_DISCONNECTED';
  constructor() {
    super('The client closed the connection before the response was sent');
  }
}

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | null)?.then === 'function';
}

/** Adds `item` to the Structured Field List in header `name`, after any items already set. */
function appendToList(res: ServerResponse, name: string, item: string): void {
  const current = res.getHeader(name);
  if (current === undefined || current === '') return void res.setHeader(name, item);
  const list = Array.isArray(current) ? current.join(', ') : String(current);
  res.setHeader(name, `${list}, ${item}`);
}

/**
 * Whether `legacy` is more restrictive than the legacy headers already on `res` (none: it
 * is): fewer requests remaining, or as few but a later reset.
 */
function isStricter(legacy: LegacyRateLimitHeaders, res: ServerResponse): boolean {
  const current = res.getHeader('X-RateLimit-Remaining');
  if (current === undefined) return true;
  const remaining = Number(legacy['X-RateLimit-Remaining']);
  if (remaining !== Number(current)) return remaining < Number(current);
  return Number(legacy['X-RateLimit-Reset']) > Number(res.getHeader('X-RateLimit-Reset'));
}

/** `req.resilience`: a thin view over the run, so nothing is computed unless read. */
class RequestContext implements RequestResilience {
  constructor(private readonly run: RequestRun) {}
  get signal(): AbortSignal {
    return this.run.signal();
  }
  get deadline(): number {
    return this.run.deadline?.deadline ?? Infinity;
  }
  remaining(): number {
    return this.run.deadline?.remaining() ?? Infinity;
  }
  get route(): string {
    return this.run.runtime.name;
  }
  get resources(): ResourceManager {
    return this.run.runtime.env.resources!;
  }
}

const RUN = Symbol('express-resilience.request-run');
type HookedResponse = ServerResponse & { [RUN]?: RequestRun };

function writeHeadAndJudge(this: HookedResponse, ...args: unknown[]): unknown {
  const first = this[RUN]!;
  this[RUN] = undefined;
  // Once per response: later calls (there should be none) go straight through.
  const writeHead = first.writeHeadBefore!;
  this.writeHead = writeHead;
  const result = (writeHead as (...a: unknown[]) => unknown).apply(this, args);
  for (let run: RequestRun | undefined = first; run !== undefined; run = run.nextHooked) {
    run.onHeaders();
  }
  return result;
}

/**
 * One request through one {@link PolicyRuntime}: exclude and route matching happened before;
 * this does deadline → rate limit → breaker → bulkhead → timeout → outcome (README.md, "The
 * request pipeline"), and guarantees every breaker permit and bulkhead lease it takes is given
 * back exactly once.
 */
export class RequestRun implements InflightRequest {
  deadline: Deadline | undefined;
  private stage = Stage.Admission;
  private readonly startedAt = performance.now();
  private permit: BreakerPermit | null = null;
  /** The response's `writeHead` before {@link RequestRun.judgeAtHeaders} hooked it. */
  writeHeadBefore: ServerResponse['writeHead'] | undefined = undefined;
  /** The next run of the same response waiting for its headers (nested policies). */
  nextHooked: RequestRun | undefined = undefined;
  private lease: BulkheadLease | null = null;
  private finished = false;
  private timedOut = false;
  private guarded = false;
  private handlerDone = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private shadowTimer: NodeJS.Timeout | undefined;
  private disconnect: AbortController | undefined;

  constructor(
    readonly runtime: PolicyRuntime,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly next: Next,
  ) {}

  start(): void {
    const { runtime, req, res } = this;
    const timeout = runtime.policies.timeout;
    if (timeout.enabled) {
      let ms = timeout.duration;
      const header = runtime.env.deadlineHeader;
      if (header !== null) ms = parseDeadlineHeader(req.headers[header], ms);
      // Behind an outer layer (app-wide middleware, then router.use(r.policy(...))), the
      // inner deadline never outlives the outer one.
      const outer = peekDeadline();
      if (outer !== undefined) ms = Math.min(ms, outer.remaining());
      if (timeout.enforce) {
        this.deadline = new Deadline({
          timeoutMs: ms,
          status: timeout.status,
          onExpire: this.onExpire,
        });
      } else {
        this.shadowTimer = setTimeout(() => this.onShadowExpire(), ms);
        this.shadowTimer.unref();
      }
    }
    runtime.env.lifecycle.requestStarted(this);
    // One 'close' listener, not 'finish' and 'close': Node emits 'close' once per response,
    // right after 'finish' or when the connection drops first, and a second listener turns the
    // response's listener slot into an array that every emit copies. `on`, not `once`: the
    // response dies with the request.
    res.on('close', this.onClose);
    req.resilience = new RequestContext(this);

    // A deadline with no time left (header `0`, or an outer layer already out of time) would
    // only fire after the handler ran synchronously: answer now, before any policy or handler.
    if (this.deadline?.expireIfDue()) return this.handlerFinished();
    if (runtime.limiter !== undefined) this.rateLimit();
    else this.admit();
  }

  /** The request's abort signal: the deadline's, or one that only fires on disconnect. */
  signal(): AbortSignal {
    if (this.deadline !== undefined) return this.deadline.signal;
    this.disconnect ??= new AbortController();
    return this.disconnect.signal;
  }

  // --- rate limit ---------------------------------------------------------------------------

  private rateLimit(): void {
    let key: string | Promise<string>;
    try {
      key = this.runtime.keyOf!(this.req);
    } catch (err) {
      return this.fail(err);
    }
    if (isPromiseLike(key)) {
      key.then(
        (k) => this.consume(k),
        (err: unknown) => this.fail(err),
      );
    } else this.consume(key);
  }

  private consume(key: string): void {
    if (this.stage !== Stage.Admission) return;
    const runtime = this.runtime;
    if (runtime.isAllowlisted?.(key, this.req) === true) {
      runtime.env.metrics.rateLimitDecisions.inc({ route: runtime.name, result: 'allowlisted' });
      return this.admit();
    }
    let decision: RateLimitDecision | Promise<RateLimitDecision>;
    try {
      decision = runtime.limiter!.consume(key);
    } catch (err) {
      return this.storeFailed(err, key);
    }
    if (isPromiseLike(decision)) {
      decision.then(
        (d) => this.decide(d),
        (err: unknown) => this.storeFailed(err, key),
      );
    } else {
      this.decide(decision);
    }
  }

  private storeFailed(err: unknown, key: string): void {
    if (this.stage !== Stage.Admission) return;
    const runtime = this.runtime;
    const policy = runtime.policies.rateLimit;
    runtime.env.metrics.rateLimitStoreErrors.inc({ route: runtime.name, store: policy.store });
    if (policy.onStoreError === 'allow') return this.admit();
    if (policy.onStoreError === 'local' && runtime.localLimiter !== undefined) {
      return this.decide(runtime.localLimiter.consume(key) as RateLimitDecision);
    }
    if (!policy.enforce) return this.admit();
    this.res.setHeader('Retry-After', 1);
    this.reject(runtime.storeUnavailableError(err));
  }

  private decide(decision: RateLimitDecision): void {
    if (this.stage !== Stage.Admission) return;
    const { runtime, res } = this;
    const policy = runtime.policies.rateLimit;
    if (policy.headers) {
      // An outer limit (the app-wide route) may have listed itself already: every limit
      // that applies is reported.
      appendToList(res, 'RateLimit-Policy', runtime.rateLimitPolicyHeader!);
      appendToList(
        res,
        'RateLimit',
        rateLimitHeader(runtime.name, decision, runtime.limiter!.rule),
      );
    }
    if (policy.legacyHeaders) {
      const legacy = legacyRateLimitHeaders(decision, Date.now());
      // Single-value headers cannot list several limits: they show the most restrictive.
      if (isStricter(legacy, res)) {
        for (const name of Object.keys(legacy))
          res.setHeader(name, legacy[name as keyof typeof legacy]);
      }
    }
    const decisions = runtime.env.metrics.rateLimitDecisions;
    if (decision.allowed) {
      runtime.allowedDecisions.inc();
      return this.admit();
    }
    if (!policy.enforce) {
      decisions.inc({ route: runtime.name, result: 'shadow_limited' });
      runtime.countRejection('rate_limited', false);
      return this.admit();
    }
    decisions.inc({ route: runtime.name, result: 'limited' });
    runtime.countRejection('rate_limited', true);
    res.setHeader('Retry-After', retryAfterSeconds(decision.retryAfterMs));
    this.reject(runtime.rateLimitedError(decision.retryAfterMs));
  }

  // --- breaker and bulkhead -----------------------------------------------------------------

  private admit(): void {
    if (this.stage !== Stage.Admission) return;
    const runtime = this.runtime;
    if (runtime.breaker !== undefined) {
      const permit = runtime.breaker.tryAcquire();
      if (permit !== null) {
        this.permit = permit;
      } else if (runtime.policies.breaker.enforce) {
        runtime.countRejection('breaker_open', true);
        const err = runtime.breakerOpenError();
        this.res.setHeader('Retry-After', retryAfterSeconds(err.retryAfterMs ?? 0));
        return this.reject(err);
      } else {
        runtime.countRejection('breaker_open', false);
      }
    }
    const bulkhead = runtime.bulkhead;
    if (bulkhead === undefined) return this.runHandler();
    const lease = bulkhead.tryAcquire();
    if (lease !== null) {
      this.lease = lease;
      return this.runHandler();
    }
    if (!runtime.policies.bulkhead.enforce) {
      // Shadow mode never queues: it counts what would have waited or been turned away.
      runtime.countRejection('bulkhead_full', false);
      return this.runHandler();
    }
    bulkhead.acquire(this.signal()).then(
      (lease) => this.onLease(lease),
      (err: BulkheadFullError) => this.onBulkheadRejected(err),
    );
  }

  private onLease(lease: BulkheadLease): void {
    if (this.stage !== Stage.Admission) {
      // Granted in the same turn as a timeout or disconnect: give it straight back.
      lease.release();
      return;
    }
    this.lease = lease;
    this.runHandler();
  }

  private onBulkheadRejected(err: BulkheadFullError): void {
    if (this.stage !== Stage.Admission) return;
    const runtime = this.runtime;
    runtime.countRejection(
      err.reason === 'queue-timeout' ? 'bulkhead_queue_timeout' : 'bulkhead_full',
      true,
    );
    this.res.setHeader('Retry-After', 1);
    err.retryAfterMs ??= 1000;
    this.reject(err);
  }

  // --- handler, timeout, outcome ------------------------------------------------------------

  private runHandler(): void {
    // Admission may have ended on the very tick the deadline passed, before its timer ran.
    // A slot taken during admission goes back: no handler will end it.
    if (this.deadline?.expireIfDue()) return this.handlerFinished();
    this.stage = Stage.Handler;
    if (this.permit !== null) this.judgeAtHeaders();
    if (this.deadline !== undefined) runInRequestContext(this.deadline, this.next);
    else this.next();
  }

  /**
   * The breaker judges the handler's answer when its headers go out: status and time to the
   * headers. For most responses that is when they end; a response that streams (SSE, a
   * download, a long poll answering late) is healthy once it has started well, however long it
   * then runs, and must count neither as slow nor as a failure. Hooked per response through
   * `writeHead`, which Node calls for implicit headers too; one shared function, no closure.
   */
  private judgeAtHeaders(): void {
    const res = this.res as HookedResponse;
    const first = res[RUN];
    if (first !== undefined) {
      // Nested runs (an app-wide route and `r.policy()` on a router) share the one hook.
      this.nextHooked = first.nextHooked;
      first.nextHooked = this;
      return;
    }
    this.writeHeadBefore = res.writeHead;
    res[RUN] = this;
    res.writeHead = writeHeadAndJudge as ServerResponse['writeHead'];
  }

  /** Called once the handler's headers are written. */
  onHeaders(): void {
    const permit = this.permit;
    if (permit === null || this.stage !== Stage.Handler) return;
    this.permit = null;
    if (this.runtime.isFailureStatus(this.res.statusCode)) permit.failure();
    else permit.success();
  }

  /** Ends the request with a rejection of ours; nothing of the app has run (or will). */
  private reject(err: ResilienceError): void {
    const admission = this.stage === Stage.Admission;
    this.stage = Stage.Settled;
    if (admission) {
      this.permit?.release();
      this.deadline?.clear();
    }
    this.respond(err);
  }

  private respond(err: ResilienceError): void {
    const onReject = this.runtime.env.onReject;
    if (onReject === undefined) return sendProblem(this.res, err, this.runtime.name);
    try {
      onReject(err, this.req, this.res, this.next);
    } catch (hookErr) {
      this.next(hookErr);
    }
  }

  /** A key generator threw or rejected: that is the app's error, not a rejection. */
  private fail(err: unknown): void {
    if (this.stage !== Stage.Admission) return;
    this.stage = Stage.Settled;
    this.deadline?.clear();
    this.next(err);
  }

  private readonly onExpire = (err: TimeoutError): void => {
    if (this.finished || this.stage === Stage.Settled) return;
    const runtime = this.runtime;
    if (this.res.headersSent) {
      // Already streaming: too late for a 504. The signal still aborts; the outcome is
      // recorded when the response ends.
      runtime.countRejection('timeout', false);
      return;
    }
    runtime.countRejection('timeout', true);
    this.timedOut = true;
    const inHandler = this.stage === Stage.Handler;
    if (inHandler) this.permit?.failure();
    this.reject(err);
    if (inHandler) this.guardLateResponse(this.res.writableEnded);
  };

  closeConnection(): void {
    // Rather than a header the app could read or overwrite: Node then sends
    // `Connection: close` and ends the connection once the response is out.
    if (!this.res.headersSent) this.res.shouldKeepAlive = false;
  }

  /**
   * Shutdown's grace is over and the request still runs: answer 503 like a timeout answers 504
   * (the handler's late writes are swallowed, its slot held until it ends) and abort its
   * signal so the work can stop. A response already streaming cannot be answered.
   */
  abandon(): void {
    if (this.finished || this.stage === Stage.Settled || this.res.headersSent) return;
    const err = new ShuttingDownError('The server shut down before the request finished', {
      retryAfterMs: 1000,
    });
    const inHandler = this.stage === Stage.Handler;
    // The work neither failed nor succeeded: it says nothing about the dependency.
    this.permit?.release();
    this.permit = null;
    this.deadline?.abort(err);
    this.disconnect?.abort(err);
    this.res.shouldKeepAlive = false;
    this.res.setHeader('Connection', 'close');
    this.res.setHeader('Retry-After', 1);
    this.reject(err);
    if (inHandler) this.guardLateResponse(this.res.writableEnded);
  }

  private onShadowExpire(): void {
    if (!this.finished) this.runtime.countRejection('timeout', false);
  }

  /** The response was sent in full (called from `onClose`). */
  private onFinish(): void {
    this.finished = true;
    const { runtime, res } = this;
    const status = res.statusCode;
    if (this.stage === Stage.Handler) {
      this.stage = Stage.Settled;
      this.deadline?.clear();
      if (this.permit !== null) {
        if (runtime.isFailureStatus(status)) this.permit.failure();
        else this.permit.success();
      }
      this.handlerFinished();
    }
    if (this.shadowTimer !== undefined) clearTimeout(this.shadowTimer);
    runtime.observeDuration(this.req.method, status, (performance.now() - this.startedAt) / 1000);
  }

  private readonly onClose = (): void => {
    // Finished: end() was called and everything was handed to the socket (which the server
    // detaches from a finished response before 'close').
    if (!this.finished && this.res.writableFinished) this.onFinish();
    this.runtime.env.lifecycle.requestEnded(this);
    if (this.finished) return;
    // The client went away before the response ended.
    const wasHandling = this.stage === Stage.Handler;
    const wasAdmitting = this.stage === Stage.Admission;
    this.stage = Stage.Settled;
    if (this.shadowTimer !== undefined) clearTimeout(this.shadowTimer);
    if (wasAdmitting || wasHandling) this.permit?.release();
    // Guard before aborting: abort listeners run synchronously, and a handler that ends its
    // response from one must reach the guarded end(), or its slot waits for releaseGrace.
    if (wasHandling && !this.timedOut) this.guardLateResponse(true);
    const reason = new ClientDisconnectedError();
    this.deadline?.abort(reason);
    this.disconnect?.abort(reason);
    this.runtime.observeDuration(
      this.req.method,
      'aborted',
      (performance.now() - this.startedAt) / 1000,
    );
  };

  /** The handler's work has ended: its slot goes back to the bulkhead. */
  private handlerFinished(): void {
    if (this.handlerDone) return;
    this.handlerDone = true;
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.lease?.release();
  }

  /**
   * After our 504 (or a disconnect) the handler still runs and will try to respond. Its writes
   * are swallowed — no ERR_HTTP_HEADERS_SENT, no crash — and its final `end()` is how we learn
   * that its work ended and the bulkhead slot can go back. `headersSent` reads false so that
   * Express's final handler, given a late `next(err)`, renders into the void instead of
   * destroying the socket that may still be flushing our 504. A handler that never ends loses
   * its slot after `releaseGrace`, counted as a forced release.
   */
  private guardLateResponse(now: boolean): void {
    if (this.guarded) return;
    this.guarded = true;
    const res = this.res as unknown as Record<string, unknown>;
    const metrics = this.runtime.env.metrics;
    const route = this.runtime.name;
    let counted = false;
    const countLate = (): void => {
      if (counted) return;
      counted = true;
      metrics.lateResponses.inc({ route });
    };
    const swallow = (): unknown => {
      countLate();
      return res;
    };
    const install = (): void => {
      Object.defineProperty(res, 'headersSent', { configurable: true, get: () => false });
      res.setHeader = swallow;
      res.appendHeader = swallow;
      res.removeHeader = () => undefined;
      res.writeHead = swallow;
      res.flushHeaders = () => undefined;
      res.write = (...args: unknown[]): boolean => {
        countLate();
        const callback = args.find((a) => typeof a === 'function') as (() => void) | undefined;
        callback?.();
        return true;
      };
      res.end = (...args: unknown[]): unknown => {
        countLate();
        const callback = args.find((a) => typeof a === 'function') as (() => void) | undefined;
        callback?.();
        this.handlerFinished();
        return res;
      };
    };
    // A custom onReject may still be writing our rejection: guard once it has finished.
    if (now) install();
    else this.res.once('finish', install);

    if (this.lease !== null && !this.lease.released) {
      this.graceTimer = setTimeout(
        () => this.forceRelease(),
        this.runtime.policies.bulkhead.releaseGrace,
      );
      this.graceTimer.unref();
    }
  }

  private forceRelease(): void {
    if (this.handlerDone || this.lease === null) return;
    if (this.lease.release())
      this.runtime.env.metrics.bulkheadForcedReleases.inc({ route: this.runtime.name });
  }
}
