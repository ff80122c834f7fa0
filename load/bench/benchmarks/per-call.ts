// Per call: what each policy adds around `async () => 1`, calls made one after another (the
// policy's own cost, not the event loop's). Every contender runs in a fresh process of its own
// (see servers/per-call-worker.ts). Also counts AbortController aborts: an abort on every
// success is what makes a timeout expensive.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TASKSET } from '../../../examples/launch.js';
import { contender, fmt, type Benchmark, type Contender } from '../harness.js';

const WORKER = fileURLToPath(new URL('../servers/per-call-worker.ts', import.meta.url));
const run = promisify(execFile);

const CONTENDERS: readonly { name: string; label: string; baseline?: boolean }[] = [
  { name: 'none', label: 'no policy: `await fn()`', baseline: true },
  { name: 'pack', label: 'express-resilience `r.wrap()`: breaker → bulkhead → timeout' },
  { name: 'pack-composed', label: 'express-resilience breaker → bulkhead → withTimeout, by hand' },
  { name: 'pack-breaker', label: 'express-resilience circuitBreaker().execute' },
  { name: 'pack-bulkhead', label: 'express-resilience bulkhead().execute' },
  { name: 'pack-timeout', label: 'express-resilience withTimeout (never fires)' },
  { name: 'cockatiel-all', label: 'cockatiel wrap(breaker, bulkhead, timeout)' },
  { name: 'cockatiel-breaker', label: 'cockatiel circuitBreaker' },
  { name: 'cockatiel-bulkhead', label: 'cockatiel bulkhead' },
  { name: 'cockatiel-timeout', label: 'cockatiel timeout (cooperative)' },
  { name: 'opossum', label: 'opossum fire (timeout 5 s)' },
];

export const benchmark: Benchmark = {
  name: 'per-call',
  title: 'Per call: policies around `async () => 1`, one call at a time',
  unit: 'ns/call',
  higherIsBetter: false,
  comparison: 'overhead',
  columns: [{ key: 'abortsPerCall', label: 'aborts/call' }],
  async start(options) {
    const seconds = Math.min(options.duration, 3);
    const warmup = Math.min(options.warmup, 1);
    const measure = async (name: string, phase: 'warmup' | 'measure') => {
      const node = [process.execPath, '--import', 'tsx', WORKER, name];
      node.push(phase === 'warmup' ? '0.2' : String(seconds), String(warmup));
      const command =
        options.serverCpu !== undefined && TASKSET !== undefined
          ? [TASKSET, '-c', String(options.serverCpu), ...node]
          : node;
      const { stdout } = await run(command[0]!, command.slice(1), { timeout: 120_000 });
      const result = JSON.parse(stdout.trim().split('\n').pop()!) as {
        nsPerCall: number;
        calls: number;
        abortsPerCall: number;
      };
      return {
        value: result.nsPerCall,
        extra: { calls: result.calls, abortsPerCall: result.abortsPerCall },
      };
    };
    const contenders = CONTENDERS.map((c): Contender => ({
      ...c,
      run: (phase) => measure(c.name, phase),
    }));
    return {
      contenders,
      notes: [
        `Each contender in a fresh process: ${warmup} s of warm-up calls, then calls one after another for ${seconds} s; overhead = its ns/call minus the bare call's, in the same round.`,
      ],
      close: async () => {},
    };
  },
  targets(summary) {
    const pack = contender(summary, 'pack');
    const composed = contender(summary, 'pack-composed');
    return [
      {
        description: 'breaker + bulkhead + timeout add <= 1 µs per call (`r.wrap()`)',
        met: (pack.overhead ?? Infinity) <= 1000,
        actual: `${fmt(pack.overhead)} ns (by hand: ${fmt(composed.overhead)} ns; cockatiel's three: ${fmt(contender(summary, 'cockatiel-all').overhead)} ns)`,
      },
      {
        description: 'a timeout that never fires aborts no AbortController',
        met:
          pack.extra.abortsPerCall === 0 &&
          composed.extra.abortsPerCall === 0 &&
          contender(summary, 'pack-timeout').extra.abortsPerCall === 0,
        actual: `${fmt(pack.extra.abortsPerCall)} aborts per call`,
      },
    ];
  },
};
