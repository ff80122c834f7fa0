// `npm start`: the example service on http://127.0.0.1:3000 (PORT to change it) with the fake
// upstream it calls, each in a process of its own. No Redis needed: the cache is used when Redis
// answers at RESILIENCE_REDIS_CACHE_URL (default redis://127.0.0.1:6379). Ctrl-C stops both.
import { ENTRIES, startProcess, type RunningProcess } from './launch.js';

const started: RunningProcess[] = [];
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    // The service first: it drains its requests to the upstream before the upstream goes.
    for (const p of [...started].reverse()) await p.stop();
  }
  process.exit(code);
}

process.once('SIGINT', () => void stopAll(0));
process.once('SIGTERM', () => void stopAll(0));

const echo = (prefix: string) => (line: string) => console.log(`${prefix} ${line}`);
try {
  const upstream = await startProcess('fake-upstream', ENTRIES.upstream, {
    onLine: echo('[upstream]'),
  });
  started.push(upstream);
  const service = await startProcess('resilient-service', ENTRIES.service, {
    env: {
      NODE_ENV: process.env.NODE_ENV ?? 'development',
      PORT: process.env.PORT ?? '3000',
      RESILIENCE_HTTP_UPSTREAM_ORIGIN: upstream.url,
      RESILIENCE_HTTP_INVENTORY_ORIGIN: upstream.url,
    },
    onLine: echo('[service] '),
  });
  started.push(service);
  console.log(`
The example service runs on ${service.url}, its fake upstream on ${upstream.url}.

  curl ${service.url}/                      # the routes
  curl '${service.url}/api/orders?limit=3'
  curl -X POST ${service.url}/api/orders -H 'content-type: application/json' -H 'x-client-id: me' \\
    -d '{"customerId":"c1","items":[{"sku":"honey","quantity":2,"price":4.5}]}'
  curl ${service.url}/readyz
  curl ${service.url}/metrics

Make the upstream fail for 10 s and watch the quotes breaker open, then close:

  curl -X POST ${upstream.url}/__admin/schedule \\
    -d '{"path":"/quotes/*","steps":[{"duration":"10s","behaviour":{"status":503}}]}'
  for i in $(seq 40); do curl -s -o /dev/null -w '%{http_code} ' ${service.url}/api/quotes/ACME; sleep 0.5; done

Every request gets an access-log line ([service] {...}); ACCESS_LOG=off turns it off.
Ctrl-C stops both.`);
  for (const p of started) {
    void p.exited.then((code) => {
      if (stopping) return;
      console.error(`${p.name} exited (${code}); stopping`);
      void stopAll(1);
    });
  }
} catch (err) {
  console.error((err as Error).message);
  await stopAll(1);
}
