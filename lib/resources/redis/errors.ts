import {
  ResourceUnavailableError,
  TimeoutError,
  isResilienceError,
  withoutStack,
} from '../../errors.js';

/**
 * Replies that mean the server refused the command because of its role or state, not because
 * of the command: a demoted master after a sentinel failover (READONLY), a server still loading
 * its data set, a replica without its master, a cluster that is down or migrating. The command
 * did not run.
 */
const SERVER_STATE_REPLY = /^(READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS)\b/;

/**
 * Commands retried on connection errors: they only read (or, for a plain `SET`, leave the same
 * state however often they run), so running one twice is harmless. Anything else (INCR, LPUSH,
 * SET NX, EVAL, …) is retried only when it certainly did not run — see {@link RedisFailure} —
 * unless the resource's `retry.nonIdempotent` is on.
 */
export const RETRYABLE_COMMANDS: ReadonlySet<string> = new Set([
  'PING',
  'ECHO',
  'TIME',
  'DBSIZE',
  'EXISTS',
  'TYPE',
  'TTL',
  'PTTL',
  'EXPIRETIME',
  'PEXPIRETIME',
  'GET',
  'MGET',
  'GETRANGE',
  'STRLEN',
  'GETBIT',
  'BITCOUNT',
  'BITPOS',
  'HGET',
  'HMGET',
  'HGETALL',
  'HEXISTS',
  'HKEYS',
  'HVALS',
  'HLEN',
  'HSTRLEN',
  'HSCAN',
  'LRANGE',
  'LINDEX',
  'LLEN',
  'LPOS',
  'SMEMBERS',
  'SISMEMBER',
  'SMISMEMBER',
  'SCARD',
  'SSCAN',
  'ZRANGE',
  'ZRANGEBYSCORE',
  'ZRANGEBYLEX',
  'ZREVRANGE',
  'ZREVRANGEBYSCORE',
  'ZREVRANGEBYLEX',
  'ZSCORE',
  'ZMSCORE',
  'ZRANK',
  'ZREVRANK',
  'ZCARD',
  'ZCOUNT',
  'ZLEXCOUNT',
  'ZSCAN',
  'XRANGE',
  'XREVRANGE',
  'XLEN',
  'GEOPOS',
  'GEODIST',
  'GEOHASH',
  'PFCOUNT',
  'SCAN',
]);

// Options that make a SET's result depend on the state it ran against: a retry after a SET that
// did run would answer differently (NX/XX: nil; GET: the new value).
const CONDITIONAL_SET = new Set(['NX', 'XX', 'GET']);

/** Whether running `name args` twice is harmless (see {@link RETRYABLE_COMMANDS}). */
export function isRetryableCommand(
  name: string,
  args: readonly (string | number | Buffer)[],
): boolean {
  const upper = name.toUpperCase();
  if (RETRYABLE_COMMANDS.has(upper)) return true;
  if (upper !== 'SET') return false;
  for (let i = 2; i < args.length; i++) {
    const arg = args[i];
    if (typeof arg === 'string' && CONDITIONAL_SET.has(arg.toUpperCase())) return false;
  }
  return true;
}

/**
 * What went wrong with a command, for retry and breaker decisions:
 * - `unsent`: refused before it ran (offline queue off and no connection, cluster not ready,
 *   or a server-state reply such as READONLY) — safe to retry any command;
 * - `ambiguous`: the connection dropped or the command timed out while it was in flight — it
 *   may have run, so only retryable commands are retried.
 */
export type RedisFailure = 'unsent' | 'ambiguous';

const COMMAND_TIMED_OUT = 'Command timed out';
// ioredis raises plain Errors; these messages (5.x) are the ones that mean "not sent".
const UNSENT_MESSAGE =
  /^(Stream isn't writeable|Cluster isn't ready|None of startup nodes is available|All sentinels are unreachable)/;
// And these mean the connection went away with the command possibly in flight.
const AMBIGUOUS_MESSAGE =
  /^(Connection is closed|Reached the max retries per request limit|Failed to refresh slots cache|Too many Cluster redirections)/;
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * True for a Redis error reply (`ERR …`, `WRONGTYPE …`, `READONLY …`). By name, not class: a
 * client of another ioredis copy or major raises its own `ReplyError` class.
 */
export function isReplyError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}

/**
 * The {@link RedisFailure} of an error raised by ioredis, or undefined for what is not a
 * connection, timeout or server-state failure: error replies (`WRONGTYPE`, `ERR …`), the
 * pack's own errors, and — unless `all` — errors ioredis does not raise (the caller's own).
 * Use `all` when only ioredis ran.
 */
export function redisFailure(error: unknown, all: boolean): RedisFailure | undefined {
  if (!(error instanceof Error) || isResilienceError(error)) return undefined;
  if (isReplyError(error)) return SERVER_STATE_REPLY.test(error.message) ? 'unsent' : undefined;
  const { message } = error;
  if (message === COMMAND_TIMED_OUT) return 'ambiguous';
  if (UNSENT_MESSAGE.test(message)) return 'unsent';
  const code = (error as NodeJS.ErrnoException).code;
  if (
    all ||
    AMBIGUOUS_MESSAGE.test(message) ||
    error.name === 'MaxRetriesPerRequestError' ||
    error.name === 'ClusterAllFailedError' ||
    (code !== undefined && NETWORK_CODES.has(code))
  ) {
    return 'ambiguous';
  }
  return undefined;
}

/**
 * Commands whose arguments may hold a secret: AUTH (password), HELLO (`AUTH user pass`),
 * MIGRATE (`AUTH`/`AUTH2`), CONFIG SET (requirepass, masterauth), ACL SETUSER (`>password`).
 */
const SECRET_COMMANDS = new Set(['auth', 'hello', 'migrate', 'config', 'acl']);
const REDACTED = '[redacted]';
// The userinfo of a URL in a message: `redis://user:secret@host` → `redis://[redacted]@host`.
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi;
// Causes followed: ours and ioredis's (a cluster's lastNodeError, an AggregateError's errors).
const MAX_DEPTH = 16;

function redactText(text: unknown): unknown {
  return typeof text === 'string' && text.includes('@')
    ? text.replace(URL_USERINFO, `$1${REDACTED}@`)
    : text;
}

function redactOne(error: object): void {
  const target = error as { command?: unknown; message?: unknown; stack?: unknown };
  const command = target.command as { name?: unknown; args?: unknown } | null | undefined;
  if (
    typeof command === 'object' &&
    command !== null &&
    typeof command.name === 'string' &&
    SECRET_COMMANDS.has(command.name.toLowerCase()) &&
    Array.isArray(command.args)
  ) {
    // A new object: ioredis may still hold the original command's arguments.
    const safe = { name: command.name, args: command.args.map(() => REDACTED) };
    try {
      Object.defineProperty(error, 'command', { value: safe, configurable: true, writable: true });
    } catch {
      // Frozen by someone else: nothing the pack can do.
    }
  }
  for (const field of ['message', 'stack'] as const) {
    const text = target[field];
    const safe = redactText(text);
    if (safe === text) continue;
    try {
      Object.defineProperty(error, field, { value: safe, configurable: true, writable: true });
    } catch {
      // As above.
    }
  }
}

/**
 * Removes secrets from an error raised by ioredis and from everything it links to, in place,
 * and returns it: the arguments of AUTH, HELLO and the other commands of
 * {@link SECRET_COMMANDS} (ioredis puts a failed command's arguments on its `ReplyError`: a
 * failed AUTH carried the password), and the userinfo of URLs in messages. Call it before an
 * error becomes the `cause` of one of the pack's or reaches a caller: loggers and error
 * trackers print causes in full.
 */
export function redactRedisError<T>(error: T): T {
  const seen = new Set<object>();
  const walk = (value: unknown, depth: number): void => {
    if (typeof value !== 'object' || value === null || seen.has(value) || depth > MAX_DEPTH) {
      return;
    }
    seen.add(value);
    redactOne(value);
    const links = value as { cause?: unknown; lastNodeError?: unknown; errors?: unknown };
    walk(links.cause, depth + 1);
    walk(links.lastNodeError, depth + 1);
    if (Array.isArray(links.errors)) for (const e of links.errors) walk(e, depth + 1);
  };
  walk(error, 0);
  return error;
}

/**
 * Maps an ioredis failure (see {@link redisFailure}) to the pack's typed errors, the original
 * (secrets redacted: {@link redactRedisError}) as `cause`: "Command timed out" →
 * `TimeoutError` (`timeoutMs` = commandTimeout); the rest → `ResourceUnavailableError`.
 * Anything else is returned as it is, redacted too.
 */
export function toRedisError(
  error: unknown,
  resource: string,
  commandTimeout: number,
  all: boolean,
): unknown {
  redactRedisError(error);
  if (redisFailure(error, all) === undefined) return error;
  const cause = error as Error;
  if (cause.message === COMMAND_TIMED_OUT) {
    return withoutStack(
      () =>
        new TimeoutError(
          `Redis resource "${resource}": command timed out after ${commandTimeout} ms`,
          { timeoutMs: commandTimeout, cause },
        ),
    );
  }
  return withoutStack(
    () =>
      new ResourceUnavailableError(
        `Redis resource "${resource}" is unavailable: ${cause.message}`,
        { cause, resource },
      ),
  );
}
