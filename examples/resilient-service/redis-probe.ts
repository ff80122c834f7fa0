import { connect } from 'node:net';

/**
 * Where the cache's Redis resource (config/redis-cache.yaml, which sets no address) connects when
 * RESILIENCE_REDIS_CACHE_URL is unset: the schema's defaults for host and port.
 */
export const DEFAULT_CACHE_URL = 'redis://127.0.0.1:6379';

/**
 * The Redis URL the service's cache would connect to, so the start-up probe asks the same server
 * the resource would use: RESILIENCE_REDIS_CACHE_URL, else {@link DEFAULT_CACHE_URL}. Undefined
 * when the variable is set to the empty string: the service then runs without its cache (how
 * `npm run load -- --no-redis` turns it off).
 */
export function cacheUrl(environment: NodeJS.ProcessEnv = process.env): string | undefined {
  const url = environment.RESILIENCE_REDIS_CACHE_URL;
  if (url === '') return undefined;
  return url ?? DEFAULT_CACHE_URL;
}

/**
 * Whether a Redis server answers PING at `url` (`redis://[user:password@]host:port`) within
 * `timeoutMs`. Speaks just enough RESP for that (AUTH when the URL carries a password), so the
 * service can decide at start-up whether to use its optional cache. Never throws.
 */
export function redisAnswers(url: string, timeoutMs = 500): Promise<boolean> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.resolve(false);
  }
  if (target.protocol !== 'redis:') return Promise.resolve(false);
  const command = (...args: string[]): string =>
    `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  let payload = '';
  if (target.password !== '') {
    const password = decodeURIComponent(target.password);
    payload += target.username
      ? command('AUTH', decodeURIComponent(target.username), password)
      : command('AUTH', password);
  }
  payload += command('PING');
  return new Promise((resolve) => {
    const socket = connect({
      host: target.hostname || '127.0.0.1',
      port: Number(target.port || 6379),
    });
    let received = '';
    const done = (answer: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(payload));
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.includes('+PONG')) done(true);
      else if (received.includes('-')) done(false);
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}
