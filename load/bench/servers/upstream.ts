// The upstream of the outbound benchmark, in its own process: `node --import tsx upstream.ts`.
// A bare node:http server, so that what the benchmark sees is the clients' cost, not a
// framework's: GET /item answers a small JSON body, GET /healthz answers 200 (the HTTP
// resource's health check), anything else 404. Keep-alive stays on for as long as the
// clients hold their connections. Prints "listening on <url>" once it accepts connections.
import { createServer } from 'node:http';

const ITEM = Buffer.from(JSON.stringify({ id: 42, name: 'widget', price: 9.99, stock: 7 }));
const HEALTHY = Buffer.from('{"status":"ok"}');

const server = createServer((req, res) => {
  const body =
    req.method === 'GET' && req.url === '/item'
      ? ITEM
      : req.url === '/healthz'
        ? HEALTHY
        : undefined;
  if (body === undefined) {
    res.writeHead(404, { 'content-length': '0' }).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
  res.end(body);
});
// The clients keep their connections for the whole run; Node's 5 s default would close idle
// ones between rounds and make the next round pay for reconnects.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  console.log(`upstream listening on http://127.0.0.1:${port}`);
});
// A normal exit, so --cpu-prof writes its profile.
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
