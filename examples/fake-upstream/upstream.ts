import { createServer as createHttpServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { handleAdmin } from './admin.js';

/**
 * What the upstream does with a request. Every field is optional; `{}` answers 200 with the
 * backend's answer (or an echo of the request when there is no backend). Steps run in this
 * order: `latency`, then `fault` (if any), then `errorRate`, then the response (`status`,
 * `headers`, `retryAfter`, then the body after `bodyDelay`).
 */
export interface Behaviour {
  /** Milliseconds before anything happens; `{ min, max }` draws uniformly (see `random`). */
  latency?: number | { min: number; max: number };
  /**
   * `reset`: destroy the socket before any byte of a response (the client sees ECONNRESET or
   * "other side closed"). `reset-after-headers`: send the headers and half the body, then
   * destroy the socket. `hang`: never answer; the socket stays open until the client gives up
   * or the upstream closes.
   */
  fault?: 'reset' | 'reset-after-headers' | 'hang';
  /** Share of requests, in [0, 1], that get `fault`; default 1 (all of them). */
  faultRate?: number;
  /**
   * Share of requests, in [0, 1], answered with `errorStatus` (and a small JSON error body)
   * instead of the normal response; default 0.
   */
  errorRate?: number;
  /** Status of the `errorRate` answers; default 503. */
  errorStatus?: number;
  /**
   * Status code, default 200. An array is a sequence, one entry per request to this
   * behaviour, the last one repeating: `[503, 503, 200]` fails twice, then succeeds.
   */
  status?: number | readonly number[];
  /** Extra response headers. */
  headers?: Readonly<Record<string, string | number | readonly string[]>>;
  /** A `Retry-After` header: delay-seconds or an HTTP date. */
  retryAfter?: number | string;
  /**
   * The body: a string or Buffer as is, anything else as JSON. Default: the backend's answer, or
   * an echo of the request as JSON ({@link EchoBody}).
   */
  body?: unknown;
  /** Answer with this many bytes of `x` instead of `body` (a large body). */
  bodySize?: number;
  /**
   * Milliseconds between the headers and the body (a slow body). `Infinity` sends the headers
   * (with the body's Content-Length) and then nothing: the body stalls until the client gives up.
   */
  bodyDelay?: number;
  /** Send the body without a Content-Length (chunked), so its size is unknown in advance. */
  chunked?: boolean;
}

/** The JSON body of the default (echo) behaviour. */
export interface EchoBody {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request the upstream received, logged when it arrived (before any behaviour ran). */
export interface RequestRecord {
  method: string;
  /** The request target as sent, query included. */
  url: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: IncomingHttpHeaders;
  /** The request body, once fully received (undefined before, or when the request was cut). */
  body: string | undefined;
}

/** What a {@link Backend} answers: a status, a body (JSON unless a string) and headers. */
export interface Reply {
  status: number;
  body?: unknown;
  headers?: Readonly<Record<string, string>>;
}

/**
 * The upstream's application: answers requests whose behaviour sets none of `status`, `body`
 * and `bodySize`. Returning `undefined` falls back to the echo.
 */
export type Backend = (request: RequestRecord) => Reply | undefined;

/** One step of a {@link Upstream.schedule}: a behaviour that holds for `duration` ms. */
export interface ScheduleStep {
  duration: number;
  behaviour: Behaviour | readonly Behaviour[];
}

/** A schedule as installed, with absolute times (epoch milliseconds). */
export interface ScheduleInfo {
  /** The path pattern it applies to, or `null` for every path without its own. */
  path: string | null;
  startsAt: number;
  endsAt: number;
  steps: { from: number; until: number; behaviour: Behaviour | readonly Behaviour[] }[];
}

/** Options of {@link startUpstream}. */
export interface UpstreamOptions {
  /** Serve HTTPS with this certificate and key (PEM); `ca` + `requestCert` for mutual TLS. */
  tls?: { cert: string; key: string; ca?: string; requestCert?: boolean };
  /** Behaviour for every path without its own; default `{}`. */
  behaviour?: Behaviour | readonly Behaviour[];
  /** Answers requests whose behaviour does not fix the response; default: an echo. */
  backend?: Backend;
  /**
   * Serve the admin API ({@link handleAdmin}) under this path prefix, e.g. `/__admin`; its
   * requests are neither logged nor subject to behaviours. Default: no admin API.
   */
  admin?: string;
  /** Random source in [0, 1) for latency ranges and rates; default `Math.random`. */
  random?: () => number;
  /** Clock for schedules (epoch milliseconds); default `Date.now`. */
  now?: () => number;
  /** Requests kept in the log (oldest dropped first); default unlimited. `count` is exact. */
  logLimit?: number;
  /** Port to listen on; default 0 (a free port). */
  port?: number;
}

/** A running upstream; see {@link startUpstream}. */
export interface Upstream {
  /** `http://127.0.0.1:<port>` (or `https://`). */
  readonly url: string;
  /** The same as `url`: the origin, without a trailing slash. */
  readonly origin: string;
  readonly port: number;
  /** Requests received so far (all paths, admin API excluded), oldest first. */
  readonly requests: {
    /** Every request received, even those dropped from `log` by `logLimit`. */
    readonly count: number;
    readonly log: readonly RequestRecord[];
    /** The logged requests to one path (query ignored). */
    to(path: string): readonly RequestRecord[];
  };
  /** TCP connections accepted so far: tells reused keep-alive connections from new ones. */
  readonly connections: number;
  /**
   * Sets the behaviour of `path`, or the default behaviour for all other paths when `path` is
   * omitted. `path` matches exactly (query ignored), or as a prefix when it ends in `/*`
   * (`/orders/*` matches `/orders/7`; the longest prefix wins, an exact path before any). An
   * array is a sequence, one step per request, the last repeating; setting a behaviour restarts
   * its sequence.
   */
  setBehaviour(path: string, behaviour: Behaviour | readonly Behaviour[]): void;
  setBehaviour(behaviour: Behaviour | readonly Behaviour[]): void;
  /**
   * Installs a timed schedule of behaviours for `path` (a pattern as in `setBehaviour`) or, by
   * default, for every path: after `startIn` ms, each step holds for its `duration`; when the
   * last one ends, the ordinary behaviours apply again. While a step holds it wins over
   * `setBehaviour`. A new schedule for the same path replaces the old one.
   *
   * @example
   * // healthy for 10 s, then every call fails for 10 s, then recover
   * upstream.schedule([{ duration: 10_000, behaviour: {} }, { duration: 10_000, behaviour: { status: 503 } }]);
   */
  schedule(
    steps: readonly ScheduleStep[],
    options?: { path?: string; startIn?: number },
  ): ScheduleInfo;
  /** The schedules not yet over. */
  schedules(): ScheduleInfo[];
  /** The behaviours set, by path pattern (`*` for the default). */
  behaviours(): Record<string, readonly Behaviour[]>;
  /** Forgets every behaviour and schedule (back to the defaults) and the request log. */
  reset(): void;
  /**
   * Destroys every open connection (idle keep-alive ones included) but keeps listening, as a
   * restarting server or a load balancer dropping connections would.
   */
  dropConnections(): void;
  /** Destroys every socket (keep-alive and hanging ones included) and stops listening. */
  close(): Promise<void>;
}

interface Script {
  steps: readonly Behaviour[];
  hits: number;
}

interface Schedule {
  info: ScheduleInfo;
  scripts: Script[];
}

function script(behaviour: Behaviour | readonly Behaviour[]): Script {
  const list: readonly Behaviour[] = Array.isArray(behaviour)
    ? (behaviour as readonly Behaviour[])
    : [behaviour as Behaviour];
  // A status sequence is sugar for a sequence of behaviours that differ only in status.
  const steps = list.flatMap((b) =>
    Array.isArray(b.status)
      ? (b.status as readonly number[]).map((status) => ({ ...b, status }))
      : [b],
  );
  if (steps.length === 0) throw new Error('a behaviour sequence needs at least one step');
  return { steps, hits: 0 };
}

function queryOf(params: URLSearchParams): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const [key, value] of params) {
    const prev = query[key];
    query[key] =
      prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return query;
}

/**
 * Path-pattern lookup: exact paths first, then the longest `/*` prefix. The table is small
 * (a few patterns), so a linear scan of prefixes is fine.
 */
class PatternMap<V> {
  private readonly exact = new Map<string, V>();
  private prefixes: [string, V][] = [];

  set(pattern: string, value: V): void {
    if (pattern.endsWith('/*')) {
      const prefix = pattern.slice(0, -1);
      this.prefixes = this.prefixes.filter(([p]) => p !== prefix);
      this.prefixes.push([prefix, value]);
      this.prefixes.sort((a, b) => b[0].length - a[0].length);
    } else {
      this.exact.set(pattern, value);
    }
  }

  get(path: string): V | undefined {
    const found = this.exact.get(path);
    if (found !== undefined) return found;
    for (const [prefix, value] of this.prefixes) if (path.startsWith(prefix)) return value;
    return undefined;
  }

  delete(pattern: string): void {
    if (pattern.endsWith('/*')) {
      const prefix = pattern.slice(0, -1);
      this.prefixes = this.prefixes.filter(([p]) => p !== prefix);
    } else {
      this.exact.delete(pattern);
    }
  }

  entries(): [string, V][] {
    return [...this.exact, ...this.prefixes.map(([p, v]): [string, V] => [`${p}*`, v])];
  }

  clear(): void {
    this.exact.clear();
    this.prefixes = [];
  }
}

function checkRate(name: string, value: number | undefined): void {
  if (value !== undefined && !(value >= 0 && value <= 1)) {
    throw new RangeError(`${name} must be between 0 and 1, got ${value}`);
  }
}

function checkBehaviours(behaviour: Behaviour | readonly Behaviour[]): void {
  const list = Array.isArray(behaviour) ? behaviour : [behaviour];
  for (const b of list as readonly Behaviour[]) {
    checkRate('errorRate', b.errorRate);
    checkRate('faultRate', b.faultRate);
  }
}

/**
 * Starts a fault-injectable HTTP (or HTTPS) upstream on 127.0.0.1 at a free port, for tests,
 * demos and load tests of resilient clients: latency (fixed or random), error rates, status
 * codes and sequences of them, Retry-After, connection resets before or after the headers,
 * hangs, slow and stalled bodies, large bodies, timed schedules of all these, and by default an
 * echo of the request as JSON (or the answers of a {@link Backend}).
 *
 * @example
 * const upstream = await startUpstream();
 * upstream.setBehaviour('/flaky', { status: [503, 503, 200], retryAfter: 0 });
 * // ... point a client at upstream.origin ...
 * await upstream.close();
 */
export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const logLimit = options.logLimit ?? Infinity;
  const adminPrefix = options.admin;
  const log: RequestRecord[] = [];
  let received = 0;
  const scripts = new PatternMap<Script>();
  const timed = new PatternMap<Schedule>();
  let timedDefault: Schedule | undefined;
  if (options.behaviour !== undefined) checkBehaviours(options.behaviour);
  let fallback = script(options.behaviour ?? {});
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let connections = 0;
  let closed: Promise<void> | undefined;

  // Timers die with the request (client gave up) or with the upstream, never fire late.
  const later = (res: ServerResponse, ms: number, fn: () => void): void => {
    if (ms === Infinity) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!res.destroyed) fn();
    }, ms);
    timers.add(timer);
    res.once('close', () => {
      clearTimeout(timer);
      timers.delete(timer);
    });
  };

  const delayOf = (latency: Behaviour['latency']): number => {
    if (latency === undefined) return 0;
    if (typeof latency === 'number') return latency;
    return latency.min + (latency.max - latency.min) * random();
  };

  // A schedule step in force at `t` for `path`, if any; schedules that are over are dropped.
  const scheduledScript = (path: string, t: number): Script | undefined => {
    const pick = (s: Schedule | undefined): Script | undefined => {
      if (s === undefined || t < s.info.startsAt || t >= s.info.endsAt) return undefined;
      const i = s.info.steps.findIndex((step) => t >= step.from && t < step.until);
      return i < 0 ? undefined : s.scripts[i];
    };
    const forPath = timed.get(path);
    if (forPath !== undefined && t >= forPath.info.endsAt && forPath.info.path !== null) {
      timed.delete(forPath.info.path);
    }
    if (timedDefault !== undefined && t >= timedDefault.info.endsAt) timedDefault = undefined;
    return pick(forPath) ?? pick(timedDefault);
  };

  const respond = (
    req: IncomingMessage,
    res: ServerResponse,
    b: Behaviour,
    record: RequestRecord,
  ) => {
    const faulty = b.fault !== undefined && (b.faultRate === undefined || random() < b.faultRate);
    if (faulty && b.fault === 'hang') return;
    if (faulty && b.fault === 'reset') {
      req.socket.destroy();
      return;
    }
    let status = (b.status as number | undefined) ?? 200;
    let extraHeaders: Readonly<Record<string, string | number | readonly string[]>> =
      b.headers ?? {};
    let body: Buffer;
    let type = 'application/json';
    if (b.errorRate !== undefined && b.errorRate > 0 && random() < b.errorRate) {
      status = b.errorStatus ?? 503;
      body = Buffer.from(JSON.stringify({ error: 'injected failure', status }));
    } else if (b.bodySize !== undefined) {
      body = Buffer.alloc(b.bodySize, 'x');
      type = 'application/octet-stream';
    } else if (b.body !== undefined) {
      if (typeof b.body === 'string' || Buffer.isBuffer(b.body)) {
        body = Buffer.isBuffer(b.body) ? b.body : Buffer.from(b.body);
        type = 'text/plain; charset=utf-8';
      } else {
        body = Buffer.from(JSON.stringify(b.body));
      }
    } else {
      const reply = b.status === undefined ? options.backend?.(record) : undefined;
      if (reply !== undefined) {
        status = reply.status;
        extraHeaders = { ...reply.headers, ...b.headers };
        if (typeof reply.body === 'string') {
          body = Buffer.from(reply.body);
          type = 'text/plain; charset=utf-8';
        } else {
          body = Buffer.from(reply.body === undefined ? '' : JSON.stringify(reply.body));
        }
      } else {
        const echo: EchoBody = {
          method: record.method,
          path: record.path,
          query: record.query,
          headers: record.headers,
          body: record.body ?? '',
        };
        body = Buffer.from(JSON.stringify(echo));
      }
    }
    res.statusCode = status;
    res.setHeader('content-type', type);
    if (b.chunked !== true) res.setHeader('content-length', body.length);
    if (b.retryAfter !== undefined) res.setHeader('retry-after', String(b.retryAfter));
    for (const [name, value] of Object.entries(extraHeaders)) {
      res.setHeader(name, typeof value === 'number' ? String(value) : (value as string | string[]));
    }
    if (faulty && b.fault === 'reset-after-headers') {
      res.flushHeaders();
      res.write(body.subarray(0, body.length >> 1), () => req.socket.destroy());
      return;
    }
    if (b.bodyDelay === undefined || req.method === 'HEAD') {
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    res.flushHeaders();
    later(res, b.bodyDelay, () => res.end(body));
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const record: RequestRecord = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      path: url.pathname,
      query: queryOf(url.searchParams),
      headers: req.headers,
      body: undefined,
    };
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => {});
    if (
      adminPrefix !== undefined &&
      (url.pathname === adminPrefix || url.pathname.startsWith(`${adminPrefix}/`))
    ) {
      req.on('end', () => {
        const path = url.pathname.slice(adminPrefix.length) || '/';
        handleAdmin(upstream, path, req.method ?? 'GET', Buffer.concat(chunks), res);
      });
      return;
    }
    received++;
    log.push(record);
    // Trim in batches so a bounded log costs O(1) amortised per request.
    if (log.length > logLimit * 2) log.splice(0, log.length - logLimit);
    const s = scheduledScript(url.pathname, now()) ?? scripts.get(url.pathname) ?? fallback;
    const b = s.steps[Math.min(s.hits++, s.steps.length - 1)]!;
    req.on('end', () => {
      record.body = Buffer.concat(chunks).toString('utf8');
      const delay = delayOf(b.latency);
      if (delay > 0) later(res, delay, () => respond(req, res, b, record));
      else respond(req, res, b, record);
    });
  };

  const server: Server = options.tls
    ? createHttpsServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          ca: options.tls.ca,
          requestCert: options.tls.requestCert ?? false,
          rejectUnauthorized: options.tls.requestCert ?? false,
        },
        handler,
      )
    : createHttpServer(handler);
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // A TLS handshake a test makes fail on purpose must not crash the process.
  server.on('tlsClientError', () => {});
  server.on('clientError', (_err, socket: Socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const origin = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  function setBehaviour(
    pathOrBehaviour: string | Behaviour | readonly Behaviour[],
    behaviour?: Behaviour | readonly Behaviour[],
  ): void {
    if (typeof pathOrBehaviour === 'string') {
      checkBehaviours(behaviour ?? {});
      scripts.set(pathOrBehaviour, script(behaviour ?? {}));
    } else {
      checkBehaviours(pathOrBehaviour);
      fallback = script(pathOrBehaviour);
    }
  }

  const upstream: Upstream = {
    url: origin,
    origin,
    port,
    requests: {
      get count() {
        return received;
      },
      log,
      to: (path) => log.filter((r) => r.path === path),
    },
    get connections() {
      return connections;
    },
    setBehaviour,
    schedule(steps, scheduleOptions = {}) {
      if (steps.length === 0) throw new Error('a schedule needs at least one step');
      const startIn = scheduleOptions.startIn ?? 0;
      if (!(startIn >= 0)) throw new RangeError(`startIn must be >= 0, got ${startIn}`);
      let at = now() + startIn;
      const info: ScheduleInfo = {
        path: scheduleOptions.path ?? null,
        startsAt: at,
        endsAt: at,
        steps: [],
      };
      for (const step of steps) {
        if (!(step.duration > 0)) {
          throw new RangeError(`a step's duration must be > 0, got ${step.duration}`);
        }
        checkBehaviours(step.behaviour);
        info.steps.push({ from: at, until: at + step.duration, behaviour: step.behaviour });
        at += step.duration;
      }
      info.endsAt = at;
      const entry: Schedule = { info, scripts: steps.map((step) => script(step.behaviour)) };
      if (info.path === null) timedDefault = entry;
      else timed.set(info.path, entry);
      return info;
    },
    schedules() {
      const t = now();
      const all = [...timed.entries().map(([, s]) => s), ...(timedDefault ? [timedDefault] : [])];
      return all.filter((s) => s.info.endsAt > t).map((s) => s.info);
    },
    behaviours() {
      const out: Record<string, readonly Behaviour[]> = { '*': fallback.steps };
      for (const [pattern, s] of scripts.entries()) out[pattern] = s.steps;
      return out;
    },
    reset() {
      scripts.clear();
      timed.clear();
      timedDefault = undefined;
      fallback = script(options.behaviour ?? {});
      log.length = 0;
      received = 0;
    },
    dropConnections() {
      for (const socket of sockets) socket.destroy();
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
  return upstream;
}
