/**
 * Real Redis topologies for tests: standalone servers, a sentinel group (master, replica, three
 * sentinels) and a three-master cluster, each made of `redis-server` processes on free loopback
 * ports in their own temporary directories. Nothing here touches the shared Redis on
 * 127.0.0.1:6379.
 *
 * Every process is started with persistence off (`save ""`, `appendonly no`) and bound to
 * 127.0.0.1. Each helper returns a handle whose `close()` kills its processes and removes its
 * directories; a process still alive when the test process exits is killed too, so a failed
 * `after()` hook never leaves servers behind.
 *
 * Waits are bounded polls of the servers' own state (PING, ROLE, SENTINEL, CLUSTER INFO); when
 * one gives up, the error carries the tail of the server's log.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Host every helper binds to. */
export const HOST = '127.0.0.1';

/** A `host:port` address, as ioredis takes for sentinels and cluster nodes. */
export interface HostPort {
  host: string;
  port: number;
}

/** One `redis-server` process (a data node or a sentinel). */
export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:<port>` (no credentials). */
  readonly url: string;
  /** Its working directory (config file, cluster `nodes.conf`). */
  readonly dir: string;
  /** The `requirepass` it was started with, if any. */
  readonly password: string | undefined;
  /** True while the process runs. */
  readonly running: boolean;
  /**
   * Kills the process with SIGKILL (a crash: no shutdown, clients see a reset) and waits for it
   * to exit. Does nothing when it is not running.
   */
  stop(): Promise<void>;
  /**
   * Starts the process again on the same port, in the same directory, with the same config file
   * (including whatever the server or a sentinel rewrote in it), and waits until it answers PING.
   * Stops it first if it is running.
   */
  restart(): Promise<void>;
  /** Stops the process and removes its directory. Idempotent. */
  close(): Promise<void>;
  /** The last few kilobytes of the process's output. */
  log(): string;
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /**
   * Extra config directives, one per line without the leading `--` (`'maxmemory 10mb'`), written
   * to the config file after the defaults (so they win).
   */
  config?: readonly string[];
  /** Port to listen on; default a free one. */
  port?: number;
  /** Sets `requirepass`; the helper's own commands (readiness) authenticate with it. */
  password?: string;
  /** Bounded wait for the first PING. Default 10 000 ms. */
  readyTimeoutMs?: number;
}

/** A sentinel group from {@link startSentinelTopology}. */
export interface SentinelTopology {
  /** The monitored master group's name (`mymaster`). */
  readonly masterName: string;
  /** The data node that is master now (changes after {@link SentinelTopology.failover}). */
  readonly master: RedisServer;
  /** The data node that is (or was, before a killed master came back) the replica. */
  readonly replica: RedisServer;
  /** The three sentinels' addresses. */
  readonly sentinels: readonly HostPort[];
  /** The sentinel processes, for tests that kill one. */
  readonly sentinelServers: readonly RedisServer[];
  /**
   * Makes the replica the master and resolves once every sentinel reports the new master and the
   * new master answers ROLE as master. By default asks a sentinel (`SENTINEL FAILOVER`): the old
   * master is demoted to a replica of the new one, and clients still connected to it get READONLY
   * until they reconnect. With `{ killMaster: true }` the master is killed instead and the
   * sentinels fail over on their own after `down-after-milliseconds`; `restart()` on the old
   * master brings it back (the sentinels then make it a replica).
   */
  failover(options?: { killMaster?: boolean; timeoutMs?: number }): Promise<void>;
  /** Kills every process and removes every directory. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link startSentinelTopology}. */
export interface SentinelTopologyOptions {
  /** Master group name. Default `mymaster`. */
  masterName?: string;
  /** Sentinel `down-after-milliseconds`. Default 1000. */
  downAfterMs?: number;
  /** Sentinel `failover-timeout`. Default 3000. */
  failoverTimeoutMs?: number;
}

/** A cluster from {@link startCluster}. */
export interface RedisCluster {
  /** The masters' addresses (seed nodes for ioredis `Cluster`). */
  readonly nodes: readonly HostPort[];
  readonly servers: readonly RedisServer[];
  /** Kills every process and removes every directory. Idempotent. */
  close(): Promise<void>;
}

/** A RESP2 reply: simple/bulk string, integer, null, or an array of replies. */
export type RespValue = string | number | null | RespValue[];

const READY_TIMEOUT_MS = 10_000;
const POLL_MS = 25;
const LOG_LIMIT = 16 * 1024;

// Killed synchronously when the test process exits, whatever the hooks did.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** A port that was free a moment ago (bind to 0, read, close); callers retry on EADDRINUSE. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` every 25 ms until it returns true (errors count as false), for at most
 * `timeoutMs`; then throws naming `what`, with the last error and `log()`'s output.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  options: { timeoutMs?: number; log?: () => string } = {},
): Promise<void> {
  const until = Date.now() + (options.timeoutMs ?? READY_TIMEOUT_MS);
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= until) {
      const cause = last === undefined ? '' : ` (last error: ${(last as Error).message})`;
      const log = options.log?.();
      throw new Error(`gave up waiting for ${what}${cause}${log ? `\n--- log ---\n${log}` : ''}`);
    }
    await delay(POLL_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// A minimal RESP2 client: one command per connection, independent of the library under test.

/** Options of {@link redisCommand} and {@link redisPipeline}. */
export interface RedisCommandOptions {
  /** Give up after this long. Default 2000 ms. */
  timeoutMs?: number;
  /** Sent with AUTH first, on the same connection (servers with `requirepass`). */
  password?: string | undefined;
}

/**
 * Sends one command to the server on `port` over a fresh connection and resolves with its reply
 * (an error reply rejects with its message). A number for `options` is the timeout.
 */
export async function redisCommand(
  port: number,
  args: readonly (string | number)[],
  options: RedisCommandOptions | number = {},
): Promise<RespValue> {
  const replies = await redisPipeline(port, [args], options);
  return replies[0] ?? null;
}

/**
 * Sends `commands` in order over one fresh connection (e.g. `ASKING` then a `GET`) and resolves
 * with their replies; the first error reply rejects with its message.
 */
export function redisPipeline(
  port: number,
  commands: readonly (readonly (string | number)[])[],
  options: RedisCommandOptions | number = {},
): Promise<RespValue[]> {
  const { timeoutMs = 2000, password } =
    typeof options === 'number' ? { timeoutMs: options, password: undefined } : options;
  const all = password === undefined ? commands : [['AUTH', password], ...commands];
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: HOST, port });
    let buffer = Buffer.alloc(0);
    const finish = (err: Error | undefined, values?: RespValue[]) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(values ?? []);
    };
    socket.setTimeout(timeoutMs, () =>
      finish(new Error(`${all.map((c) => String(c[0])).join(', ')} on port ${port} timed out`)),
    );
    socket.once('error', (err) => finish(err));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const values: RespValue[] = [];
      try {
        let at = 0;
        for (let i = 0; i < all.length; i++) {
          const parsed = parseResp(buffer, at);
          if (parsed === undefined) return;
          values.push(parsed.value);
          at = parsed.end;
        }
      } catch (err) {
        finish(err as Error);
        return;
      }
      finish(undefined, password === undefined ? values : values.slice(1));
    });
    let payload = '';
    for (const command of all) {
      payload += `*${command.length}\r\n`;
      for (const arg of command) {
        const text = String(arg);
        payload += `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
      }
    }
    socket.write(payload);
  });
}

/** Parses one reply at `start`; undefined when the buffer does not hold all of it yet. */
function parseResp(buf: Buffer, start: number): { value: RespValue; end: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', start);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[start] ?? 0);
  const line = buf.toString('utf8', start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      throw new Error(line);
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buf.length < next + length + 2) return undefined;
      return { value: buf.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parseResp(buf, at);
        if (item === undefined) return undefined;
        items.push(item.value);
        at = item.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new Error(`unexpected RESP type ${JSON.stringify(type)}`);
  }
}

/** `INFO <section>` (or `CLUSTER INFO`) text as a field → value map. */
function infoFields(text: RespValue): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of String(text).split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) fields.set(line.slice(0, i), line.slice(i + 1));
  }
  return fields;
}

/** A flat `[k1, v1, k2, v2, …]` reply (SENTINEL MASTER, SENTINEL REPLICAS items) as a map. */
function pairs(reply: RespValue): Map<string, string> {
  const out = new Map<string, string>();
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out.set(String(reply[i]), String(reply[i + 1]));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Processes

interface ServerSpec {
  port: number;
  dir: string;
  /** Config file lines (the port line is written from `port`). */
  lines: readonly string[];
  sentinel: boolean;
  readyTimeoutMs: number;
  password: string | undefined;
}

class Server implements RedisServer {
  readonly host = HOST;
  private child: ChildProcess | undefined;
  private output = '';
  private closed = false;

  constructor(private readonly spec: ServerSpec) {}

  get port(): number {
    return this.spec.port;
  }
  get url(): string {
    return `redis://${HOST}:${this.spec.port}`;
  }
  get dir(): string {
    return this.spec.dir;
  }
  get password(): string | undefined {
    return this.spec.password;
  }
  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  log(): string {
    return this.output;
  }

  /** Writes the config file (first start only: later starts keep what Redis rewrote). */
  writeConfig(): void {
    const file = this.configFile();
    writeFileSync(file, [`port ${this.spec.port}`, ...this.spec.lines, ''].join('\n'));
  }

  private configFile(): string {
    return join(this.spec.dir, this.spec.sentinel ? 'sentinel.conf' : 'redis.conf');
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error(`server on port ${this.port} is closed`);
    const args = [this.configFile(), ...(this.spec.sentinel ? ['--sentinel'] : [])];
    const child = spawn('redis-server', args, {
      cwd: this.spec.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    track(child);
    const append = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-LOG_LIMIT);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    spawnError.catch(() => undefined);
    await Promise.race([
      spawnError,
      waitFor(
        `redis-server on port ${this.port} to answer PING`,
        async () => {
          if (!this.running) throw new Error(`redis-server exited (code ${child.exitCode})`);
          const reply = await redisCommand(this.port, ['PING'], {
            timeoutMs: 500,
            password: this.spec.password,
          });
          return reply === 'PONG';
        },
        { timeoutMs: this.spec.readyTimeoutMs, log: () => this.output },
      ),
    ]);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stop();
    rmSync(this.spec.dir, { recursive: true, force: true });
  }
}

const BASE_CONFIG = [
  `bind ${HOST}`,
  'save ""',
  'appendonly no',
  'protected-mode no',
  'loglevel warning',
  // Disk-based full syncs: Redis 7.0's diskless sync (the default) waits 5 s for more replicas
  // before it starts, and with that delay at 0 it sometimes leaves a replica "online" that never
  // receives the replication stream.
  'repl-diskless-sync no',
];

/**
 * Starts a server on a free port (or `port`), retrying on another port when the chosen one was
 * taken in the meantime; the first attempt's config is kept across restarts.
 */
async function launch(
  options: { port?: number; readyTimeoutMs?: number; password?: string | undefined },
  lines: (port: number) => readonly string[],
  sentinel = false,
): Promise<Server> {
  const attempts = options.port === undefined ? 3 : 1;
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    const port = options.port ?? (await freePort());
    const dir = mkdtempSync(join(tmpdir(), 'resilience-redis-'));
    const server = new Server({
      port,
      dir,
      lines: lines(port),
      sentinel,
      readyTimeoutMs: options.readyTimeoutMs ?? READY_TIMEOUT_MS,
      password: options.password,
    });
    server.writeConfig();
    try {
      await server.start();
      return server;
    } catch (err) {
      lastError = err;
      const inUse = /address already in use/i.test(server.log());
      await server.close();
      if (!inUse) throw err;
    }
  }
  throw lastError;
}

/**
 * Starts a standalone `redis-server` on a free loopback port, with persistence off, in a fresh
 * temporary directory, and resolves once it answers PING.
 * @throws when it does not answer within `readyTimeoutMs` (the error holds its log).
 */
export function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const auth = options.password === undefined ? [] : [`requirepass ${options.password}`];
  return launch(options, () => [...BASE_CONFIG, ...auth, ...(options.config ?? [])]);
}

/** Closes every handle, in parallel, even when some fail; rethrows the first failure. */
async function closeAll(handles: readonly { close(): Promise<void> }[]): Promise<void> {
  const results = await Promise.allSettled(handles.map((h) => h.close()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function role(port: number): Promise<string> {
  const reply = await redisCommand(port, ['ROLE'], 500);
  return Array.isArray(reply) ? String(reply[0]) : '';
}

/**
 * Starts a sentinel group: a master, one replica of it, and three sentinels monitoring the
 * master with quorum 2, short `down-after-milliseconds` and `failover-timeout` so a failover
 * finishes in a few seconds. Resolves once the replica is in sync and every sentinel sees the
 * replica and the two other sentinels (so both `SENTINEL FAILOVER` and a killed master work).
 * On failure everything started so far is closed.
 */
export async function startSentinelTopology(
  options: SentinelTopologyOptions = {},
): Promise<SentinelTopology> {
  const masterName = options.masterName ?? 'mymaster';
  const downAfter = options.downAfterMs ?? 1000;
  const failoverTimeout = options.failoverTimeoutMs ?? 3000;
  const started: Server[] = [];
  try {
    const a = await launch({}, () => [...BASE_CONFIG]);
    started.push(a);
    const b = await launch({}, () => [...BASE_CONFIG, `replicaof ${HOST} ${a.port}`]);
    started.push(b);
    await replicaCaughtUp(a, b, 10_000);
    for (let i = 0; i < 3; i++) {
      const sentinel = await launch(
        {},
        () => [
          `bind ${HOST}`,
          'protected-mode no',
          'loglevel warning',
          `sentinel monitor ${masterName} ${HOST} ${a.port} 2`,
          `sentinel down-after-milliseconds ${masterName} ${downAfter}`,
          `sentinel failover-timeout ${masterName} ${failoverTimeout}`,
          `sentinel parallel-syncs ${masterName} 1`,
        ],
        true,
      );
      started.push(sentinel);
      // Sentinel polls INFO every 10 s and says hello every 2 s; at those rates discovery and the
      // old master's demotion after a failover take ~10 s. SENTINEL DEBUG (Redis 7) shortens them.
      await redisCommand(sentinel.port, [
        'SENTINEL',
        'DEBUG',
        'INFO-PERIOD',
        500,
        'PUBLISH-PERIOD',
        250,
      ]);
    }
    const sentinelServers = started.slice(2);
    await sentinelsReady(sentinelServers, masterName, b.port, 10_000);
    return new Topology(masterName, a, b, sentinelServers);
  } catch (err) {
    await closeAll(started).catch(() => undefined);
    throw err;
  }
}

/**
 * Waits until `replica`'s link to `master` is up and it has applied the replication stream at
 * least up to the master's offset when the wait began.
 */
async function replicaCaughtUp(master: Server, replica: Server, timeoutMs: number): Promise<void> {
  const target = Number(
    infoFields(await redisCommand(master.port, ['INFO', 'replication'])).get('master_repl_offset'),
  );
  await waitFor(
    `replica ${replica.port} to catch up with master ${master.port} (offset ${target})`,
    async () => {
      const info = infoFields(await redisCommand(replica.port, ['INFO', 'replication']));
      return (
        info.get('master_link_status') === 'up' && Number(info.get('slave_repl_offset')) >= target
      );
    },
    { timeoutMs, log: () => replica.log() },
  );
}

/**
 * Waits until every sentinel sees the other two and sees `replicaPort` as a healthy replica of
 * the current master: what a failover (asked for, or after a kill) needs to pick it.
 */
async function sentinelsReady(
  sentinels: readonly Server[],
  masterName: string,
  replicaPort: number,
  timeoutMs: number,
): Promise<void> {
  for (const s of sentinels) {
    await waitFor(
      `sentinel ${s.port} to see the other sentinels and replica ${replicaPort}`,
      async () => {
        const master = pairs(await redisCommand(s.port, ['SENTINEL', 'MASTER', masterName]));
        const replicas = await redisCommand(s.port, ['SENTINEL', 'REPLICAS', masterName]);
        const replica = (Array.isArray(replicas) ? replicas : [])
          .map(pairs)
          .find((r) => r.get('port') === String(replicaPort));
        return (
          master.get('num-other-sentinels') === '2' &&
          replica?.get('flags') === 'slave' &&
          replica.get('master-link-status') === 'ok'
        );
      },
      { timeoutMs, log: () => s.log() },
    );
  }
}

class Topology implements SentinelTopology {
  constructor(
    readonly masterName: string,
    private primary: Server,
    private secondary: Server,
    readonly sentinelServers: readonly Server[],
  ) {}

  get master(): RedisServer {
    return this.primary;
  }
  get replica(): RedisServer {
    return this.secondary;
  }
  get sentinels(): readonly HostPort[] {
    return this.sentinelServers.map((s) => ({ host: HOST, port: s.port }));
  }

  async failover(options: { killMaster?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const oldMaster = this.primary;
    const newMaster = this.secondary;
    if (!newMaster.running) {
      throw new Error(`the replica (port ${newMaster.port}) is not running; restart() it first`);
    }
    const timeoutMs = options.timeoutMs ?? 15_000;
    const log = () => this.sentinelServers.map((s) => `[${s.port}] ${s.log()}`).join('\n');
    // Right after start-up or a previous failover the replica may still be syncing, and a
    // sentinel would then find no good replica and abort the failover.
    await sentinelsReady(this.sentinelServers, this.masterName, newMaster.port, timeoutMs);
    // Writes acknowledged before failover() was called survive it.
    await replicaCaughtUp(oldMaster, newMaster, timeoutMs);
    if (options.killMaster) {
      await oldMaster.stop();
    } else {
      // NOGOODSLAVE / INPROG are transient right after start-up or another failover.
      const first = this.sentinelServers[0];
      if (first === undefined) throw new Error('no sentinel');
      await waitFor(
        'SENTINEL FAILOVER to be accepted',
        async () =>
          (await redisCommand(first.port, ['SENTINEL', 'FAILOVER', this.masterName])) === 'OK',
        { timeoutMs, log },
      );
    }
    await waitFor(
      `the sentinels to report ${newMaster.port} as master`,
      async () => {
        for (const s of this.sentinelServers) {
          const addr = await redisCommand(s.port, [
            'SENTINEL',
            'GET-MASTER-ADDR-BY-NAME',
            this.masterName,
          ]);
          if (!Array.isArray(addr) || Number(addr[1]) !== newMaster.port) return false;
        }
        return (await role(newMaster.port)) === 'master';
      },
      { timeoutMs, log },
    );
    if (!options.killMaster) {
      // The demotion is what makes stale clients see READONLY; wait for it so tests exercise it.
      await waitFor(
        'the old master to become a replica',
        async () => (await role(oldMaster.port)) === 'slave',
        {
          timeoutMs,
          log: () => oldMaster.log(),
        },
      );
    }
    this.primary = newMaster;
    this.secondary = oldMaster;
  }

  close(): Promise<void> {
    return closeAll([...this.sentinelServers, this.primary, this.secondary]);
  }
}

/**
 * Starts a cluster of three masters (no replicas), each with its own free client port and free
 * cluster-bus port (`cluster-port`), joined with `redis-cli --cluster create`, and resolves once
 * every node reports `cluster_state:ok` and knows the three nodes. On failure everything
 * started so far is closed.
 */
export async function startCluster(): Promise<RedisCluster> {
  const started: Server[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const busPort = await freePort();
      const server = await launch({}, () => [
        ...BASE_CONFIG,
        'cluster-enabled yes',
        'cluster-config-file nodes.conf',
        'cluster-node-timeout 2000',
        `cluster-port ${busPort}`,
      ]);
      started.push(server);
    }
    await runCli([
      '--cluster',
      'create',
      ...started.map((s) => `${HOST}:${s.port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    for (const s of started) {
      await waitFor(
        `cluster node ${s.port} to report cluster_state:ok`,
        async () => {
          const info = infoFields(await redisCommand(s.port, ['CLUSTER', 'INFO']));
          return info.get('cluster_state') === 'ok' && info.get('cluster_known_nodes') === '3';
        },
        { log: () => s.log() },
      );
    }
    const servers = started;
    return {
      nodes: servers.map((s) => ({ host: HOST, port: s.port })),
      servers,
      close: () => closeAll(servers),
    };
  } catch (err) {
    await closeAll(started).catch(() => undefined);
    throw err;
  }
}

function runCli(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err)
        reject(new Error(`redis-cli ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}
