import type { Client } from 'undici';
import type { HttpResourceConfig } from '../config/types.js';
import { statusTable } from '../policies/status-patterns.js';
import { InvalidArgumentError, TimeoutError, UpstreamError } from '../errors.js';
import { parseRetryAfter } from '../policies/retry.js';
import { Deadline } from '../policies/timeout.js';
import { createClientFactory } from './http/client-factory.js';
import { exchange, startExchange } from './http/exchange.js';
import type { ExchangeLimits, ExchangeRequest, HttpResponse } from './http/exchange.js';
import { PooledResource } from './pooled-resource.js';
import type { Attempt, AttemptVerdict, CallOptions } from './pooled-resource.js';

export { HttpResponse } from './http/exchange.js';

/** A query-string value; arrays repeat the key, `undefined` leaves it out. */
export type QueryValue =
  string | number | boolean | readonly (string | number | boolean)[] | undefined;

/** One call of {@link HttpResource.request}. */
export interface HttpRequestOptions {
  /** Default `GET`; sent upper-cased. */
  method?: string;
  /** Starts with `/`; may carry a query string of its own. */
  path: string;
  /** Appended to the path, percent-encoded. */
  query?: Readonly<Record<string, QueryValue>>;
  /**
   * Merged over the resource's default headers (names are case-insensitive); `undefined`
   * removes a default header for this call.
   */
  headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  /**
   * A string, Buffer or Uint8Array is sent as is; any other object as JSON, with
   * `content-type: application/json` unless the call sets a content type.
   */
  body?: string | Buffer | Uint8Array | object | null;
  /** Aborting rejects the call with `signal.reason` and cuts its connection. */
  signal?: AbortSignal;
  /**
   * Whether the call may be retried. Default by method: GET, HEAD, OPTIONS, PUT, DELETE and
   * TRACE are idempotent; POST, PATCH and others are retried only with `idempotent: true` or
   * `retry.nonIdempotent` in the resource's config.
   */
  idempotent?: boolean;
  /** Total timeout of this call (all attempts), instead of `timeouts.request`; still capped
   * by the inbound request's remaining deadline. */
  timeoutMs?: number;
}

/** {@link HttpRequestOptions} without method and path, for the helpers. */
export type HttpCallOptions = Omit<HttpRequestOptions, 'method' | 'path' | 'body'>;

/** Extra options of an {@link HttpResource} that the config file does not carry. */
export interface HttpResourceOptions {
  /** Jitter source of the retry backoff, in [0, 1). Default `Math.random`. */
  random?: () => number;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

function encodeQuery(query: Readonly<Record<string, QueryValue>>): string {
  let qs = '';
  for (const key of Object.keys(query)) {
    const value = query[key];
    if (value === undefined) continue;
    const name = encodeURIComponent(key);
    if (Array.isArray(value)) {
      for (const item of value as readonly (string | number | boolean)[]) {
        qs += `${qs === '' ? '' : '&'}${name}=${encodeURIComponent(String(item))}`;
      }
    } else {
      qs += `${qs === '' ? '' : '&'}${name}=${encodeURIComponent(String(value))}`;
    }
  }
  return qs;
}

// Any failed exchange has lost its connection (undici destroys the socket of an aborted or
// failed request), so its client is destroyed rather than returned — unless undici refused
// the request before sending it (a malformed header, say), which leaves the client intact.
function isBroken(error: unknown): boolean {
  return !(error instanceof InvalidArgumentError);
}

type Classify = NonNullable<CallOptions<HttpResponse>['classify']>;

/**
 * One call: its request, what its attempts need, and its options for the pooled resource
 * (one object per call; {@link sendAttempt} gets it back with each attempt).
 */
class HttpCall implements CallOptions<HttpResponse> {
  readonly isBroken = isBroken;
  // Every exchange aborts with its attempt.
  readonly settlesOnAbort = true;
  /** Deadline propagation: the header, and the absolute time the call must end by. */
  deadlineHeader: string | undefined = undefined;
  deadlineAt = 0;

  constructor(
    readonly request: ExchangeRequest,
    readonly limits: ExchangeLimits,
    readonly idempotent: boolean,
    readonly signal: AbortSignal | undefined,
    readonly timeoutMs: number | undefined,
    readonly classify: Classify,
  ) {}
}

/**
 * One attempt of a call, a function of nothing but its arguments (no closure per call): the
 * attempt is the exchange's abort signal and receives its outcome.
 */
function sendAttempt(client: Client, attempt: Attempt<HttpResponse>, call: HttpCall): void {
  if (call.deadlineHeader !== undefined) {
    const left = Math.floor(call.deadlineAt - Date.now());
    call.request.headers[call.deadlineHeader] = String(left > 0 ? left : 0);
  }
  startExchange(client, call.request, call.limits, attempt, attempt);
}

/**
 * A pooled HTTP upstream (`resources.http.<name>`): a pool of undici clients to one origin
 * (see `createClientFactory`: each member is a warm connection), and calls that run through
 * the resource's breaker → retry → timeout → pool.
 *
 * - Responses are always read to their end (at most `maxResponseSize` bytes, else
 *   `ResponseTooLargeError`), so connections are reused. Final responses are returned
 *   whatever their status — a 503 is a response, not an exception — but a status that
 *   matches `breaker.failureStatuses` counts as a failure for the breaker.
 * - Retries: idempotent calls only (unless opted in), on transport errors, connect timeouts
 *   and `retry.statuses` (default 502, 503, 504), waiting for `Retry-After` when the upstream
 *   sends one; bounded by the retry budget. Headers and body timeouts are not retried: the
 *   upstream is slow, and a retry would add to its load.
 * - Deadlines: a call's timeout is the smaller of its own (`timeouts.request`, or the call's
 *   `timeoutMs`) and the inbound request's remaining deadline; with
 *   `deadlinePropagation.enabled`, each attempt sends the time left in that header. A call
 *   with no time left fails at once with `TimeoutError`, without touching the network.
 * - Errors: `TimeoutError` (the message names the timeout: `connect`, `headers`, `body`, or
 *   the call's deadline), `UpstreamError` (a transport failure, undici's error as `cause`),
 *   `ResponseTooLargeError`, `BreakerOpenError`, `PoolExhaustedError`,
 *   `ResourceUnavailableError` (the upstream cannot be connected to; the cause says why),
 *   `PoolClosedError`, or the caller's `signal.reason`.
 */
export class HttpResource extends PooledResource<Client> {
  /** The upstream's origin, e.g. `https://payments.internal:8443`. */
  readonly origin: string;
  readonly #config: HttpResourceConfig;
  readonly #limits: ExchangeLimits;
  /** Default headers with lower-case names, merged under each call's. */
  readonly #headers: Readonly<Record<string, string>>;
  readonly #retryStatuses: Uint8Array;
  readonly #failureStatuses: Uint8Array;

  /**
   * Reads TLS files now; opens no connection until {@link HttpResource.start} or the first
   * call.
   * @throws ConfigError when a TLS file cannot be read (naming the resource and field).
   * @throws InvalidArgumentError when the origin is not an http(s) origin, a status pattern
   *   is malformed, or a pool, breaker or retry option is (see the base).
   */
  constructor(config: HttpResourceConfig, options: HttpResourceOptions = {}) {
    if (typeof config !== 'object' || config === null) {
      throw new InvalidArgumentError(
        `HTTP resource config must be an object, got ${String(config)}`,
      );
    }
    checkOrigin(config);
    // Everything that can throw runs before the pool exists.
    const retryStatuses = statusTable(
      config.retry.statuses,
      `resources.http.${config.name}.retry.statuses`,
    );
    const failureStatuses = statusTable(
      config.breaker.failureStatuses,
      `resources.http.${config.name}.breaker.failureStatuses`,
    );
    super(
      {
        name: config.name,
        kind: 'http',
        critical: config.critical,
        pool: config.pool,
        retry: config.retry,
        breaker: config.breaker,
        timeoutMs: config.timeouts.request,
        ...(options.random !== undefined && { random: options.random }),
      },
      createClientFactory(config),
    );
    this.origin = new URL(config.origin).origin;
    this.#config = config;
    this.#limits = {
      resource: config.name,
      headersMs: config.timeouts.headers,
      bodyMs: config.timeouts.body,
      maxResponseSize: config.maxResponseSize,
    };
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(config.headers)) headers[name.toLowerCase()] = value;
    this.#headers = headers;
    this.#retryStatuses = retryStatuses;
    this.#failureStatuses = failureStatuses;
  }

  /**
   * Sends one request and reads its whole response. See {@link HttpResource} for the policies
   * around it and the errors it rejects with; also rejects with `InvalidArgumentError` on a
   * malformed path, method or header.
   */
  request(options: HttpRequestOptions): Promise<HttpResponse> {
    if (typeof options !== 'object' || options === null) {
      return Promise.reject(
        new InvalidArgumentError(`request options must be an object, got ${String(options)}`),
      );
    }
    let method: string;
    try {
      method = options.method === undefined ? 'GET' : checkMethod(options.method);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#send(method, options.path, options.body, options);
  }

  /** `GET path`. */
  get(path: string, options?: HttpCallOptions): Promise<HttpResponse> {
    return this.#send('GET', path, undefined, options);
  }

  /** `HEAD path`. */
  head(path: string, options?: HttpCallOptions): Promise<HttpResponse> {
    return this.#send('HEAD', path, undefined, options);
  }

  /** `POST path` with `body` (not retried unless `idempotent: true` or configured). */
  post(
    path: string,
    body?: HttpRequestOptions['body'],
    options?: HttpCallOptions,
  ): Promise<HttpResponse> {
    return this.#send('POST', path, body, options);
  }

  /** `PUT path` with `body`. */
  put(
    path: string,
    body?: HttpRequestOptions['body'],
    options?: HttpCallOptions,
  ): Promise<HttpResponse> {
    return this.#send('PUT', path, body, options);
  }

  /** `PATCH path` with `body` (not retried unless `idempotent: true` or configured). */
  patch(
    path: string,
    body?: HttpRequestOptions['body'],
    options?: HttpCallOptions,
  ): Promise<HttpResponse> {
    return this.#send('PATCH', path, body, options);
  }

  /** `DELETE path`. */
  delete(path: string, options?: HttpCallOptions): Promise<HttpResponse> {
    return this.#send('DELETE', path, undefined, options);
  }

  #send(
    method: string,
    path: string,
    body: HttpRequestOptions['body'],
    options: HttpCallOptions | undefined,
  ): Promise<HttpResponse> {
    let call: HttpCall;
    try {
      call = this.#call(method, path, body, options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.executeWithAttempt(sendAttempt, call);
  }

  /**
   * One health check: `GET health.path` (with the default headers) within `health.timeout`,
   * on the probe's own connection rather than a pooled one (a saturated pool must not fail
   * it, see {@link PooledResource.probeWith}), bypassing the breaker and retries (a check
   * must reach the upstream even while the breaker is open). Resolves on a 2xx or 3xx answer; rejects with
   * `UpstreamError` (its `statusCode` set) on any other, or with the call's error.
   */
  async probe(signal: AbortSignal): Promise<void> {
    const { path, timeout } = this.#config.health;
    const request: ExchangeRequest = {
      method: 'GET',
      path,
      label: path,
      headers: { ...this.#headers },
      body: null,
    };
    const deadline = new Deadline({ timeoutMs: timeout });
    const both = AbortSignal.any([signal, deadline.signal]);
    let response: HttpResponse;
    try {
      response = await this.probeWith((client) => exchange(client, request, this.#limits, both), {
        signal: both,
        isBroken,
      });
    } catch (err) {
      if (deadline.expired && err === both.reason) {
        throw new TimeoutError(
          `HTTP resource "${this.name}": health check GET ${path} timed out after ${timeout} ms`,
          { timeoutMs: timeout },
        );
      }
      throw err;
    } finally {
      deadline.clear();
    }
    if (response.statusCode >= 400) {
      throw new UpstreamError(
        `HTTP resource "${this.name}": health check GET ${path} answered ${response.statusCode}`,
        { statusCode: response.statusCode },
      );
    }
  }

  #call(
    method: string,
    path: string,
    payload: HttpRequestOptions['body'],
    options: HttpCallOptions | undefined,
  ): HttpCall {
    if (typeof path !== 'string' || path[0] !== '/') {
      throw new InvalidArgumentError(
        `path must be a string starting with "/", got ${String(path)}`,
      );
    }
    const headers: Record<string, string | string[]> = { ...this.#headers };
    if (options?.headers !== undefined) {
      for (const name of Object.keys(options.headers)) {
        const value = options.headers[name];
        if (value === undefined) delete headers[name.toLowerCase()];
        else headers[name.toLowerCase()] = value as string | string[];
      }
    }
    let body: string | Buffer | Uint8Array | null = null;
    if (typeof payload === 'string' || payload instanceof Uint8Array) body = payload;
    else if (typeof payload === 'object' && payload !== null) {
      body = JSON.stringify(payload);
      headers['content-type'] ??= 'application/json';
    }
    const query = options?.query === undefined ? '' : encodeQuery(options.query);
    const queryAt = path.indexOf('?');
    const request: ExchangeRequest = {
      method,
      path: query === '' ? path : `${path}${queryAt === -1 ? '?' : '&'}${query}`,
      label: queryAt === -1 ? path : path.slice(0, queryAt),
      headers,
      body,
    };
    const call = new HttpCall(
      request,
      this.#limits,
      options?.idempotent ?? IDEMPOTENT.has(method),
      options?.signal,
      options?.timeoutMs,
      this.#classify,
    );
    const propagation = this.#config.deadlinePropagation;
    if (propagation.enabled) {
      call.deadlineHeader = propagation.header.toLowerCase();
      call.deadlineAt = Date.now() + this.effectiveTimeout(options?.timeoutMs);
    }
    return call;
  }

  // One function for every call (no per-call closure): judges an attempt for the retry policy
  // and the breaker.
  readonly #classify = (outcome: { error: unknown } | { result: HttpResponse }): AttemptVerdict => {
    if ('result' in outcome) {
      const { statusCode, headers } = outcome.result;
      const failure = this.#failureStatuses[statusCode] === 1;
      if (this.#retryStatuses[statusCode] === 1) {
        return {
          retry: true,
          retryAfterMs: parseRetryAfter(headers['retry-after'], Date.now()),
          failure,
        };
      }
      return failure ? 'failure' : 'success';
    }
    const error = outcome.error;
    // Transport failures (reset, refused, closed) and connect timeouts: nothing (or nothing
    // usable) came back, so an idempotent call may try another connection.
    if (error instanceof UpstreamError) return { retry: true, failure: true };
    if (
      error instanceof TimeoutError &&
      (error.cause as { code?: unknown } | undefined)?.code === 'UND_ERR_CONNECT_TIMEOUT'
    ) {
      return { retry: true, failure: true };
    }
    // A malformed request is the caller's fault, not the upstream's.
    if (error instanceof InvalidArgumentError) return 'success';
    // Timeouts (headers, body, the call's deadline), ResponseTooLargeError, pool errors.
    return 'failure';
  };
}

function checkOrigin(config: HttpResourceConfig): void {
  let url: URL | undefined;
  try {
    url = new URL(config.origin);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new InvalidArgumentError(
      `resources.http.${String(config.name)}.origin must be an http(s) origin, got ${JSON.stringify(config.origin)}`,
    );
  }
}

function checkMethod(method: unknown): string {
  if (typeof method !== 'string' || !/^[A-Za-z]+$/.test(method)) {
    throw new InvalidArgumentError(`method must be an HTTP method name, got ${String(method)}`);
  }
  return method.toUpperCase();
}

/**
 * Creates an {@link HttpResource} from its resolved config.
 * @throws as the {@link HttpResource} constructor.
 */
export function createHttpResource(
  config: HttpResourceConfig,
  options?: HttpResourceOptions,
): HttpResource {
  return new HttpResource(config, options);
}
