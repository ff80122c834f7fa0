import { createServer as createHttpServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';

/**
 * What the upstream does with a request. Every field is optional; `{}` answers 200 with an
 * echo of the request. Steps run in this order: `latency`, then `fault` (if any), then the
 * response (`status`, `headers`, `retryAfter`, then the body after `bodyDelay`).
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
   * The body: a string or Buffer as is, anything else as JSON. Default: an echo of the request
   * as JSON ({@link EchoBody}).
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

/** Options of {@link startUpstream}. */
export interface UpstreamOptions {
  /** Serve HTTPS with this certificate and key (PEM); `ca` + `requestCert` for mutual TLS. */
  tls?: { cert: string; key: string; ca?: string; requestCert?: boolean };
  /** Behaviour for every path without its own; default `{}` (echo). */
  behaviour?: Behaviour | readonly Behaviour[];
  /** Random source in [0, 1) for latency ranges; default `Math.random`. */
  random?: () => number;
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
  /** Requests received so far (all paths), oldest first. */
  readonly requests: {
    readonly count: number;
    readonly log: readonly RequestRecord[];
    /** The requests to one path (query ignored). */
    to(path: string): readonly RequestRecord[];
  };
  /** TCP connections accepted so far: tells reused keep-alive connections from new ones. */
  readonly connections: number;
  /**
   * Sets the behaviour of `path` (exact match on the path, query ignored), or the default
   * behaviour for all other paths when `path` is omitted. An array is a sequence, one step per
   * request, the last repeating; setting a behaviour restarts its sequence.
   */
  setBehaviour(path: string, behaviour: Behaviour | readonly Behaviour[]): void;
  setBehaviour(behaviour: Behaviour | readonly Behaviour[]): void;
  /** Forgets every behaviour (back to echo) and the request log. */
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
 * Starts a fault-injectable HTTP (or HTTPS) upstream on 127.0.0.1 at a free port, for tests and
 * demos of resilient clients: latency (fixed or random), status codes and sequences of them,
 * Retry-After, connection resets before or after the headers, hangs, slow and stalled bodies,
 * large bodies, and by default an echo of the request as JSON.
 *
 * @example
 * const upstream = await startUpstream();
 * upstream.setBehaviour('/flaky', { status: [503, 503, 200], retryAfter: 0 });
 * // ... point a client at upstream.origin ...
 * await upstream.close();
 */
export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  const random = options.random ?? Math.random;
  const log: RequestRecord[] = [];
  const scripts = new Map<string, Script>();
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

  const respond = (
    req: IncomingMessage,
    res: ServerResponse,
    b: Behaviour,
    record: RequestRecord,
  ) => {
    if (b.fault === 'hang') return;
    if (b.fault === 'reset') {
      req.socket.destroy();
      return;
    }
    let body: Buffer;
    let type = 'application/json';
    if (b.bodySize !== undefined) {
      body = Buffer.alloc(b.bodySize, 'x');
      type = 'application/octet-stream';
    } else if (b.body === undefined) {
      const echo: EchoBody = {
        method: record.method,
        path: record.path,
        query: record.query,
        headers: record.headers,
        body: record.body ?? '',
      };
      body = Buffer.from(JSON.stringify(echo));
    } else if (typeof b.body === 'string' || Buffer.isBuffer(b.body)) {
      body = Buffer.isBuffer(b.body) ? b.body : Buffer.from(b.body);
      type = 'text/plain; charset=utf-8';
    } else {
      body = Buffer.from(JSON.stringify(b.body));
    }
    res.statusCode = (b.status as number | undefined) ?? 200;
    res.setHeader('content-type', type);
    if (b.chunked !== true) res.setHeader('content-length', body.length);
    if (b.retryAfter !== undefined) res.setHeader('retry-after', String(b.retryAfter));
    for (const [name, value] of Object.entries(b.headers ?? {})) {
      res.setHeader(name, typeof value === 'number' ? String(value) : (value as string | string[]));
    }
    if (b.fault === 'reset-after-headers') {
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
    log.push(record);
    const s = scripts.get(url.pathname) ?? fallback;
    const b = s.steps[Math.min(s.hits++, s.steps.length - 1)]!;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => {});
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
    if (typeof pathOrBehaviour === 'string') scripts.set(pathOrBehaviour, script(behaviour ?? {}));
    else fallback = script(pathOrBehaviour);
  }

  return {
    url: origin,
    origin,
    port,
    requests: {
      get count() {
        return log.length;
      },
      log,
      to: (path) => log.filter((r) => r.path === path),
    },
    get connections() {
      return connections;
    },
    setBehaviour,
    reset() {
      scripts.clear();
      fallback = script(options.behaviour ?? {});
      log.length = 0;
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
}

/** A listening TCP server that never writes a byte; see {@link startBlackhole}. */
export interface Blackhole {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/**
 * Starts a TCP server on 127.0.0.1 that accepts connections and then stays silent. An HTTPS
 * client's TLS handshake never completes against it, which is how a connect timeout can be
 * provoked on loopback (the kernel completes a plain TCP handshake on its own).
 */
export async function startBlackhole(): Promise<Blackhole> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: NetServer = createNetServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    port,
    get connections() {
      return connections;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
}

/**
 * A port on 127.0.0.1 that nothing listens on (bound then released), so connecting to it is
 * refused at once.
 */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
