import express from 'express';
import {
  resilience,
  isRateLimitedError,
  type ResilienceConfigInput,
  type ResilienceMiddleware,
  type RequestResilience,
} from 'express-resilience';

const config: ResilienceConfigInput = {
  middleware: {
    routes: [{ name: 'orders', match: 'GET /orders/:id', timeout: { duration: '2s' } }],
  },
};
const app = express();
const r: ResilienceMiddleware = resilience(config);
app.use(r);
app.get('/orders/:id', (req, res) => {
  const ctx: RequestResilience | undefined = req.resilience;
  res.json({ route: ctx?.route, remaining: ctx?.remaining() });
});
if (isRateLimitedError(new Error('x'))) throw new Error('guard misfired');
await r.close();
console.log('ts consumer ok');
