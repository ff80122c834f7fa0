// Inbound: what the middleware costs a hello-world JSON route under 50 connections, against
// bare Express 5 and against the usual stack of separate packages.
import { fileURLToPath } from 'node:url';
import { startProcess, type RunningProcess } from '../../../examples/launch.js';
import { contender, ratioText, type Benchmark, type Contender } from '../harness.js';
import { httpLoad } from '../http-load.js';
import { processCpuSeconds } from '../process-cpu.js';

const SERVER = fileURLToPath(new URL('../servers/inbound.ts', import.meta.url));

const STACKS = [
  { name: 'bare', label: 'bare Express 5', baseline: true },
  {
    name: 'pack',
    label: 'express-resilience (limit, breaker, bulkhead, timeout, metrics)',
  },
  {
    name: 'peers',
    label:
      'express-rate-limit + connect-timeout + cockatiel bulkhead + opossum + express-prom-bundle',
  },
] as const;

export const benchmark: Benchmark = {
  name: 'inbound',
  title: 'Inbound: GET /hello (JSON), Express 5',
  unit: 'req/s',
  higherIsBetter: true,
  comparison: 'ratio',
  columns: [{ key: 'serverCpuMicrosPerRequest', label: 'server CPU µs/req' }],
  async start(options) {
    const processes: RunningProcess[] = [];
    const close = async () => {
      await Promise.all(processes.map((p) => p.stop()));
    };
    try {
      for (const stack of STACKS) {
        processes.push(
          await startProcess(`inbound-${stack.name}`, SERVER, {
            args: [stack.name],
            cpu: options.serverCpu,
            // One directory per stack: tsx's loader thread writes a profile of its own.
            nodeArgs:
              options.profileDir === undefined
                ? []
                : ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}/inbound-${stack.name}`],
            onLine: (line) => {
              if (options.verbose) console.log(`    [${stack.name}] ${line}`);
            },
          }),
        );
      }
    } catch (err) {
      await close();
      throw err;
    }
    const contenders = STACKS.map((stack, i): Contender => ({
      ...stack,
      run: async (phase) => {
        const server = processes[i]!;
        const cpuBefore = processCpuSeconds(server.pid);
        const sample = await httpLoad({
          url: `${server.url}/hello`,
          connections: options.connections,
          duration: phase === 'warmup' ? options.warmup : options.duration,
        });
        const requests = sample.extra?.requests ?? 0;
        if (cpuBefore !== undefined && requests > 0) {
          // CPU per request does not depend on whether the load generator kept up.
          sample.extra!.serverCpuMicrosPerRequest =
            ((processCpuSeconds(server.pid)! - cpuBefore) * 1e6) / requests;
        }
        return sample;
      },
    }));
    return {
      contenders,
      notes: [
        `autocannon, ${options.connections} connections, no pipelining; each stack in its own Node process.`,
      ],
      close,
    };
  },
  targets(summary) {
    const pack = contender(summary, 'pack');
    return [
      {
        description: 'express-resilience keeps >= 0.90× bare Express throughput',
        met: (pack.ratio ?? 0) >= 0.9,
        actual: `${ratioText(pack.ratio)} (peers ${ratioText(contender(summary, 'peers').ratio)})`,
      },
      {
        description: 'express-resilience p99 latency <= 1.2× bare Express',
        met: (pack.p99Ratio ?? Infinity) <= 1.2,
        actual: ratioText(pack.p99Ratio),
      },
    ];
  },
};
