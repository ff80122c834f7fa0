import type { ServerResponse } from 'node:http';
import type { Behaviour, ScheduleStep, Upstream } from './upstream.js';

/**
 * The fake upstream's admin API, a few JSON endpoints under the prefix given as
 * `startUpstream({ admin: '/__admin' })`. Durations are milliseconds or strings such as
 * `"250ms"`, `"10s"`, `"1m"`.
 *
 * | request                          | body                                               |
 * | -------------------------------- | -------------------------------------------------- |
 * | `GET /__admin`                   | → the state: request count, behaviours, schedules  |
 * | `PUT /__admin/behaviour`         | `{ path?, behaviour }` (a behaviour or a sequence) |
 * | `POST /__admin/schedule`         | `{ path?, startIn?, steps: [{ duration, behaviour }] }` → the schedule with absolute times |
 * | `POST /__admin/reset`            | forget behaviours, schedules and the request log   |
 * | `POST /__admin/drop-connections` | destroy every open connection                      |
 *
 * A behaviour is the JSON form of {@link Behaviour}: `{ "latency": { "min": "50ms", "max":
 * "1s" }, "errorRate": 0.2, "fault": "reset", "faultRate": 0.05 }`.
 */
export function handleAdmin(
  upstream: Upstream,
  path: string,
  method: string,
  body: Buffer,
  res: ServerResponse,
): void {
  const send = (status: number, payload: unknown): void => {
    const text = JSON.stringify(payload);
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.setHeader('content-length', Buffer.byteLength(text));
    res.setHeader('cache-control', 'no-store');
    res.end(text);
  };
  try {
    const route = `${method} ${path.replace(/\/$/, '') || '/'}`;
    switch (route) {
      case 'GET /':
        return send(200, state(upstream));
      case 'PUT /behaviour': {
        const input = object(parseJson(body), 'body');
        const behaviour = behaviours(input.behaviour ?? {});
        if (input.path === undefined) upstream.setBehaviour(behaviour);
        else upstream.setBehaviour(pathPattern(input.path), behaviour);
        return send(200, state(upstream));
      }
      case 'POST /schedule': {
        const input = object(parseJson(body), 'body');
        if (!Array.isArray(input.steps)) throw new AdminError('steps must be a list');
        const steps: ScheduleStep[] = input.steps.map((raw, i) => {
          const step = object(raw, `steps[${i}]`);
          return {
            duration: duration(step.duration, `steps[${i}].duration`),
            behaviour: behaviours(step.behaviour ?? {}),
          };
        });
        const info = upstream.schedule(steps, {
          path: input.path === undefined ? undefined : pathPattern(input.path),
          startIn: input.startIn === undefined ? 0 : duration(input.startIn, 'startIn'),
        });
        return send(200, info);
      }
      case 'POST /reset':
        upstream.reset();
        return send(200, state(upstream));
      case 'POST /drop-connections':
        // After the answer has gone out: this request's own connection is one of them.
        res.once('finish', () => setImmediate(() => upstream.dropConnections()));
        return send(200, { dropped: true });
      default:
        return send(404, { error: `no admin endpoint ${route}` });
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    send(400, { error: message });
  }
}

class AdminError extends Error {}

function state(upstream: Upstream) {
  return {
    origin: upstream.origin,
    requests: upstream.requests.count,
    connections: upstream.connections,
    behaviours: upstream.behaviours(),
    schedules: upstream.schedules(),
  };
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new AdminError('the body must be JSON');
  }
}

function object(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AdminError(`${where} must be an object`);
  }
  return value as Record<string, unknown>;
}

function pathPattern(value: unknown): string {
  if (typeof value !== 'string' || !value.startsWith('/')) {
    throw new AdminError(`path must start with "/", got ${JSON.stringify(value)}`);
  }
  return value;
}

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000 };

/** Milliseconds from a number or `"250ms"`, `"1.5s"`, `"1m"`. */
export function duration(value: unknown, where: string): number {
  if (typeof value === 'number' && value >= 0 && Number.isFinite(value)) return value;
  if (typeof value === 'string') {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(value.trim());
    if (match !== null) return Math.round(Number(match[1]) * UNITS[match[2] ?? 'ms']!);
  }
  throw new AdminError(
    `${where} must be a duration ("250ms", "10s", or ms), got ${JSON.stringify(value)}`,
  );
}

const FAULTS = new Set(['reset', 'reset-after-headers', 'hang']);

function behaviour(value: unknown, where: string): Behaviour {
  const input = object(value, where);
  const out: Behaviour = {};
  for (const [key, v] of Object.entries(input)) {
    switch (key) {
      case 'latency':
        if (typeof v === 'object' && v !== null) {
          const range = object(v, `${where}.latency`);
          out.latency = {
            min: duration(range.min, `${where}.latency.min`),
            max: duration(range.max, `${where}.latency.max`),
          };
        } else {
          out.latency = duration(v, `${where}.latency`);
        }
        break;
      case 'bodyDelay':
        out.bodyDelay = duration(v, `${where}.bodyDelay`);
        break;
      case 'fault':
        if (typeof v !== 'string' || !FAULTS.has(v)) {
          throw new AdminError(`${where}.fault must be one of ${[...FAULTS].join(', ')}`);
        }
        out.fault = v as Behaviour['fault'];
        break;
      case 'faultRate':
      case 'errorRate':
      case 'errorStatus':
      case 'bodySize':
        if (typeof v !== 'number') throw new AdminError(`${where}.${key} must be a number`);
        out[key] = v;
        break;
      case 'status':
        if (typeof v !== 'number' && !(Array.isArray(v) && v.every((s) => typeof s === 'number'))) {
          throw new AdminError(`${where}.status must be a status code or a list of them`);
        }
        out.status = v as number | number[];
        break;
      case 'headers':
        out.headers = object(v, `${where}.headers`) as Behaviour['headers'];
        break;
      case 'retryAfter':
        if (typeof v !== 'number' && typeof v !== 'string') {
          throw new AdminError(`${where}.retryAfter must be a number or a date`);
        }
        out.retryAfter = v;
        break;
      case 'body':
        out.body = v;
        break;
      case 'chunked':
        out.chunked = v === true;
        break;
      default:
        throw new AdminError(`${where}: unknown field ${JSON.stringify(key)}`);
    }
  }
  return out;
}

/** A behaviour or a sequence of them, from JSON (durations as in {@link duration}). */
export function behaviours(value: unknown): Behaviour | Behaviour[] {
  if (Array.isArray(value)) return value.map((v, i) => behaviour(v, `behaviour[${i}]`));
  return behaviour(value, 'behaviour');
}
