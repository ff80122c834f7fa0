// The example service as a process: `tsx examples/resilient-service/main.ts`.
//   PORT (default 3000; 0 picks a free port), NODE_ENV (development, test, load, production),
//   RESILIENCE_HTTP_UPSTREAM_ORIGIN, RESILIENCE_HTTP_INVENTORY_ORIGIN: the orders backend,
//   RESILIENCE_REDIS_CACHE_URL: the optional Redis cache, used only when it answers (default
//   redis://127.0.0.1:6379; set it to "" to run without the cache),
//   ACCESS_LOG=off: no access log (by default one JSON line per request on stdout).
// Prints "resilient-service listening on <url>" once it accepts connections; SIGTERM or SIGINT
// shut it down gracefully (readiness fails at once, in-flight requests finish, pools drain).
import { closeOnSignals } from 'express-resilience';
import { DEFAULT_CACHE_URL, cacheUrl, redisAnswers } from './redis-probe.js';
import { createService } from './service.js';

const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`resilient-service: PORT must be a port number, got ${process.env.PORT}`);
  process.exit(2);
}
const redisUrl = cacheUrl();
const cache = redisUrl !== undefined && (await redisAnswers(redisUrl));
if (redisUrl !== undefined && !cache) {
  // The variable's value may carry a password: name the variable, not its value.
  const where = redisUrl === DEFAULT_CACHE_URL ? redisUrl : 'RESILIENCE_REDIS_CACHE_URL';
  console.warn(`resilient-service: no Redis answers at ${where}: cache disabled`);
}

const { app, r } = createService({
  cache,
  accessLog:
    process.env.ACCESS_LOG === 'off' ? undefined : (line) => process.stdout.write(`${line}\n`),
});
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  console.log(
    `resilient-service listening on http://127.0.0.1:${actual} (env ${process.env.NODE_ENV || 'development'}, cache ${cache ? 'redis' : 'disabled'})`,
  );
});
server.on('error', (err) => {
  console.error(`resilient-service: ${err.message}`);
  process.exitCode = 1;
  void r.close({ grace: 0 });
});
closeOnSignals(server, r, { onClosed: () => console.log('resilient-service: shut down') });
