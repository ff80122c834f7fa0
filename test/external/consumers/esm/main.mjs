import assert from 'node:assert/strict';
import http from 'node:http';
import express from 'express';
import { resilience, loadConfig, isTimeoutError, TimeoutError } from 'express-resilience';

assert.equal(typeof loadConfig, 'function');
assert.ok(isTimeoutError(new TimeoutError()));

const app = express();
const r = resilience({ middleware: { defaults: { timeout: { duration: '50ms' } } } });
app.use(r);
app.get('/ok', (_req, res) => res.json({ ok: true }));
app.get('/slow', () => {});
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${server.address().port}`;
const get = (path) =>
  new Promise((resolve, reject) =>
    http
      .get(base + path, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode, type: res.headers['content-type'], body }),
        );
      })
      .on('error', reject),
  );
assert.equal((await get('/ok')).status, 200);
const slow = await get('/slow');
assert.equal(slow.status, 504);
assert.match(slow.type, /application\/problem\+json/);
assert.match(
  (await get('/metrics')).body,
  /resilience_rejections_total\{route="default",reason="timeout",mode="enforce"\} 1/,
);
server.close();
await r.close();
console.log('esm consumer ok');
