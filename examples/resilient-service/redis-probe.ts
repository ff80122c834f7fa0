import { connect } from 'node:net';

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
