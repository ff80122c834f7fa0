import type { IncomingHttpHeaders } from 'node:http';
import type { Client, Dispatcher } from 'undici';
import {
  InvalidArgumentError,
  ResponseTooLargeError,
  TimeoutError,
  UpstreamError,
} from '../../errors.js';
import type { AbortSource } from '../abort-source.js';

/**
 * An upstream's answer, body fully read. Headers have lower-case names; a repeated header is
 * an array.
 */
export class HttpResponse {
  constructor(
    /** The upstream's status code. */
    readonly statusCode: number,
    readonly headers: Record<string, string | string[] | undefined>,
    /** The whole body (empty for HEAD, 204 and 304). */
    readonly body: Buffer,
  ) {}

  /** The body decoded as UTF-8. */
  text(): string {
    return this.body.toString('utf8');
  }

  /**
   * The body parsed as JSON (not validated against `T`).
   * @throws SyntaxError when the body is not JSON.
   */
  json<T = unknown>(): T {
    return JSON.parse(this.body.toString('utf8')) as T;
  }
}

/**
 * Where an exchange delivers its outcome, exactly once: a pooled resource's attempt, or the
 * functions of the promise {@link exchange} returns. Called from undici's callbacks.
 */
export interface ExchangeOutcome {
  succeed(response: HttpResponse): void;
  fail(error: unknown): void;
}

/** What one exchange enforces; fixed per resource. */
export interface ExchangeLimits {
  /** The resource's name, for error messages. */
  resource: string;
  /** Milliseconds from the request being written until the response headers. */
  headersMs: number;
  /** Longest gap between body chunks, in milliseconds (from the headers to the first one too). */
  bodyMs: number;
  /** Largest body accepted, in bytes; 0 = unlimited. */
  maxResponseSize: number;
}

const HEADERS = 0;
const BODY = 1;
const DONE = 2;

/**
 * One request on one borrowed client, as an undici dispatch handler: no Readable stream, no
 * AbortController, no closure; the body is gathered chunk by chunk (bounded by `maxResponseSize`), so
 * every response is consumed to its end and its connection can be reused.
 *
 * The headers and body timeouts are enforced here with one native timer per exchange (undici
 * enforces the same values too, but its timers tick every ~500 ms — see `preciseConnector`).
 * The timer is armed once, for the headers; the body's deadline moves with every chunk, and is
 * checked when the timer fires (which re-arms it for the rest) rather than by re-arming the
 * timer per chunk — so a response that arrives at once costs one timer.
 * Any failure settles the exchange and destroys its connection: undici aborts the socket of an
 * aborted request, and a caller's abort before the request started destroys the client.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private phase = HEADERS;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the timer fires (epoch ms). */
  private timerDue = 0;
  /** When the body last made progress (the headers, then each chunk), epoch ms. */
  private lastProgress = 0;
  private controller: Dispatcher.DispatchController | undefined;
  /** Why the exchange was aborted; wins over whatever error undici reports afterwards. */
  private failure: unknown = undefined;
  private statusCode = 0;
  private headers: IncomingHttpHeaders | undefined;
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly client: Client,
    private readonly method: string,
    private readonly path: string,
    private readonly limits: ExchangeLimits,
    private readonly signal: AbortSource | undefined,
    private readonly outcome: ExchangeOutcome,
  ) {}

  /** The signal's abort listener (an object listener: no closure per exchange). */
  handleEvent(): void {
    this.abort(this.signal!.reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.failure !== undefined) {
      controller.abort(this.failure as Error);
      return;
    }
    this.arm(this.limits.headersMs, Date.now());
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    // Informational (1xx) heads precede the real one.
    if (statusCode < 200 || this.phase !== HEADERS) return;
    this.phase = BODY;
    this.statusCode = statusCode;
    this.headers = headers;
    const max = this.limits.maxResponseSize;
    const declared = headers['content-length'];
    // A HEAD (or 204/304) response announces a length it does not send.
    if (
      max > 0 &&
      typeof declared === 'string' &&
      Number(declared) > max &&
      this.method !== 'HEAD' &&
      statusCode !== 204 &&
      statusCode !== 304
    ) {
      this.abort(this.tooLarge(Number(declared)));
      return;
    }
    const now = Date.now();
    this.lastProgress = now;
    // The headers' timer usually fires after the body's first deadline; it is then checked and
    // re-armed when it fires. Only a body timeout shorter than that needs a new timer now.
    if (now + this.limits.bodyMs < this.timerDue) {
      clearTimeout(this.timer);
      this.arm(this.limits.bodyMs, now);
    }
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.phase !== BODY) return;
    this.size += chunk.length;
    const max = this.limits.maxResponseSize;
    if (max > 0 && this.size > max) {
      this.abort(this.tooLarge(this.size));
      return;
    }
    this.chunks.push(chunk);
    this.lastProgress = Date.now();
  }

  onResponseEnd(): void {
    if (this.phase === DONE) return;
    this.finish();
    const { chunks } = this;
    const body =
      chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, chunks.length === 0 ? 0 : this.size);
    this.outcome.succeed(
      new HttpResponse(
        this.statusCode,
        this.headers as Record<string, string | string[] | undefined>,
        body,
      ),
    );
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.phase === DONE) return;
    this.finish();
    this.outcome.fail(this.failure ?? this.mapError(error));
  }

  /** Aborts with `reason`; the settlement comes through onResponseError. */
  abort(reason: unknown): void {
    if (this.phase === DONE || this.failure !== undefined) return;
    this.failure = reason ?? new Error('aborted');
    if (this.controller !== undefined) this.controller.abort(this.failure as Error);
    // Not started yet (still queued or connecting): the client is ours alone, so destroying it
    // fails just this request, with this reason.
    else void this.client.destroy(this.failure as Error).catch(() => {});
  }

  timedOut(): void {
    this.timer = undefined;
    if (this.phase === DONE) return;
    if (this.phase === BODY) {
      const now = Date.now();
      const left = this.lastProgress + this.limits.bodyMs - now;
      if (left > 0) {
        this.arm(left, now);
        return;
      }
    }
    const headers = this.phase === HEADERS;
    const ms = headers ? this.limits.headersMs : this.limits.bodyMs;
    const kind = headers ? 'headers' : 'body';
    this.abort(
      new TimeoutError(
        `HTTP resource "${this.limits.resource}": ${kind} timeout of ${ms} ms exceeded (${this.method} ${this.path})`,
        { timeoutMs: ms },
      ),
    );
  }

  private arm(ms: number, now: number): void {
    this.timerDue = now + ms;
    this.timer = setTimeout(onTimer, ms, this);
    this.timer.unref();
  }

  private finish(): void {
    this.phase = DONE;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.signal?.removeEventListener('abort', this);
  }

  private tooLarge(size: number): ResponseTooLargeError {
    return new ResponseTooLargeError(
      `HTTP resource "${this.limits.resource}": response body of ${size}+ bytes exceeds maxResponseSize ${this.limits.maxResponseSize} (${this.method} ${this.path})`,
    );
  }

  private mapError(error: Error): Error {
    const code = (error as { code?: unknown }).code;
    const what = `HTTP resource "${this.limits.resource}"`;
    // undici's own (coarse) timers as a backstop, and our precise connect timeout.
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      const headers = code === 'UND_ERR_HEADERS_TIMEOUT';
      const ms = headers ? this.limits.headersMs : this.limits.bodyMs;
      return new TimeoutError(
        `${what}: ${headers ? 'headers' : 'body'} timeout of ${ms} ms exceeded (${this.method} ${this.path})`,
        { timeoutMs: ms, cause: error },
      );
    }
    // undici refused the request before sending it: a caller's mistake (a malformed header).
    if (code === 'UND_ERR_INVALID_ARG') {
      return new InvalidArgumentError(`${what}: ${this.method} ${this.path}: ${error.message}`, {
        cause: error,
      });
    }
    if (code === 'UND_ERR_CONNECT_TIMEOUT') {
      return new TimeoutError(`${what}: connect timeout exceeded: ${error.message}`, {
        cause: error,
      });
    }
    return new UpstreamError(`${what}: ${this.method} ${this.path} failed: ${error.message}`, {
      cause: error,
    });
  }
}

function onTimer(exchange: Exchange): void {
  exchange.timedOut();
}

/** One request to send with {@link exchange}. */
export interface ExchangeRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  /** The path without its query, for error messages (queries may carry tokens). */
  label: string;
  headers: Record<string, string | string[]>;
  body: string | Buffer | Uint8Array | null;
}

/**
 * Sends `request` on `client` and gathers the whole response.
 *
 * Rejects with a `TimeoutError` naming the timeout (`connect`, `headers` or `body`), a
 * `ResponseTooLargeError`, `signal.reason` when `signal` aborts (an AbortSignal, or a pooled
 * resource's attempt), or an `UpstreamError` whose `cause` is undici's error for any other
 * transport failure (reset, refused, closed). After a rejection the client's connection is
 * gone; the pool should destroy the client.
 */
export function exchange(
  client: Client,
  request: ExchangeRequest,
  limits: ExchangeLimits,
  signal?: AbortSource,
): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    startExchange(client, request, limits, signal, { succeed: resolve, fail: reject });
  });
}

/**
 * {@link exchange} without a promise: tells `outcome` (once, from undici's callbacks, or at
 * once when `signal` has already aborted). A pooled resource's attempt is both the signal and
 * the outcome, so an HTTP call makes neither a promise nor a closure for its exchange.
 */
export function startExchange(
  client: Client,
  request: ExchangeRequest,
  limits: ExchangeLimits,
  signal: AbortSource | undefined,
  outcome: ExchangeOutcome,
): void {
  if (signal?.aborted) {
    outcome.fail(signal.reason);
    return;
  }
  const handler = new Exchange(client, request.method, request.label, limits, signal, outcome);
  signal?.addEventListener('abort', handler);
  client.dispatch(
    {
      method: request.method as Dispatcher.HttpMethod,
      path: request.path,
      headers: request.headers,
      body: request.body,
    },
    handler,
  );
}
