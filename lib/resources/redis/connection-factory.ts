import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis } from 'ioredis';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import type { RedisResourceConfig } from '../../config/types.js';
import type { PoolFactory } from '../pool.js';
import { loadTlsMaterial } from '../tls.js';
import { redactRedisError } from './errors.js';

/** A pool member of a Redis resource: one connection (standalone, sentinel) or one cluster client. */
export type RedisConnection = Redis | Cluster;

/** Reconnect delays: 50 ms doubling per attempt, capped at 2 s; reconnects never stop. */
export function reconnectDelay(attempt: number): number {
  const delay = 50 * 2 ** Math.min(attempt - 1, 10);
  return delay < 2000 ? delay : 2000;
}

// READONLY: this connection still points at a master that a failover demoted. Reconnecting
// asks the sentinels for the current master; 2 also resends the command (ioredis's contract)
// when the offline queue can hold it until the new connection is ready.
function reconnectOnError(error: Error): 2 | false {
  return error.message.startsWith('READONLY') ? 2 : false;
}

/** TLS options of a Redis resource, PEM files read now (so a missing file fails at start-up). */
function tlsOptions(config: RedisResourceConfig, implied: boolean): ConnectionOptions | undefined {
  const { tls } = config;
  if (!tls.enabled && !implied) return undefined;
  const options: ConnectionOptions = { rejectUnauthorized: tls.rejectUnauthorized };
  const { ca, cert, key } = loadTlsMaterial(`resources.redis.${config.name}.tls`, tls);
  if (ca !== undefined) options.ca = ca;
  if (cert !== undefined) options.cert = cert;
  if (key !== undefined) options.key = key;
  if (tls.servername !== undefined) options.servername = tls.servername;
  return options;
}

/** Where and as whom to connect: `url` when set, else host/port/username/password/db. */
interface Target {
  host: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  db: number;
  tls: boolean;
}

function target(config: RedisResourceConfig): Target {
  if (config.url === undefined) {
    return {
      host: config.host,
      port: config.port,
      username: config.username,
      password: config.password,
      db: config.db,
      tls: false,
    };
  }
  const url = new URL(config.url);
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  return {
    host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    port: url.port === '' ? 6379 : Number(url.port),
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    db: Number.isInteger(db) ? db : 0,
    tls: url.protocol === 'rediss:',
  };
}

/**
 * Where a Redis resource connects, safe for logs, errors and health details: never a password
 * or a URL with credentials. `127.0.0.1:6379/0`, `sentinel mymaster@h1:26379,h2:26379`,
 * `cluster h1:7000,h2:7000`.
 */
export function describeRedisTarget(config: RedisResourceConfig): string {
  const list = (nodes: readonly { host: string; port: number }[]) =>
    nodes.map((n) => `${n.host}:${n.port}`).join(',');
  if (config.mode === 'sentinel') return `sentinel ${config.masterName}@${list(config.sentinels)}`;
  if (config.mode === 'cluster') return `cluster ${list(config.nodes)}`;
  const t = target(config);
  return `${t.host}:${t.port}/${t.db}`;
}

/**
 * The ioredis options of every member (for a cluster: of each node connection). Fail fast,
 * never hang: commands time out after `commandTimeout`; the offline queue is off unless
 * `offlineQueue > 0`; in-flight commands fail when their connection drops (after one reconnect
 * attempt when the offline queue is on, so a command resent on READONLY survives the switch to
 * the new master); reconnects continue in the background (capped backoff) and never block a
 * caller. `lazyConnect`, so `create()` can await `connect()`.
 */
export function redisOptions(config: RedisResourceConfig): RedisOptions {
  const t = target(config);
  const offlineQueue = config.offlineQueue > 0;
  const options: RedisOptions = {
    lazyConnect: true,
    connectTimeout: config.connectTimeout,
    commandTimeout: config.commandTimeout,
    enableOfflineQueue: offlineQueue,
    maxRetriesPerRequest: offlineQueue ? 1 : 0,
    retryStrategy: reconnectDelay,
    reconnectOnError,
    keyPrefix: config.keyPrefix === '' ? undefined : config.keyPrefix,
    username: t.username,
    password: t.password,
    db: t.db,
  };
  const tls = tlsOptions(config, t.tls);
  if (tls !== undefined) options.tls = tls;
  if (config.mode === 'standalone') {
    options.host = t.host;
    options.port = t.port;
  } else if (config.mode === 'sentinel') {
    options.sentinels = config.sentinels.map(({ host, port }) => ({ host, port }));
    options.name = config.masterName;
    options.role = 'master';
    options.sentinelPassword = config.sentinelPassword;
    options.sentinelCommandTimeout = config.commandTimeout;
    options.sentinelRetryStrategy = reconnectDelay;
    if (tls !== undefined) options.enableTLSForSentinelMode = true;
  }
  return options;
}

/** The ioredis `Cluster` options: the node options above, and the same fail-fast rules. */
export function clusterOptions(config: RedisResourceConfig): ClusterOptions {
  const {
    host: _host,
    port: _port,
    retryStrategy: _retry,
    enableOfflineQueue: _queue,
    keyPrefix,
    lazyConnect: _lazy,
    db: _db,
    ...node
  } = redisOptions(config);
  return {
    lazyConnect: true,
    enableOfflineQueue: config.offlineQueue > 0,
    clusterRetryStrategy: reconnectDelay,
    keyPrefix,
    slotsRefreshTimeout: config.connectTimeout,
    redisOptions: node,
  };
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The pool factory of a Redis resource: each member is an ioredis `Redis` (standalone, or
 * sentinel-resolved master) or `Cluster`, built from {@link redisOptions}.
 *
 * - `create()` connects before it resolves, within `connectTimeout` (resolving the master
 *   through the sentinels, or the cluster's slot map, included) and rejects with an error
 *   naming the target (never its credentials) and the connection error; the half-made client
 *   is disconnected so it does not keep reconnecting.
 * - `validate()` accepts members whose status is `ready` only: a member that lost its
 *   connection is destroyed on borrow rather than handed out to fail.
 * - `destroy()` disconnects at once (`QUIT` could wait on a dead server).
 *
 * @throws ConfigError when a TLS file cannot be read.
 */
export function createRedisFactory(config: RedisResourceConfig): PoolFactory<RedisConnection> {
  const where = `Redis resource "${config.name}" (${describeRedisTarget(config)})`;
  const make: () => RedisConnection =
    config.mode === 'cluster'
      ? (() => {
          const nodes = config.nodes.map(({ host, port }) => ({ host, port }));
          const options = clusterOptions(config);
          return () => new Cluster(nodes, options);
        })()
      : (() => {
          const options = redisOptions(config);
          return () => new Redis(options);
        })();
  return {
    create: () =>
      new Promise<RedisConnection>((resolve, reject) => {
        const conn = make();
        let lastError: Error | undefined;
        // Always listening: ioredis prints unhandled 'error' events, and every error that
        // matters reaches a caller through its command anyway.
        conn.on('error', (error: Error) => {
          lastError = redactRedisError(error);
        });
        let settled = false;
        const fail = (cause: unknown) => {
          if (settled) return;
          settled = true;
          // A failed AUTH's ReplyError holds the password among its command's arguments.
          redactRedisError(cause);
          clearTimeout(timer);
          conn.disconnect();
          reject(new Error(`${where}: cannot connect: ${describeError(cause)}`, { cause }));
        };
        const timer = setTimeout(() => {
          const last = lastError === undefined ? '' : ` (last error: ${lastError.message})`;
          fail(
            new Error(`no connection within ${config.connectTimeout} ms${last}`, {
              cause: lastError,
            }),
          );
        }, config.connectTimeout);
        timer.unref();
        conn.connect().then(
          () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve(conn);
          },
          // Standalone and sentinel connect() reject with a bare "Connection is closed." (the
          // 'error' event said why); a cluster's rejection is the informative one.
          (error: unknown) =>
            fail(
              lastError !== undefined &&
                (error as Error | undefined)?.message === 'Connection is closed.'
                ? lastError
                : error,
            ),
        );
      }),
    destroy: (conn) => {
      conn.disconnect();
      return Promise.resolve();
    },
    validate: (conn) => conn.status === 'ready',
  };
}
