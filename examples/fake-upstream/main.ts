// The fake upstream as a process of its own: `tsx examples/fake-upstream/main.ts [--port N]`.
// Prints "fake-upstream listening on <origin>" once it accepts connections (port 0, the default,
// picks a free one), serves the orders backend and the admin API under /__admin, and exits on
// SIGTERM or SIGINT.
import { parseArgs } from 'node:util';
import { createBackend } from './backend.js';
import { startUpstream } from './upstream.js';

const { values } = parseArgs({
  options: { port: { type: 'string', default: process.env.UPSTREAM_PORT ?? '0' } },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`fake-upstream: --port must be a port number, got ${values.port}`);
  process.exit(2);
}

const upstream = await startUpstream({
  port,
  backend: createBackend(),
  admin: '/__admin',
  // A load run sends hundreds of thousands of requests: keep the log bounded.
  logLimit: 1000,
});
console.log(
  `fake-upstream listening on ${upstream.origin} (admin API: ${upstream.origin}/__admin)`,
);

const stop = (): void => {
  void upstream.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
