import { METHODS } from 'node:http';
import { parse } from 'path-to-regexp';
import type { RouteMatch } from './types.js';

const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);

/**
 * Parses a route `match`: `"GET /orders/:id"`, `"GET,HEAD /orders"`, `"/admin/*"` (any
 * method), `"* /x"` (any method), `{ methods, path }` (methods optional; `null` or `"*"` =
 * any), or an already parsed {@link RouteMatch}. Methods are upper-cased and checked against
 * node:http's `METHODS`; the path must start with `/` and be a valid path-to-regexp v8 pattern,
 * where a bare `*` is allowed (Express 4 style) and kept as written.
 *
 * @throws Error with a message describing what is wrong (the config format turns it into a
 *   problem line).
 */
export function parseRouteMatch(input: unknown): RouteMatch {
  if (typeof input === 'string') {
    const parts = input.trim().split(/\s+/);
    if (parts.length === 1 && parts[0] !== '') return { methods: null, path: checkPath(parts[0]!) };
    if (parts.length === 2) {
      return { methods: parseMethods(parts[0]!), path: checkPath(parts[1]!) };
    }
    throw new Error(
      `must be "<METHODS> <path>" (e.g. "GET /orders/:id", "GET,HEAD /orders") or a path, got ${JSON.stringify(input)}`,
    );
  }
  if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
    const record = input as Record<string, unknown>;
    const extra = Object.keys(record).filter((k) => k !== 'methods' && k !== 'path');
    if (extra.length > 0) {
      throw new Error(
        `has unknown key ${extra.map((k) => JSON.stringify(k)).join(', ')}; expected methods and path`,
      );
    }
    const { methods, path } = record;
    if (typeof path !== 'string') throw new Error('must have a path (a string starting with "/")');
    let parsedMethods: readonly string[] | null;
    if (methods === undefined || methods === null) parsedMethods = null;
    else if (typeof methods === 'string') parsedMethods = parseMethods(methods);
    else if (Array.isArray(methods) && methods.every((m) => typeof m === 'string')) {
      parsedMethods = parseMethods(methods.join(','));
    } else throw new Error('methods must be a list of HTTP methods, "*" or null');
    return { methods: parsedMethods, path: checkPath(path) };
  }
  throw new Error('must be a string like "GET /orders/:id" or an object { methods, path }');
}

function parseMethods(text: string): readonly string[] | null {
  const methods = text.split(',').map((m) => m.trim().toUpperCase());
  if (methods.includes('*')) {
    if (methods.length > 1)
      throw new Error('"*" (any method) cannot be combined with other methods');
    return null;
  }
  const unique: string[] = [];
  for (const method of methods) {
    if (!KNOWN_METHODS.has(method)) {
      throw new Error(`unknown HTTP method ${JSON.stringify(method)}`);
    }
    if (!unique.includes(method)) unique.push(method);
  }
  return unique;
}

function checkPath(path: string): string {
  if (!path.startsWith('/'))
    throw new Error(`path must start with "/", got ${JSON.stringify(path)}`);
  if (/[\s?#]/.test(path)) {
    throw new Error(`path must not contain spaces, "?" or "#", got ${JSON.stringify(path)}`);
  }
  if (/\/\/|\/\.\.?(?:\/|$)/.test(path)) {
    // Express never dispatches such a path as written; it could only match a spelling.
    throw new Error(
      `path must not contain "//", "." or ".." segments, got ${JSON.stringify(path)}`,
    );
  }
  let n = 0;
  // A bare `*` is Express 4's wildcard; path-to-regexp v8 needs it named (`*name`).
  const pattern = path.replace(/\*(?![\w$])/g, () => `*wildcard${n++}`);
  try {
    parse(pattern);
  } catch (err) {
    let reason = (err as Error).message.replace(/; visit https?:\/\/\S+ for info$/, '');
    if (reason.endsWith(`: ${pattern}`)) reason = reason.slice(0, -pattern.length - 2);
    throw new Error(`path ${JSON.stringify(path)} is not a valid route pattern: ${reason}`);
  }
  return path;
}

// Percent-escapes, `//`, and `.`/`..` segments (also `/.` at the end): what can make one
// target read as several paths.
const AMBIGUOUS = /%|\/\/|\/\.(?:\.)?(?:\/|$)/;

/**
 * The paths one request path can be read as: as sent, percent-decoded, and each with `//`
 * collapsed and dot segments resolved (RFC 3986 §5.2.4). Express matches the path as sent;
 * static file servers, proxies and other frameworks decode or normalise it first. The first
 * reading is always the path as sent; most paths have only that one.
 */
export function pathReadings(path: string): string[] {
  if (!AMBIGUOUS.test(path)) return [path];
  const readings = [path];
  const add = (p: string): void => {
    if (!readings.includes(p)) readings.push(p);
  };
  if (path.includes('%')) {
    // Decoded once, and again for a server that decodes twice (`%252e` is then `.`); a few
    // rounds only, so a long run of `%2525…` cannot cost quadratic time.
    let decoded = path;
    for (let round = 0; round < 3; round++) {
      const next = safeDecode(decoded);
      if (next === undefined || next === decoded) break;
      decoded = next;
      add(decoded);
    }
  }
  for (const reading of [...readings]) add(removeDotSegments(reading));
  return readings;
}

function safeDecode(path: string): string | undefined {
  try {
    return decodeURIComponent(path);
  } catch {
    // A malformed escape: decode what can be decoded, as lenient servers do.
    const decoded = path.replace(/%[0-9a-fA-F]{2}/g, (escape) => {
      try {
        return decodeURIComponent(escape);
      } catch {
        return escape;
      }
    });
    return decoded === path ? undefined : decoded;
  }
}

/** Collapses `//` and resolves `.` and `..` segments; `..` never climbs above the root. */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    const last = i === segments.length - 1;
    if (segment === '..') out.pop();
    else if (segment !== '.' && (segment !== '' || last)) {
      out.push(segment);
      continue;
    }
    // A trailing `.` or `..` leaves the path ending in a slash, as in RFC 3986.
    if (last) out.push('');
  }
  return '/' + out.join('/');
}
