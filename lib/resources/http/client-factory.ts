import type { Socket } from 'node:net';
import { Client, buildConnector, errors } from 'undici';
import type { HttpResourceConfig } from '../../config/types.js';
import type { PoolFactory } from '../pool.js';
import { loadTlsMaterial } from '../tls.js';

/**
 * A connector with an exact connect timeout. undici's own connect, headers and body timers are
 * "fast timers" that tick every ~500 ms, so a 100 ms connect timeout would fire after ~1 s;
 * connecting is rare enough that a native timer per connection costs nothing. The timeout
 * covers the TLS handshake too, and fails with undici's `ConnectTimeoutError`.
 */
export function preciseConnector(
  connectTimeoutMs: number,
  options: buildConnector.BuildOptions,
): buildConnector.connector {
  // timeout 0 switches undici's coarse connect timer off; ours replaces it.
  const connect = buildConnector({ ...options, timeout: 0 });
  return (opts, callback) => {
    let settled = false;
    let socket: Socket | undefined;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket?.destroy();
      callback(
        new errors.ConnectTimeoutError(
          `Connect timeout of ${connectTimeoutMs} ms exceeded (${opts.hostname}:${opts.port})`,
        ),
        null,
      );
    }, connectTimeoutMs);
    timer.unref();
    try {
      // The built connector returns its socket although its type says void.
      socket = (connect as unknown as (...args: Parameters<buildConnector.connector>) => Socket)(
        opts,
        (...args) => {
          if (settled) {
            if (args[1] !== null) args[1].destroy();
            return;
          }
          settled = true;
          clearTimeout(timer);
          callback(...args);
        },
      );
    } catch (err) {
      settled = true;
      clearTimeout(timer);
      throw err;
    }
  };
}

/** What the pool factory keeps per member: the connection made by `create()`, until used. */
interface Member {
  parked: Socket | undefined;
}

/**
 * The pool factory of an HTTP resource. Each member is an undici `Client` to the origin with
 * pipelining 1 (one request at a time, so a pool of `max` members is at most `max`
 * connections), the configured headers/body/keep-alive timeouts and TLS options, and the
 * {@link preciseConnector}.
 *
 * `create()` connects before it resolves (undici connects lazily on the first request): a
 * member is a warm connection, `pool.min` keeps that many connections open, and an unreachable
 * or misconfigured upstream (refused, connect timeout, bad certificate) fails `create()` —
 * which puts the pool into its failing state, where acquires fail fast with
 * `ResourceUnavailableError` instead of each call waiting out a connect timeout. The
 * connection is handed to the client on its first connect; later reconnects dial anew.
 *
 * `validate` refuses closed or destroyed clients; `destroy` destroys the client (and a
 * connection it never used).
 *
 * @throws ConfigError when a TLS file cannot be read (see {@link loadTlsMaterial}).
 */
export function createClientFactory(config: HttpResourceConfig): PoolFactory<Client> {
  const url = new URL(config.origin);
  const tls = loadTlsMaterial(`resources.http.${config.name}.tls`, config.tls);
  const connect = preciseConnector(config.timeouts.connect, {
    ...(tls.ca !== undefined && { ca: tls.ca }),
    ...(tls.cert !== undefined && { cert: tls.cert }),
    ...(tls.key !== undefined && { key: tls.key }),
    rejectUnauthorized: config.tls.rejectUnauthorized,
    ...(config.tls.servername !== undefined && { servername: config.tls.servername }),
  });
  const members = new WeakMap<Client, Member>();
  const target: buildConnector.Options = {
    protocol: url.protocol,
    host: url.host,
    // undici strips an IPv6 literal's brackets before dialling; so must we.
    hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    port: url.port,
    ...(config.tls.servername !== undefined && { servername: config.tls.servername }),
  };

  const client = (socket: Socket): Client => {
    // Parked connections must not keep the process alive (undici unrefs its idle ones too).
    socket.unref();
    const member: Member = { parked: socket };
    const c = new Client(config.origin, {
      pipelining: 1,
      headersTimeout: config.timeouts.headers,
      bodyTimeout: config.timeouts.body,
      keepAliveTimeout: config.keepAlive.timeout,
      keepAliveMaxTimeout: config.keepAlive.maxTimeout,
      connect: (opts, callback) => {
        const parked = member.parked;
        member.parked = undefined;
        if (parked !== undefined && !parked.destroyed && parked.readyState === 'open') {
          parked.ref();
          // Asynchronously, like a real connect: undici expects the callback after it returns.
          process.nextTick(callback, null, parked);
          return;
        }
        parked?.destroy();
        connect(opts, callback);
      },
    });
    members.set(c, member);
    return c;
  };

  return {
    create: () =>
      new Promise<Client>((resolve, reject) => {
        connect(target, (err, socket) => {
          if (err !== null) reject(err);
          else resolve(client(socket));
        });
      }),
    destroy: async (c) => {
      const member = members.get(c);
      member?.parked?.destroy();
      if (member !== undefined) member.parked = undefined;
      await c.destroy();
    },
    validate: (c) => !c.closed && !c.destroyed,
  };
}
