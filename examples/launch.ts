import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The example entry points, as files. */
export const ENTRIES = {
  upstream: fileURLToPath(new URL('./fake-upstream/main.ts', import.meta.url)),
  service: fileURLToPath(new URL('./resilient-service/main.ts', import.meta.url)),
} as const;

/** A TypeScript entry point running as a child process; see {@link startProcess}. */
export interface RunningProcess {
  readonly name: string;
  readonly pid: number;
  /** The URL the process announced ("... listening on <url>"). */
  readonly url: string;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** The last lines the process printed (stdout and stderr), for error messages. */
  output(): string;
  /**
   * SIGTERM, then SIGKILL if it is still running after `graceMs` (default 10 000). Resolves
   * once it has exited. Idempotent.
   */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@link startProcess}. */
export interface StartProcessOptions {
  args?: readonly string[];
  /** Environment variables added to (or, when undefined, removed from) the parent's. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Every line the process prints, as it prints it. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Longest wait for the "listening on" line; default 30 000 ms. */
  timeoutMs?: number;
  /** Options for Node itself, before the entry (`--cpu-prof`, `--max-old-space-size=...`). */
  nodeArgs?: readonly string[];
  /**
   * Runs the process on this CPU only (through `taskset`), so a benchmark's server and its load
   * generator do not compete for one core. Ignored where `taskset` is missing.
   */
  cpu?: number;
}

/** `taskset` (util-linux), when this machine has it. */
export const TASKSET = ['/usr/bin/taskset', '/bin/taskset'].find((path) => existsSync(path));

const LISTENING = /listening on (https?:\/\/[^\s)]+)/;
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Runs a TypeScript entry point (through tsx) as a child process, and resolves once it prints
 * `listening on <url>`. Rejects, with the tail of its output, when it exits first or does not
 * get there within `timeoutMs` (it is killed then). A process still running when this process
 * exits is killed with it, so nothing is left behind even after a crash.
 */
export function startProcess(
  name: string,
  entry: string,
  options: StartProcessOptions = {},
): Promise<RunningProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const node = [
    process.execPath,
    ...(options.nodeArgs ?? []),
    // The examples import the package by name, as an app would; in this repo the condition
    // resolves that name to lib/index.ts (package.json "exports"), so no build is needed.
    '--conditions=express-resilience-source',
    '--import',
    'tsx',
    entry,
    ...(options.args ?? []),
  ];
  const command =
    options.cpu !== undefined && TASKSET !== undefined
      ? [TASKSET, '-c', String(options.cpu), ...node]
      : node;
  const child = spawn(command[0]!, command.slice(1), {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }
  const tail: string[] = [];
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  let announce: ((url: string) => void) | undefined;
  const lines = (stream: 'stdout' | 'stderr') => {
    let buffered = '';
    return (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let i: number;
      while ((i = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, i).replace(/\r$/, '');
        buffered = buffered.slice(i + 1);
        tail.push(line);
        if (tail.length > 40) tail.shift();
        options.onLine?.(line, stream);
        const match = LISTENING.exec(line);
        if (match !== null) announce?.(match[1]!);
      }
    };
  };
  child.stdout!.on('data', lines('stdout'));
  child.stderr!.on('data', lines('stderr'));

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 10_000): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };
  const output = () => tail.join('\n');

  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise<RunningProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop(1000);
      reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${output()}`));
    }, timeoutMs);
    announce = (url) => {
      announce = undefined;
      clearTimeout(timer);
      resolve({ name, pid: child.pid!, url, exited, output, stop });
    };
    void exited.then((code) => {
      if (announce === undefined) return;
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready:\n${output()}`));
    });
  });
}

/**
 * Polls `url` until it answers 200 (a readiness endpoint), every 100 ms, for at most
 * `timeoutMs` (default 30 000). Rejects with the last status or error.
 */
export async function waitUntilReady(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms (${last})`);
}
