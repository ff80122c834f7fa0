// Outbound: what the HTTP resource (breaker, retry, timeout, pool) costs a client against a raw
// undici Pool, with the usual alternatives beside it. The upstream runs in its own process on
// the server CPU; every client runs here, on the load CPU, one contender at a time, so the
// contenders compete for the same core the same way.
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import axios from 'axios';
import genericPool from 'generic-pool';
import { Client, Pool } from 'undici';
import { startProcess, type RunningProcess } from '../../../examples/launch.js';
import { resilience } from '../../../lib/index.js';
import type { HttpResource } from '../../../lib/index.js';
import { contender, ratioText, type Benchmark, type Contender, type Sample } from '../harness.js';

const SERVER = fileURLToPath(new URL('../servers/upstream.ts', import.meta.url));
const PATH = '/item';

/** One GET of PATH, body read to its end; resolves with the status code. */
type Get = () => Promise<number>;

/** A client under test: how it sends one GET, and how it is torn down. */
interface ClientUnderTest {
  get: Get;
  close(): Promise<void>;
}

/**
 * `concurrency` loops, each keeping one GET in flight until `seconds` have passed: requests per
 * second, p50/p99 latency (ms, every request recorded), every error or non-2xx answer as a
 * problem, and the CPU this process spent per request (the client's cost, which decides the
 * ratio when the client is the bottleneck, and varies less than throughput on a busy machine).
 */
async function closedLoop(get: Get, concurrency: number, seconds: number): Promise<Sample> {
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  let non2xx = 0;
  let errors = 0;
  let firstError: string | undefined;
  const startedAt = performance.now();
  const endsAt = startedAt + seconds * 1000;
  const cpuAtStart = process.cpuUsage();
  const loop = async (): Promise<void> => {
    while (performance.now() < endsAt) {
      const sentAt = performance.now();
      try {
        const status = await get();
        if (status < 200 || status >= 300) non2xx++;
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      }
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[count++] = performance.now() - sentAt;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = (performance.now() - startedAt) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  const sorted = latencies.subarray(0, count).sort();
  const at = (q: number): number => sorted[Math.min(count - 1, Math.floor(q * count))] ?? NaN;
  const problems: string[] = [];
  if (non2xx > 0) problems.push(`${non2xx} non-2xx answers`);
  if (errors > 0) problems.push(`${errors} errors (first: ${firstError})`);
  return {
    value: count / elapsed,
    p50: at(0.5),
    p99: at(0.99),
    extra: { requests: count, clientCpuUsPerRequest: (cpu.user + cpu.system) / count },
    problems,
  };
}

function undiciPool(origin: string, connections: number): ClientUnderTest {
  const pool = new Pool(origin, { connections });
  return {
    get: async () => {
      const { statusCode, body } = await pool.request({ method: 'GET', path: PATH });
      await body.arrayBuffer();
      return statusCode;
    },
    close: () => pool.close(),
  };
}

function genericPoolOfClients(origin: string, connections: number): ClientUnderTest {
  const pool = genericPool.createPool(
    {
      create: async () => new Client(origin),
      destroy: (client) => client.close(),
    },
    { min: 0, max: connections },
  );
  return {
    get: async () => {
      const client = await pool.acquire();
      try {
        const { statusCode, body } = await client.request({ method: 'GET', path: PATH });
        await body.arrayBuffer();
        return statusCode;
      } finally {
        void pool.release(client);
      }
    },
    close: async () => {
      await pool.drain();
      await pool.clear();
    },
  };
}

function axiosKeepAlive(origin: string, connections: number): ClientUnderTest {
  const httpAgent = new Agent({ keepAlive: true, maxSockets: connections });
  const client = axios.create({ baseURL: origin, httpAgent, responseType: 'arraybuffer' });
  return {
    get: async () => (await client.get(PATH)).status,
    close: async () => httpAgent.destroy(),
  };
}

/**
 * The pack's HTTP resource as a user builds it, from the config: breaker, retry and timeouts
 * on. The timeouts are longer than the defaults (a timer costs the same whatever its length):
 * on a busy machine the upstream can stall for seconds, which the other clients sit out while
 * a 2 s headers timeout would fail the run.
 */
function packResource(origin: string, connections: number): ClientUnderTest {
  const r = resilience({
    resources: {
      http: {
        upstream: {
          origin,
          pool: { max: connections },
          breaker: { enabled: true },
          retry: { attempts: 3 },
          timeouts: { headers: '20s', body: '20s', request: '30s' },
        },
      },
    },
  });
  const upstream: HttpResource = r.resources.http('upstream');
  return {
    get: async () => {
      const response = await upstream.get(PATH);
      if (response.body.length === 0) throw new Error('empty body');
      return response.statusCode;
    },
    close: () => r.close({ grace: 0 }),
  };
}

const CLIENTS = [
  { name: 'undici', label: (n: number) => `undici Pool(${n})`, baseline: true, create: undiciPool },
  {
    name: 'pack',
    label: () => 'express-resilience HttpResource (breaker, retry, timeout, pool)',
    create: packResource,
  },
  {
    name: 'generic-pool',
    label: (n: number) => `generic-pool of ${n} undici Clients`,
    create: genericPoolOfClients,
  },
  {
    name: 'axios',
    label: (n: number) => `axios + keep-alive http.Agent(${n})`,
    create: axiosKeepAlive,
  },
] as const;

export const benchmark: Benchmark = {
  name: 'outbound',
  title: 'Outbound: concurrent GETs to a local upstream',
  unit: 'req/s',
  higherIsBetter: true,
  comparison: 'ratio',
  async start(options) {
    const upstream: RunningProcess = await startProcess('upstream', SERVER, {
      cpu: options.serverCpu,
      nodeArgs:
        options.profileDir === undefined
          ? []
          : [
              '--cpu-prof',
              `--cpu-prof-dir=${options.profileDir}`,
              '--cpu-prof-name=outbound-upstream.cpuprofile',
            ],
      onLine: (line) => {
        if (options.verbose) console.log(`    [upstream] ${line}`);
      },
    });
    const origin = upstream.url;
    const clients: ClientUnderTest[] = [];
    const close = async (): Promise<void> => {
      await Promise.allSettled(clients.map((c) => c.close()));
      await upstream.stop();
    };
    try {
      for (const spec of CLIENTS) clients.push(spec.create(origin, options.connections));
    } catch (err) {
      await close();
      throw err;
    }
    const contenders = CLIENTS.map((spec, i): Contender => ({
      name: spec.name,
      label: spec.label(options.connections),
      ...('baseline' in spec && { baseline: spec.baseline }),
      run: (phase) =>
        closedLoop(
          clients[i]!.get,
          options.connections,
          phase === 'warmup' ? options.warmup : options.duration,
        ),
    }));
    return {
      contenders,
      notes: [
        `${options.connections} GETs of ${PATH} in flight at all times (one async loop each), every body read to its end; ` +
          'the clients run in the harness process, the upstream (node:http, keep-alive) in its own.',
        `express-resilience: resilience({ resources: { http: { upstream } } }) with the defaults ` +
          `(metrics on, breaker, 3 attempts under a retry budget, pool max ${options.connections}) and ` +
          'timeouts of 20 s (headers, body) and 30 s (request), so that a stalled machine cannot fail the run.',
      ],
      close,
    };
  },
  targets(summary) {
    const pack = contender(summary, 'pack');
    return [
      {
        description:
          'the HTTP resource (breaker, retry, timeout, pool) keeps >= 0.90× a raw undici Pool',
        met: (pack.ratio ?? 0) >= 0.9,
        actual: `${ratioText(pack.ratio)} (generic-pool ${ratioText(contender(summary, 'generic-pool').ratio)}, axios ${ratioText(contender(summary, 'axios').ratio)})`,
      },
    ];
  },
};
