// One memory measurement, in a fresh process:
//   node --expose-gc --import tsx memory-fill.ts <gcra|fixed-window> <maxKeys> <keys> [passes] [ipv4|ipv6]
// Builds the rate limiter a route with an in-memory limit gets (RateLimiter + its own
// MemoryStore), then consumes once for each of <keys> distinct client keys (IPv4 addresses, or
// IPv6 /56 prefixes as the `ip` key gives them), <passes> times over, and prints one JSON
// line: how much RSS and heap grew, how many keys the store holds, how long it took. Sizes
// are in MB (10^6 bytes) and MiB (2^20 bytes), both spelled out in the field names.
import { RateLimiter } from '../../../lib/index.js';

const [algorithm, maxKeysArg, keysArg, passesArg = '1', family = 'ipv4'] = process.argv.slice(2);
const maxKeys = Number(maxKeysArg);
const keys = Number(keysArg);
const passes = Number(passesArg);
if (
  (algorithm !== 'gcra' && algorithm !== 'fixed-window') ||
  !Number.isInteger(maxKeys) ||
  !Number.isInteger(keys) ||
  !Number.isInteger(passes) ||
  (family !== 'ipv4' && family !== 'ipv6')
) {
  console.error('usage: memory-fill.ts <gcra|fixed-window> <maxKeys> <keys> [passes] [ipv4|ipv6]');
  process.exit(2);
}
const collect = (globalThis as { gc?: () => void }).gc;
if (collect === undefined) {
  console.error('memory-fill.ts needs node --expose-gc');
  process.exit(2);
}

/** Full collections until the heap stops shrinking: one pass can leave finalizable garbage. */
function settle(): NodeJS.MemoryUsage {
  let usage = process.memoryUsage();
  for (let i = 0; i < 10; i++) {
    collect!();
    const next = process.memoryUsage();
    const shrank = next.heapUsed < usage.heapUsed - 64 * 1024;
    usage = next;
    if (!shrank && i >= 2) break;
  }
  return usage;
}

// The keys arrive the way the socket layer hands them over: flat one-byte strings, made one
// at a time and garbage unless the store keeps them. (A template literal would make cons
// strings, which are bigger until a GC shortcuts them, and not what a request carries.)
const scratch = Buffer.alloc(64);
function writeOctet(offset: number, octet: number): number {
  if (octet >= 100) scratch[offset++] = 0x30 + Math.floor(octet / 100);
  if (octet >= 10) scratch[offset++] = 0x30 + (Math.floor(octet / 10) % 10);
  scratch[offset++] = 0x30 + (octet % 10);
  return offset;
}
/** The i-th address: an odd multiplier is a bijection on 32 bits, so every i is distinct. */
function address(i: number): string {
  const ip = Math.imul(i, 0x9e3779b1) >>> 0;
  let end = writeOctet(0, ip >>> 24);
  scratch[end++] = 0x2e;
  end = writeOctet(end, (ip >>> 16) & 255);
  scratch[end++] = 0x2e;
  end = writeOctet(end, (ip >>> 8) & 255);
  scratch[end++] = 0x2e;
  end = writeOctet(end, ip & 255);
  return scratch.toString('latin1', 0, end);
}
/** The i-th /56 prefix, in the RFC 5952 form `ipKey` gives it (`2a02:1f:3c4d:ab00::/56`). */
function prefix56(i: number): string {
  const bits = Math.imul(i, 0x9e3779b1) >>> 0;
  const text = `2a02:${(bits >>> 16).toString(16)}:${(bits & 0xffff).toString(16)}:ab00::/56`;
  return scratch.toString('latin1', 0, scratch.write(text, 'latin1'));
}
const clientKey = family === 'ipv4' ? address : prefix56;

// The middleware's defaults (100 per minute), so a single request per key is always allowed.
const limiter = new RateLimiter({
  name: 'bench',
  algorithm,
  limit: 100,
  windowMs: 60_000,
  maxKeys,
});
const store = limiter.store as { size?: number };

const before = settle();
const started = process.hrtime.bigint();
let denied = 0;
for (let pass = 0; pass < passes; pass++) {
  for (let i = 0; i < keys; i++) {
    const decision = limiter.consume(clientKey(i));
    if ('then' in decision) throw new Error('the memory store answered asynchronously');
    if (!decision.allowed) denied++;
  }
}
const ms = Number(process.hrtime.bigint() - started) / 1e6;
const after = settle();

const MB = 1e6;
const MiB = 2 ** 20;
const rssGrowth = after.rss - before.rss;
console.log(
  JSON.stringify({
    rssGrowthMB: rssGrowth / MB,
    rssGrowthMiB: rssGrowth / MiB,
    heapUsedGrowthMB: (after.heapUsed - before.heapUsed) / MB,
    // Typed arrays live outside the JS heap.
    arrayBuffersGrowthMB: (after.arrayBuffers - before.arrayBuffers) / MB,
    rssAfterMB: after.rss / MB,
    storeKeys: store.size ?? Number.NaN,
    denied,
    ms,
  }),
);
void limiter.close();
