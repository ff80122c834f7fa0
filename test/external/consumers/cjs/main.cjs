// Node 20.19+ loads the ESM package through require() (require(esm), unflagged in 20.19).
const assert = require('node:assert/strict');
const express = require('express');
const pack = require('express-resilience');

assert.equal(typeof pack.resilience, 'function');
assert.equal(typeof pack.loadConfig, 'function');
assert.equal(new pack.BreakerOpenError().code, 'ERR_BREAKER_OPEN');

const app = express();
const r = pack.resilience({});
app.use(r);
app.get('/ok', (_req, res) => res.json({ route: _req.resilience.route }));
const server = app.listen(0, '127.0.0.1', async () => {
  const res = await fetch(`http://127.0.0.1:${server.address().port}/ok`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { route: 'default' });
  server.close();
  await r.close();
  console.log('cjs consumer ok');
});
