// The smallest useful app: one line of middleware and a config object give every route a
// deadline, a circuit breaker and a bulkhead, /hello a rate limit, and the app /metrics,
// /healthz and /readyz.
//   npm run example:minimal      then: curl -i http://127.0.0.1:3001/hello
import express from 'express';
import { closeOnSignals, resilience } from 'express-resilience';

const r = resilience({
  middleware: {
    defaults: { timeout: { duration: '2s' } },
    routes: [
      // Five calls a second per client address; the sixth gets a 429 with Retry-After.
      { name: 'hello', match: 'GET /hello', rateLimit: { enabled: true, limit: 5, window: '1s' } },
      // Past its deadline the client gets a 504, and req.resilience.signal aborts the work.
      { name: 'slow', match: 'GET /slow', timeout: { duration: '500ms' } },
    ],
  },
});

const app = express();
app.use(r);
app.get('/hello', (_req, res) => {
  res.json({ hello: 'world' });
});
app.get('/slow', async (req, res) => {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  if (!req.resilience?.signal.aborted) res.json({ finally: true });
});

const port = Number(process.env.PORT ?? 3001);
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  console.log(`minimal example listening on http://127.0.0.1:${actual}`);
});
closeOnSignals(server, r);
