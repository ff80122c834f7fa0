import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { compileAllowlist } from '../policies/rate-limit/allowlist.js';
import { parseRouteMatch } from './route-match.js';
import { FormatError, describeValue, isPlainObject, setOwn } from './problems.js';
import type { Path } from './problems.js';
import { walk } from './walk.js';
import type { Branch, Format, FormatContext } from './walk.js';

/**
 * Every value format of the schema. Each validates one kind of value as users write it (files,
 * env vars, code) and coerces it to the resolved form (durations to milliseconds, ...).
 */

/** Route, named-policy and resource names: they become metric labels. */
export const NAME_PATTERN = /^[A-Za-z0-9_.:-]+$/;
const NAME_RULE = 'letters, digits and _ . : - only';

/** Longest delay Node's timers honour; longer ones fire at once (and warn). */
export const MAX_DURATION_MS = 2_147_483_647;

/** Header names as RFC 9110 tokens. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** What redacted values are replaced with. */
export const REDACTED = '[redacted]';

// ---------------------------------------------------------------------------------------------
// env var text

function envBoolean(raw: string): unknown {
  const text = raw.trim().toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  return raw;
}

function envNumber(raw: string): unknown {
  return /^\s*-?(\d+(\.\d*)?|\.\d+)\s*$/.test(raw) ? Number(raw) : raw;
}

function envList(raw: string): unknown {
  const text = raw.trim();
  if (text.startsWith('[')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return raw;
    }
  }
  return text === '' ? [] : text.split(',').map((s) => s.trim());
}

// ---------------------------------------------------------------------------------------------
// scalars

/** `true` or `false` (env vars: also `1`/`0`). */
export const boolean: Format<boolean> = {
  name: 'boolean',
  parse(value) {
    if (typeof value !== 'boolean') throw new FormatError('must be true or false', value);
    return value;
  },
  fromEnv: envBoolean,
};

function rangeText(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return ` between ${min} and ${max}`;
  if (min !== undefined) return ` >= ${min}`;
  if (max !== undefined) return ` <= ${max}`;
  return '';
}

/** An integer, optionally bounded. */
export function integer(options: { min?: number; max?: number } = {}): Format<number> {
  const rule = `an integer${rangeText(options.min, options.max)}`;
  return {
    name: rule.slice(3),
    parse(value) {
      // Safe integers only: the policies refuse larger ones (counts past 2^53 are not exact).
      if (
        typeof value !== 'number' ||
        !Number.isSafeInteger(value) ||
        (options.min !== undefined && value < options.min) ||
        (options.max !== undefined && value > options.max)
      ) {
        throw new FormatError(`must be ${rule}`, value);
      }
      return value;
    },
    fromEnv: envNumber,
  };
}

/** A finite number, optionally bounded. */
export function number(options: { min?: number; max?: number } = {}): Format<number> {
  const rule = `a number${rangeText(options.min, options.max)}`;
  return {
    name: rule.slice(2),
    parse(value) {
      if (
        typeof value !== 'number' ||
        !Number.isFinite(value) ||
        (options.min !== undefined && value < options.min) ||
        (options.max !== undefined && value > options.max)
      ) {
        throw new FormatError(`must be ${rule}`, value);
      }
      return value;
    },
    fromEnv: envNumber,
  };
}

/** One of a fixed set of strings. */
export function oneOf<T extends string>(values: readonly T[]): Format<T> {
  return {
    name: values.map((v) => `\`${v}\``).join(' | '),
    parse(value) {
      if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
        throw new FormatError(`must be one of ${values.join(', ')}`, value);
      }
      return value as T;
    },
  };
}

/** A string; `pattern` (with `rule` describing it) narrows it. */
export function string(
  options: { allowEmpty?: boolean; pattern?: RegExp; rule?: string; name?: string } = {},
): Format<string> {
  return {
    name: options.name ?? 'string',
    parse(value) {
      if (typeof value !== 'string' || (options.allowEmpty !== true && value === '')) {
        throw new FormatError(
          options.allowEmpty === true ? 'must be a string' : 'must be a non-empty string',
          value,
        );
      }
      if (options.pattern !== undefined && !options.pattern.test(value)) {
        throw new FormatError(
          `must be ${options.rule ?? `a string matching ${options.pattern}`}`,
          value,
        );
      }
      return value;
    },
  };
}

/** A route/policy/resource name (they become metric labels). */
export const labelName: Format<string> = string({
  name: 'name',
  pattern: NAME_PATTERN,
  rule: `a name of ${NAME_RULE}`,
});

/** An HTTP header name (stored lower-case, as Node presents incoming headers). */
export const headerName: Format<string> = {
  name: 'header name',
  parse(value) {
    if (typeof value !== 'string' || !TOKEN.test(value)) {
      throw new FormatError('must be an HTTP header name', value);
    }
    return value.toLowerCase();
  },
};

/** A URL path starting with `/` (health, metrics and exclude paths). */
export const urlPath: Format<string> = {
  name: 'path',
  parse(value) {
    if (typeof value !== 'string' || !value.startsWith('/') || /[\s?#]/.test(value)) {
      throw new FormatError(
        'must be a path starting with "/" (no spaces, query or fragment)',
        value,
      );
    }
    return value;
  },
};

// ---------------------------------------------------------------------------------------------
// durations and sizes

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION = /^(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)?$/;
const DURATION_RULE = 'a duration like "250ms", "5s", "1m", "1h" or a number of milliseconds';

/**
 * Milliseconds from `"250ms"`, `"5s"`, `"1m"`, `"1h"` (decimals allowed, rounded to the
 * millisecond), a number of milliseconds, or a digit string (env vars). `min: 1` forbids 0.
 */
export function duration(options: { min?: number } = {}): Format<number> {
  const min = options.min ?? 0;
  return {
    name: min > 0 ? 'duration > 0' : 'duration',
    parse(value) {
      let ms: number | undefined;
      if (typeof value === 'number') {
        if (Number.isFinite(value) && value >= 0) ms = Math.round(value);
        else if (value < 0) throw new FormatError('must not be negative', value);
      } else if (typeof value === 'string') {
        const text = value.trim();
        if (text.startsWith('-')) throw new FormatError('must not be negative', value);
        const match = DURATION.exec(text);
        if (match !== null) ms = Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!);
      }
      if (ms === undefined) throw new FormatError(`must be ${DURATION_RULE}`, value);
      if (ms < min) throw new FormatError(`must be at least ${min}ms`, value);
      if (ms > MAX_DURATION_MS) {
        throw new FormatError(`must be at most ${MAX_DURATION_MS}ms (about 24.8 days)`, value);
      }
      return ms;
    },
  };
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1000,
  kib: 1024,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** Bytes from a number or `"512kb"`, `"10MiB"`, `"1gb"` (kb = 1000, KiB = 1024). */
export const bytes: Format<number> = {
  name: 'size',
  parse(value) {
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
    if (typeof value === 'string') {
      const match = /^(\d+(?:\.\d+)?)\s?([a-z]+)?$/i.exec(value.trim());
      const unit = SIZE_UNITS[(match?.[2] ?? 'b').toLowerCase()];
      if (match !== null && unit !== undefined) {
        const size = Math.round(Number(match[1]) * unit);
        if (Number.isSafeInteger(size)) return size;
      }
    }
    throw new FormatError('must be a size in bytes like 1048576, "512kb" or "10MiB"', value);
  },
  fromEnv: (raw) => (/^\d+$/.test(raw.trim()) ? Number(raw) : raw),
};

// ---------------------------------------------------------------------------------------------
// lists

/** A list whose entries `item` validates; each bad entry is reported at its index. */
function listOf<T>(
  listName: string,
  item: (value: unknown) => T,
  options: { nonEmpty?: boolean; check?: (list: T[], ctx: FormatContext) => void } = {},
): Format<T[]> {
  return {
    name: listName,
    parse(value, ctx) {
      if (!Array.isArray(value)) throw new FormatError('must be a list', value);
      if (options.nonEmpty === true && value.length === 0) {
        throw new FormatError('must not be empty');
      }
      const out: T[] = [];
      value.forEach((entry, index) => {
        try {
          out.push(item(entry));
        } catch (err) {
          if (!(err instanceof FormatError)) throw err;
          const got = err.hasValue ? `, got ${describeValue(err.value)}` : '';
          ctx.report([...ctx.path, { index }], `${err.message}${got}`);
        }
      });
      options.check?.(out, ctx);
      return out;
    },
    fromEnv: envList,
  };
}

/** Strings (non-empty). */
export const stringList: Format<string[]> = listOf('list of strings', (v) =>
  string().parse(v, { path: [], report: () => undefined }),
);

/**
 * Rate-limit allowlist entries: keys, IP addresses or CIDR ranges, each accepted by the
 * allowlist the middleware compiles (a CIDR-looking entry must be a valid one).
 */
export const allowlistEntries: Format<string[]> = listOf('list of keys, IPs or CIDRs', (v) => {
  const entry = string().parse(v, { path: [], report: () => undefined });
  try {
    compileAllowlist([entry]);
  } catch (err) {
    throw new FormatError((err as Error).message.replace(/^allowlist entry "[^"]*" /, ''), v);
  }
  return entry;
});

/** URL paths. */
export const pathList: Format<string[]> = listOf('list of paths', (v) =>
  urlPath.parse(v, { path: [], report: () => undefined }),
);

const STATUS_PATTERN = /^([1-5]xx|[1-5]\d\d)$/;

/** Status patterns: `"5xx"`, `"4xx"`, `"503"` (numbers are accepted and turned into strings). */
export const statusPatterns: Format<string[]> = listOf('list of status patterns', (v) => {
  const text = typeof v === 'number' && Number.isInteger(v) ? String(v) : v;
  if (typeof text !== 'string' || !STATUS_PATTERN.test(text)) {
    throw new FormatError('must be a status pattern like "5xx", "4xx" or "503"', v);
  }
  return text;
});

/** Exact HTTP status codes. */
export const statusCodes: Format<number[]> = listOf('list of status codes', (v) => {
  const code = typeof v === 'string' && /^\d{3}$/.test(v) ? Number(v) : v;
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 100 || code > 599) {
    throw new FormatError('must be an HTTP status code (100-599)', v);
  }
  return code;
});

/** The status sent on a timeout: a 4xx or 5xx code. */
export const errorStatus: Format<number> = {
  name: 'status code 400-599',
  parse(value) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 400 || value > 599) {
      throw new FormatError('must be a 4xx or 5xx status code', value);
    }
    return value;
  },
  fromEnv: envNumber,
};

/** Histogram buckets: positive seconds, strictly ascending. */
export const buckets: Format<number[]> = listOf(
  'list of seconds',
  (v) => {
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) {
      throw new FormatError('must be a positive number of seconds', v);
    }
    return n;
  },
  {
    nonEmpty: true,
    check(list, ctx) {
      for (let i = 1; i < list.length; i++) {
        if (list[i]! <= list[i - 1]!) {
          ctx.report(
            ctx.path,
            `must be in ascending order without repeats (${list[i - 1]} then ${list[i]})`,
          );
          return;
        }
      }
    },
  },
);

// ---------------------------------------------------------------------------------------------
// middleware specifics

const TRUST_PRESETS = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** Throws unless `entry` is an address, subnet or preset proxy-addr (Express) accepts. */
function checkTrustEntry(entry: string): void {
  if (TRUST_PRESETS.has(entry)) return;
  const slash = entry.lastIndexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  if (!ipaddr.isValid(address)) {
    throw new FormatError(`has an invalid address ${JSON.stringify(entry)}`);
  }
  if (slash === -1) return;
  const kind = ipaddr.parse(address).kind();
  const max = kind === 'ipv6' ? 128 : 32;
  const range = entry.slice(slash + 1);
  let prefix: number | null = null;
  if (/^\d+$/.test(range)) prefix = Number(range);
  else if (kind === 'ipv4' && ipaddr.IPv4.isValidFourPartDecimal(range)) {
    prefix = ipaddr.IPv4.parse(range).prefixLengthFromSubnetMask();
  }
  if (prefix === null || prefix <= 0 || prefix > max) {
    throw new FormatError(`has an invalid subnet ${JSON.stringify(entry)}`);
  }
}

const TRUST_RULE =
  'must be true, false, a hop count, or addresses/subnets/presets (loopback, linklocal, uniquelocal) as a comma list or a list';

/** Express's 'trust proxy' setting: boolean, hop count, or addresses/subnets/presets. */
export const trustProxy: Format<boolean | number | string | string[]> = {
  name: 'boolean | integer | string | list',
  parse(value) {
    if (typeof value === 'boolean') return value;
    if (typeof value === 'number') {
      if (Number.isInteger(value) && value >= 0) return value;
      throw new FormatError(TRUST_RULE, value);
    }
    const entries =
      typeof value === 'string'
        ? value.split(',').map((s) => s.trim())
        : Array.isArray(value) && value.every((v) => typeof v === 'string')
          ? (value as string[]).map((s) => s.trim())
          : undefined;
    if (entries === undefined || entries.length === 0 || entries.includes('')) {
      throw new FormatError(TRUST_RULE, value);
    }
    try {
      entries.forEach(checkTrustEntry);
    } catch (err) {
      if (err instanceof FormatError) throw new FormatError(`${TRUST_RULE}; it ${err.message}`);
      throw err;
    }
    return typeof value === 'string' ? value.trim() : entries;
  },
  fromEnv(raw) {
    const text = raw.trim();
    if (text === 'true' || text === 'false') return text === 'true';
    if (/^\d+$/.test(text)) return Number(text);
    return text;
  },
};

/**
 * IP addresses and CIDR ranges (`10.0.0.5`, `10.0.0.0/8`, `2001:db8::/32`) allowed to reach a
 * protected endpoint. Unlike a rate-limit allowlist, literal keys are not accepted: a typo such
 * as `10.0.0/8` must fail at start-up rather than silently match nobody.
 */
export const addressList: Format<string[]> = listOf('list of IPs/CIDRs', (v) => {
  const rule = 'must be an IP address or CIDR range like "10.0.0.0/8" or "2001:db8::/32"';
  // No zone ids (`fe80::1%eth0`): BlockList cannot hold them.
  if (typeof v !== 'string' || v.includes('%')) throw new FormatError(rule, v);
  const slash = v.indexOf('/');
  const family = isIP(slash === -1 ? v : v.slice(0, slash));
  if (family === 0) throw new FormatError(rule, v);
  if (slash !== -1) {
    const prefix = v.slice(slash + 1);
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
      throw new FormatError(`must have a prefix length from 0 to ${max}`, v);
    }
  }
  return v;
});

/** Shortest bearer token accepted: a guessable token is no protection. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * A bearer token (RFC 6750 `b64token` characters) of at least {@link MIN_TOKEN_LENGTH}
 * characters. Meant for sensitive leaves: its value is never echoed in problems.
 */
export const bearerToken: Format<string> = {
  name: `token (>= ${MIN_TOKEN_LENGTH} chars)`,
  parse(value) {
    if (typeof value !== 'string' || !/^[A-Za-z0-9\-._~+/]+=*$/.test(value)) {
      throw new FormatError(
        'must be a bearer token: letters, digits and - . _ ~ + / (then optional =), no spaces',
      );
    }
    if (value.length < MIN_TOKEN_LENGTH) {
      throw new FormatError(
        `must be at least ${MIN_TOKEN_LENGTH} characters long (got ${value.length})`,
      );
    }
    return value;
  },
};

/** Rate-limit key: `ip`, `header:<name>` or `fn:<name>` (a key generator given in code). */
export const rateLimitKey: Format<string> = {
  name: '`ip` | `header:<name>` | `fn:<name>`',
  parse(value) {
    if (typeof value === 'string') {
      if (value === 'ip') return value;
      if (value.startsWith('header:') && TOKEN.test(value.slice(7))) {
        return `header:${value.slice(7).toLowerCase()}`;
      }
      if (value.startsWith('fn:') && /^[A-Za-z_$][\w$.-]*$/.test(value.slice(3))) return value;
    }
    throw new FormatError('must be "ip", "header:<header name>" or "fn:<name>"', value);
  },
};

/** Rate-limit store: `memory` or `redis:<resource name>` (checked against resources.redis). */
export const rateLimitStore: Format<string> = {
  name: '`memory` | `redis:<name>`',
  parse(value) {
    if (value === 'memory') return value;
    if (
      typeof value === 'string' &&
      value.startsWith('redis:') &&
      NAME_PATTERN.test(value.slice(6))
    ) {
      return value;
    }
    throw new FormatError('must be "memory" or "redis:<name of a resources.redis entry>"', value);
  },
};

/** A Prometheus metric name prefix (may be empty). */
export const metricPrefix: Format<string> = string({
  name: 'metric prefix',
  allowEmpty: true,
  pattern: /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/,
  rule: 'a Prometheus metric name prefix (letters, digits, _ and :, not starting with a digit)',
});

/** A route `match`; see {@link parseRouteMatch}. */
export const routeMatch: Format = {
  name: 'route match',
  parse(value) {
    try {
      return parseRouteMatch(value);
    } catch (err) {
      throw new FormatError((err as Error).message);
    }
  },
};

// ---------------------------------------------------------------------------------------------
// resources

/** An HTTP(S) origin without path, query or credentials; resolved to `URL.origin`. */
export const httpOrigin: Format<string> = {
  name: 'http(s) origin',
  parse(value) {
    const rule = 'must be an http:// or https:// origin without path, query or credentials';
    if (typeof value !== 'string') throw new FormatError(rule, value);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new FormatError(rule, value);
    }
    if (
      (url.protocol !== 'http:' && url.protocol !== 'https:') ||
      (url.pathname !== '/' && url.pathname !== '') ||
      url.search !== '' ||
      url.hash !== '' ||
      url.username !== '' ||
      url.password !== ''
    ) {
      throw new FormatError(rule, url.password === '' ? value : maskUrl(value));
    }
    return url.origin;
  },
};

/** `redis://user:secret@host` → `redis://user:[redacted]@host`; unparseable → `[redacted]`. */
export function maskUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password === '') return value;
    const at = value.indexOf('@');
    const scheme = value.indexOf('//') + 2;
    const credentials = value.slice(scheme, at);
    const colon = credentials.indexOf(':');
    return `${value.slice(0, scheme)}${credentials.slice(0, colon + 1)}${REDACTED}${value.slice(at)}`;
  } catch {
    return REDACTED;
  }
}

/** A `redis://` or `rediss://` URL (sensitive: its password is masked when printed). */
export const redisUrl: Format<string> = {
  name: 'redis URL',
  parse(value) {
    const rule = 'must be a redis:// or rediss:// URL with a host';
    if (typeof value !== 'string') throw new FormatError(rule);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new FormatError(rule);
    }
    if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
      throw new FormatError(rule);
    }
    return value;
  },
  redact: (value) => (typeof value === 'string' ? maskUrl(value) : value),
};

/** A list of `{ host, port }` (or `"host:port"` strings), for sentinels and cluster nodes. */
export const hostPorts: Format<{ host: string; port: number }[]> = listOf(
  'list of host:port',
  (v) => {
    let host: unknown;
    let port: unknown;
    if (typeof v === 'string') {
      const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(v);
      host = match?.[1]?.replace(/^\[|\]$/g, '');
      port = match === null ? undefined : Number(match[2]);
    } else if (isPlainObject(v) && Object.keys(v).every((k) => k === 'host' || k === 'port')) {
      ({ host, port } = v);
    }
    if (
      typeof host !== 'string' ||
      host === '' ||
      typeof port !== 'number' ||
      !Number.isInteger(port) ||
      port < 1 ||
      port > 65535
    ) {
      throw new FormatError('must be { host, port } or "host:port"', v);
    }
    return { host, port };
  },
);

const SENSITIVE_HEADER =
  /^(authorization|proxy-authorization|cookie)$|token|secret|password|passwd|api-?key|auth|session/i;

/** Header name → value (numbers become strings); values of credential headers are sensitive. */
export const headerMap: Format<Record<string, string>> = {
  name: 'map of header: value',
  parse(value, ctx) {
    if (!isPlainObject(value))
      throw new FormatError('must be a map of header names to values', value);
    const out: Record<string, string> = {};
    for (const [key, v] of Object.entries(value)) {
      if (!TOKEN.test(key)) {
        ctx.report([...ctx.path, key], 'is not a valid HTTP header name');
      } else if (typeof v === 'string' || typeof v === 'number') {
        setOwn(out, key.toLowerCase(), String(v));
      } else {
        ctx.report([...ctx.path, key], 'must be a string');
      }
    }
    return out;
  },
  redact(value) {
    if (!isPlainObject(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      setOwn(out, key, SENSITIVE_HEADER.test(key) ? REDACTED : v);
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// structured lists and maps

function entryName(value: unknown): string | undefined {
  return isPlainObject(value) && typeof value.name === 'string' ? value.name : undefined;
}

/**
 * The `middleware.routes` list: each entry is validated against `schema` (name, match, policy
 * and the partial policy set) field by field; problems name the entry's index and name.
 */
export function routeList(schema: Branch): Format<Record<string, unknown>[]> {
  return {
    name: 'list of routes',
    parse(value, ctx) {
      // `routes:` with every entry commented out is null in YAML.
      if (value === null) return [];
      if (!Array.isArray(value)) throw new FormatError('must be a list of routes', value);
      return value.map((entry, index) => {
        const at: Path = [...ctx.path, { index, label: entryName(entry) }];
        if (!isPlainObject(entry)) {
          ctx.report(at, `must be an object with name and match, got ${describeValue(entry)}`);
          return {};
        }
        return walk(schema, entry, at, 'partial', ctx.report);
      });
    },
    entries: {
      kind: 'list',
      schema,
      inherits: 'middleware.defaults',
      ownKeys: ['name', 'match', 'policy'],
    },
  };
}

/** Checks a map's keys and its entries' optional `name` (which must equal the key). */
function mapEntries(
  value: unknown,
  ctx: FormatContext,
  what: string,
): [string, Record<string, unknown>, Path][] {
  // `http:` with every entry commented out is null in YAML.
  if (value === null) return [];
  if (!isPlainObject(value)) throw new FormatError(`must be a map of ${what} by name`, value);
  const out: [string, Record<string, unknown>, Path][] = [];
  for (const [key, entry] of Object.entries(value)) {
    const at = [...ctx.path, key];
    if (!NAME_PATTERN.test(key)) {
      ctx.report(at, `is not a valid name (${NAME_RULE})`);
      continue;
    }
    if (!isPlainObject(entry)) {
      ctx.report(at, `must be an object, got ${describeValue(entry)}`);
      continue;
    }
    const { name: given, ...rest } = entry;
    if (given !== undefined && given !== key) {
      ctx.report([...at, 'name'], `must equal the entry's key ${JSON.stringify(key)} when given`);
    }
    out.push([key, rest, at]);
  }
  return out;
}

/** `middleware.policies`: named partial policy sets, each validated against `schema`. */
export function policyMap(schema: Branch): Format<Record<string, Record<string, unknown>>> {
  return {
    name: 'map of policy sets',
    parse(value, ctx) {
      const out: Record<string, Record<string, unknown>> = {};
      for (const [key, entry, at] of mapEntries(value, ctx, 'policy sets')) {
        setOwn(out, key, walk(schema, entry, at, 'partial', ctx.report));
      }
      return out;
    },
    entries: { kind: 'map', schema, inherits: 'middleware.defaults', ownKeys: [] },
  };
}

/**
 * `resources.http` / `resources.redis`: named resources, each validated against its own
 * schema with every default filled in. Leaves with `entryEnv` can also be set per entry with
 * `RESILIENCE_<KIND>_<NAME>_<SUFFIX>` (see {@link entryEnvVar}).
 */
export function resourceMap(
  kind: 'http' | 'redis',
  schema: Branch,
): Format<Record<string, Record<string, unknown>>> {
  return {
    name: `map of ${kind} resources`,
    parse(value, ctx) {
      const out: Record<string, Record<string, unknown>> = {};
      for (const [key, entry, at] of mapEntries(value, ctx, `${kind} resources`)) {
        setOwn(out, key, walk(schema, entry, at, 'complete', ctx.report));
      }
      return out;
    },
    entries: { kind: 'map', schema, envPrefix: `RESILIENCE_${kind.toUpperCase()}` },
  };
}

/** `RESILIENCE_REDIS_MY_CACHE_URL` for entry `my-cache` of a map with prefix `RESILIENCE_REDIS`. */
export function entryEnvVar(prefix: string, entry: string, suffix: string): string {
  return `${prefix}_${entry.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_${suffix}`;
}
