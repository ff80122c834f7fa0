import { InvalidArgumentError, PoolExhaustedError, TimeoutError } from '../errors.js';
import { systemClock } from '../policies/clock.js';
import type { Clock } from '../policies/clock.js';
import { Listeners } from '../policies/listeners.js';
import type {
  Disposable,
  HealthCheckResult,
  HealthReport,
  HealthStatus,
} from '../resources/types.js';
import { probeErrorMessage } from './check.js';
import type { HealthCheck, HealthCheckOptions } from './check.js';

// Written here rather than taken from a library: cockatiel has no health checks, and the
// status rules (thresholds both ways, degraded from live pool and error signals, a bounded
// history) are the issue's own.

/** Longest delay Node's timers honour. */
const MAX_TIMER_DELAY = 2_147_483_647;

/** Options of {@link HealthMonitor}. */
export interface HealthMonitorOptions {
  /** Time source for history timestamps and latencies. Default {@link systemClock}. */
  clock?: Clock;
}

/** Passed to {@link HealthMonitor.onStatusChange} listeners. */
export interface HealthStatusChange {
  name: string;
  from: HealthStatus;
  to: HealthStatus;
}

/** What {@link HealthMonitor.readiness} returns. */
export interface Readiness {
  /** Not shutting down, and every critical check up or degraded. */
  ready: boolean;
  /**
   * The aggregate: `down` when a critical check is down, else `unknown` when a critical check
   * has no verdict yet, else `degraded` when any check is degraded or a non-critical one is
   * down, else `up`.
   */
  status: HealthStatus;
  checks: HealthReport[];
}

/** Up/down as the thresholds decide; `degraded` is derived from `up` when it is read. */
type BaseStatus = 'unknown' | 'up' | 'down';

interface Entry {
  readonly check: HealthCheck;
  readonly options: Readonly<HealthCheckOptions>;
  base: BaseStatus;
  /** The last status observed (and announced to listeners). */
  status: HealthStatus;
  reason: string | undefined;
  successes: number;
  failures: number;
  lastError: string | undefined;
  utilisation: number | undefined;
  errorRate: number | undefined;
  history: HealthCheckResult[];
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
  /** Ends the running probe without recording it (dispose, close). */
  cancel: (() => void) | undefined;
  active: boolean;
}

function checkDuration(name: string, option: string, value: unknown): void {
  if (typeof value !== 'number' || !(value >= 1 && value <= MAX_TIMER_DELAY)) {
    throw new InvalidArgumentError(
      `health check "${name}": ${option} must be a number of milliseconds in [1, ${MAX_TIMER_DELAY}], got ${String(value)}`,
    );
  }
}

function checkInteger(name: string, option: string, value: unknown, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(
      `health check "${name}": ${option} must be an integer in [1, ${max}], got ${String(value)}`,
    );
  }
}

function checkPercent(name: string, option: string, value: unknown): void {
  if (typeof value !== 'number' || !(value >= 0 && value <= 100)) {
    throw new InvalidArgumentError(
      `health check "${name}": ${option} must be a percent in [0, 100], got ${String(value)}`,
    );
  }
}

function validateCheck(check: HealthCheck): void {
  if (typeof check !== 'object' || check === null) {
    throw new InvalidArgumentError(`health check must be an object, got ${String(check)}`);
  }
  if (typeof check.name !== 'string' || check.name === '') {
    throw new InvalidArgumentError(
      `health check name must be a non-empty string, got ${String(check.name)}`,
    );
  }
  if (typeof check.kind !== 'string' || check.kind === '') {
    throw new InvalidArgumentError(
      `health check "${check.name}": kind must be a non-empty string, got ${String(check.kind)}`,
    );
  }
  if (typeof check.critical !== 'boolean') {
    throw new InvalidArgumentError(
      `health check "${check.name}": critical must be a boolean, got ${String(check.critical)}`,
    );
  }
  for (const method of ['probe', 'utilisation', 'errorRate', 'details'] as const) {
    const fn = check[method];
    if (
      method === 'probe' ? typeof fn !== 'function' : fn !== undefined && typeof fn !== 'function'
    ) {
      throw new InvalidArgumentError(
        `health check "${check.name}": ${method} must be a function, got ${String(fn)}`,
      );
    }
  }
}

function validateOptions(name: string, options: HealthCheckOptions): Readonly<HealthCheckOptions> {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(
      `health check "${name}": options must be an object, got ${String(options)}`,
    );
  }
  const { interval, timeout, healthyThreshold, unhealthyThreshold, history, degraded } = options;
  checkDuration(name, 'interval', interval);
  checkDuration(name, 'timeout', timeout);
  checkInteger(name, 'healthyThreshold', healthyThreshold, Number.MAX_SAFE_INTEGER);
  checkInteger(name, 'unhealthyThreshold', unhealthyThreshold, Number.MAX_SAFE_INTEGER);
  checkInteger(name, 'history', history, 100);
  if (typeof degraded !== 'object' || degraded === null) {
    throw new InvalidArgumentError(
      `health check "${name}": degraded must be an object, got ${String(degraded)}`,
    );
  }
  checkPercent(name, 'degraded.poolUtilisation', degraded.poolUtilisation);
  checkPercent(name, 'degraded.errorRate', degraded.errorRate);
  return Object.freeze({
    interval,
    timeout,
    healthyThreshold,
    unhealthyThreshold,
    history,
    degraded: Object.freeze({
      poolUtilisation: degraded.poolUtilisation,
      errorRate: degraded.errorRate,
    }),
  });
}

/** A live signal, or undefined when it is missing, throws or is not a finite number. */
function signal(check: HealthCheck, method: 'utilisation' | 'errorRate'): number | undefined {
  try {
    const value = check[method]?.();
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function percent(ratio: number): number {
  return Math.round(ratio * 1000) / 10;
}

/**
 * Runs health checks in the background and keeps each one's status, reason and short history.
 *
 * A check starts `unknown`; its first success makes it `up`. `unhealthyThreshold` consecutive
 * failures make it `down` (from `unknown` or `up`), and `healthyThreshold` consecutive
 * successes bring it back `up`. A probe rejected with `PoolExhaustedError` could not run: it
 * is recorded as `skipped` and changes neither the status nor the streaks. An `up` check is
 * reported `degraded` while its pool utilisation or recent error rate is above the check's
 * thresholds; that is judged after every probe and again whenever a report is read, so it
 * follows the live signals.
 *
 * Every timer is unref'd; {@link close} clears them all and aborts running probes.
 */
export class HealthMonitor {
  readonly #clock: Clock;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Listeners<[HealthStatusChange]>('health monitor');
  #started = false;
  #closed = false;

  /** @throws {InvalidArgumentError} when `clock` has no `now()` method. */
  constructor(options: HealthMonitorOptions = {}) {
    const clock = options.clock ?? systemClock;
    if (typeof clock?.now !== 'function') {
      throw new InvalidArgumentError(`clock must have a now() method, got ${String(clock)}`);
    }
    this.#clock = clock;
  }

  /**
   * Registers a check (resources and custom checks from code alike). Once the monitor has
   * started, the check probes at once. `dispose()` of the result stops and removes it
   * (idempotent); its name can then be registered again.
   *
   * @throws {InvalidArgumentError} when the check or an option is malformed, a check of that
   *   name is already registered, or the monitor is closed.
   */
  add(check: HealthCheck, options: HealthCheckOptions): Disposable {
    validateCheck(check);
    const resolved = validateOptions(check.name, options);
    if (this.#closed) {
      throw new InvalidArgumentError(
        `cannot add health check "${check.name}": the health monitor is closed`,
      );
    }
    if (this.#entries.has(check.name)) {
      throw new InvalidArgumentError(`a health check named "${check.name}" is already registered`);
    }
    const entry: Entry = {
      check,
      options: resolved,
      base: 'unknown',
      status: 'unknown',
      reason: undefined,
      successes: 0,
      failures: 0,
      lastError: undefined,
      utilisation: undefined,
      errorRate: undefined,
      history: [],
      timer: undefined,
      running: undefined,
      cancel: undefined,
      active: true,
    };
    this.#entries.set(check.name, entry);
    if (this.#started) void this.#run(entry);
    return { dispose: () => this.#remove(entry) };
  }

  /**
   * Starts background checking: every check probes at once, then `interval` after each probe
   * ends, so a check never overlaps itself. Idempotent; does nothing once closed.
   */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    for (const entry of this.#entries.values()) void this.#run(entry);
  }

  /**
   * Probes now: the named check, or every check. A probe already running is joined rather
   * than doubled. Resolves once the probes are recorded; never rejects for a failed probe.
   * Once started, the next background probe comes `interval` after this one.
   *
   * @throws {InvalidArgumentError} (synchronously) when no check has that name.
   */
  checkNow(name?: string): Promise<void> {
    if (name !== undefined) return this.#run(this.#get(name));
    return Promise.all([...this.#entries.values()].map((entry) => this.#run(entry))).then(
      () => undefined,
    );
  }

  /**
   * The named check's report, with its status judged against the live signals now.
   *
   * @throws {InvalidArgumentError} when no check has that name.
   */
  report(name: string): HealthReport {
    const entry = this.#get(name);
    this.#refresh(entry);
    return this.#toReport(entry);
  }

  /** Every check's report, in registration order. */
  reports(): HealthReport[] {
    const out: HealthReport[] = [];
    for (const entry of this.#entries.values()) {
      this.#refresh(entry);
      out.push(this.#toReport(entry));
    }
    return out;
  }

  /**
   * Readiness: ready when not `shuttingDown` and every critical check is `up` or `degraded`.
   * A critical check still `unknown` (not probed successfully yet) is not ready; non-critical
   * checks never fail readiness.
   */
  readiness(options: { shuttingDown: boolean }): Readiness {
    const checks = this.reports();
    let criticalDown = false;
    let criticalUnknown = false;
    let degraded = false;
    for (const check of checks) {
      if (check.status === 'degraded') degraded = true;
      else if (check.status === 'down') {
        if (check.critical) criticalDown = true;
        else degraded = true;
      } else if (check.status === 'unknown' && check.critical) criticalUnknown = true;
    }
    const status: HealthStatus = criticalDown
      ? 'down'
      : criticalUnknown
        ? 'unknown'
        : degraded
          ? 'degraded'
          : 'up';
    return {
      ready: !options.shuttingDown && !criticalDown && !criticalUnknown,
      status,
      checks,
    };
  }

  /**
   * Calls `listener` after each change of a check's status (including to and from
   * `degraded`), the new status already in place. A listener that throws does not disturb
   * the monitor or other listeners (a process warning is emitted once per monitor).
   */
  onStatusChange(listener: (change: HealthStatusChange) => void): Disposable {
    return this.#listeners.add(listener);
  }

  /**
   * Stops all checking: clears every timer and aborts running probes (their outcome is not
   * recorded). Reports stay readable with their last status. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#entries.values()) this.#stop(entry);
  }

  #get(name: string): Entry {
    const entry = this.#entries.get(name);
    if (entry === undefined) {
      const known = [...this.#entries.keys()];
      throw new InvalidArgumentError(
        `no health check named "${String(name)}" (${
          known.length === 0 ? 'none is registered' : `registered: ${known.join(', ')}`
        })`,
      );
    }
    return entry;
  }

  #remove(entry: Entry): void {
    if (!entry.active) return;
    entry.active = false;
    this.#stop(entry);
    if (this.#entries.get(entry.check.name) === entry) this.#entries.delete(entry.check.name);
  }

  #stop(entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.cancel?.();
  }

  #run(entry: Entry): Promise<void> {
    if (entry.running !== undefined) return entry.running;
    if (!entry.active || this.#closed) return Promise.resolve();
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const running = this.#probe(entry).then(() => {
      entry.running = undefined;
      if (this.#started && entry.active && !this.#closed) this.#schedule(entry);
    });
    entry.running = running;
    return running;
  }

  #schedule(entry: Entry): void {
    const timer = setTimeout(() => {
      entry.timer = undefined;
      void this.#run(entry);
    }, entry.options.interval);
    timer.unref();
    entry.timer = timer;
  }

  #probe(entry: Entry): Promise<void> {
    const { check, options } = entry;
    const controller = new AbortController();
    const started = this.#clock.now();
    return new Promise<void>((resolve) => {
      let done = false;
      const settle = (record: boolean, error?: string, skipped = false): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        entry.cancel = undefined;
        if (record && entry.active && !this.#closed) this.#record(entry, started, error, skipped);
        resolve();
      };
      const timer = setTimeout(() => {
        // Recorded before the abort: a probe that ignores its signal must not hold the check's
        // schedule hostage; its late outcome is dropped by `done`.
        settle(true, `timed out after ${options.timeout}ms`);
        controller.abort(
          new TimeoutError(`health check "${check.name}" timed out after ${options.timeout}ms`, {
            timeoutMs: options.timeout,
          }),
        );
      }, options.timeout);
      timer.unref();
      entry.cancel = () => {
        settle(false);
        controller.abort();
      };
      let outcome: Promise<void>;
      try {
        outcome = Promise.resolve(check.probe(controller.signal));
      } catch (error) {
        outcome = Promise.reject(error);
      }
      outcome.then(
        () => settle(true),
        // A probe turned away by an exhausted pool could not run: saturation is load, not ill
        // health, and counting it would take every replica out of rotation at once.
        (error: unknown) =>
          settle(true, probeErrorMessage(error), error instanceof PoolExhaustedError),
      );
    });
  }

  #record(entry: Entry, started: number, error: string | undefined, skipped: boolean): void {
    const { options } = entry;
    const at = this.#clock.now();
    const ok = error === undefined;
    const latencyMs = Math.max(0, at - started);
    const result: HealthCheckResult = ok
      ? { at, ok, latencyMs }
      : skipped
        ? { at, ok, latencyMs, error, skipped }
        : { at, ok, latencyMs, error };
    entry.history.push(Object.freeze(result));
    if (entry.history.length > options.history) entry.history.shift();
    if (skipped) {
      // Neither a success nor a failure: the status and both streaks stay as they were.
    } else if (ok) {
      entry.successes++;
      entry.failures = 0;
      if (
        entry.base === 'unknown' ||
        (entry.base === 'down' && entry.successes >= options.healthyThreshold)
      ) {
        entry.base = 'up';
      }
    } else {
      entry.failures++;
      entry.successes = 0;
      entry.lastError = error;
      if (entry.base !== 'down' && entry.failures >= options.unhealthyThreshold) {
        entry.base = 'down';
      }
    }
    this.#refresh(entry);
  }

  /** Judges the status now and announces a change. */
  #refresh(entry: Entry): void {
    const { check, options } = entry;
    entry.utilisation = signal(check, 'utilisation');
    entry.errorRate = signal(check, 'errorRate');
    let status: HealthStatus = entry.base;
    let reason: string | undefined;
    if (entry.base === 'unknown') {
      reason = entry.history.length === 0 ? 'not checked yet' : entry.lastError;
    } else if (entry.base === 'down') {
      reason =
        entry.successes > 0
          ? `recovering: ${entry.successes} of ${options.healthyThreshold} checks passed`
          : entry.lastError;
    } else {
      const reasons: string[] = [];
      const { poolUtilisation, errorRate } = options.degraded;
      if (entry.utilisation !== undefined && entry.utilisation * 100 > poolUtilisation) {
        reasons.push(`pool utilisation ${percent(entry.utilisation)}% above ${poolUtilisation}%`);
      }
      if (entry.errorRate !== undefined && entry.errorRate * 100 > errorRate) {
        reasons.push(`error rate ${percent(entry.errorRate)}% above ${errorRate}%`);
      }
      if (reasons.length > 0) {
        status = 'degraded';
        reason = reasons.join('; ');
      }
    }
    entry.reason = reason;
    if (status === entry.status) return;
    const from = entry.status;
    entry.status = status;
    if (this.#closed || !entry.active) return;
    this.#listeners.emit({ name: check.name, from, to: status });
  }

  #toReport(entry: Entry): HealthReport {
    const { check } = entry;
    const details: Record<string, unknown> = {
      consecutiveSuccesses: entry.successes,
      consecutiveFailures: entry.failures,
    };
    if (entry.utilisation !== undefined) details.poolUtilisation = percent(entry.utilisation);
    if (entry.errorRate !== undefined) details.errorRate = percent(entry.errorRate);
    if (check.details !== undefined) {
      try {
        Object.assign(details, check.details());
      } catch {
        // Details are a courtesy; a failing getter must not break /readyz.
      }
    }
    return {
      name: check.name,
      kind: check.kind,
      status: entry.status,
      critical: check.critical,
      ...(entry.reason === undefined ? {} : { reason: entry.reason }),
      history: entry.history.slice(),
      details,
    };
  }
}
