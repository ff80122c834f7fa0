import type { IncomingMessage } from 'node:http';
import parseurl from 'parseurl';
import { match as compilePath } from 'path-to-regexp';
import type { RouteMatch } from '../config/types.js';
import { pathReadings } from '../config/route-match.js';

/**
 * Turns the config's bare `*` wildcards into path-to-regexp v8's named ones: a trailing `/*`
 * also matches the prefix itself (`/admin/*` matches `/admin`), as users of Express 4 expect.
 */
export function toPathPattern(path: string): string {
  let n = 0;
  return path
    .replace(/\/\*(?![\w$])$/, () => `{/*wildcard${n++}}`)
    .replace(/\*(?![\w$])/g, () => `*wildcard${n++}`);
}

/**
 * How the app will dispatch a path to its handlers: Express's `case sensitive routing` and
 * `strict routing` settings, or Connect's `app.use(path)` (case-insensitive, and a mount path
 * matches everything under it).
 */
export interface DispatchMode {
  readonly caseSensitive: boolean;
  readonly strict: boolean;
  /** A route matches its path and everything below it (`/a` matches `/a/b` and `/a.json`). */
  readonly prefix: boolean;
}

/** Connect, or a bare Node server: no settings, Connect's own matching. */
export const CONNECT_DISPATCH: DispatchMode = Object.freeze({
  caseSensitive: false,
  strict: false,
  prefix: true,
});

const EXPRESS_MODES: readonly DispatchMode[] = [false, true].flatMap((caseSensitive) =>
  [false, true].map((strict) => Object.freeze({ caseSensitive, strict, prefix: false })),
);

/** The dispatch mode of `req.app`: Express settings when it has them, else Connect's. */
export function dispatchModeOf(app: unknown): DispatchMode {
  const get = (app as { get?: unknown } | undefined)?.get;
  if (typeof get !== 'function') return CONNECT_DISPATCH;
  const read = (key: string): boolean => Boolean((get as (k: string) => unknown).call(app, key));
  return EXPRESS_MODES[
    (read('case sensitive routing') ? 2 : 0) + (read('strict routing') ? 1 : 0)
  ]!;
}

function modeIndex(mode: DispatchMode): number {
  return (mode.caseSensitive ? 4 : 0) + (mode.strict ? 2 : 0) + (mode.prefix ? 1 : 0);
}

/**
 * A path as `mode` compares it: lower-cased when routing is case-insensitive, and without one
 * trailing slash unless routing is strict (path-to-regexp's `trailing` option, which Express
 * sets from `strict routing`; Connect strips it too).
 */
export function comparable(path: string, mode: DispatchMode): string {
  let p = mode.caseSensitive ? path : path.toLowerCase();
  if (!mode.strict && p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/**
 * Every reading of a request path ({@link pathReadings}), each as `mode` compares it: worked
 * out once per request and shared by the endpoints, the exclusions and the route table. The
 * first is the path as sent.
 */
export function comparableReadings(path: string, mode: DispatchMode): string[] {
  const readings = pathReadings(path);
  for (let i = 0; i < readings.length; i++) readings[i] = comparable(readings[i]!, mode);
  return readings;
}

/** True when `candidate` (comparable) is `base` or, in prefix mode, below it. */
function staticMatch(base: string, candidate: string, prefix: boolean): boolean {
  if (candidate === base) return true;
  if (!prefix) return false;
  // Connect's mount rule: the next character after the mount path is `/` or `.`.
  if (base === '/') return true;
  if (!candidate.startsWith(base)) return false;
  const next = candidate.charCodeAt(base.length);
  return next === 0x2f || next === 0x2e;
}

interface CompiledRoute<T> {
  methods: ReadonlySet<string> | null;
  /** The route's path as configured, and decoded when it has percent-escapes. */
  patterns: readonly string[];
  isStatic: boolean;
  /** Per dispatch mode, built on first use: tests a comparable path. */
  testers: (((path: string) => boolean) | undefined)[];
  value: T;
}

/**
 * First-match route lookup. A request target can be read more than one way (percent-decoded or
 * not, with `//` and dot segments resolved or not) and the app, a static file server or a
 * proxy may each pick another reading: a route matches when any reading of the path would
 * dispatch to it, so no spelling reaches a handler without its policies. Static paths compare
 * as strings; patterns go through path-to-regexp (the matcher Express 5 itself uses).
 */
export class RouteTable<T> {
  private readonly routes: CompiledRoute<T>[] = [];

  constructor(private readonly fallback: T) {}

  add(match: RouteMatch, value: T): void {
    const pattern = toPathPattern(match.path);
    const patterns = [pattern];
    for (const reading of pathReadings(pattern)) {
      if (!patterns.includes(reading)) patterns.push(reading);
    }
    const methods =
      match.methods === null ? null : new Set(match.methods.map((m) => m.toUpperCase()));
    // Express answers HEAD with the GET handler when no HEAD handler is registered.
    if (methods?.has('GET')) methods.add('HEAD');
    this.routes.push({
      methods,
      patterns,
      isStatic: !/[:*{}()]/.test(pattern),
      testers: [],
      value,
    });
  }

  /**
   * The first route whose method and path (in any reading: {@link comparableReadings}) match,
   * else the fallback.
   */
  lookup(method: string | undefined, readings: readonly string[], mode: DispatchMode): T {
    const index = modeIndex(mode);
    for (const route of this.routes) {
      if (route.methods !== null && !route.methods.has(method ?? 'GET')) continue;
      const test = (route.testers[index] ??= compileTester(route, mode));
      for (const reading of readings) if (test(reading)) return route.value;
    }
    return this.fallback;
  }
}

function compileTester<T>(route: CompiledRoute<T>, mode: DispatchMode): (path: string) => boolean {
  if (route.isStatic) {
    const bases = [...new Set(route.patterns.map((p) => comparable(p, mode)))];
    return (path) => bases.some((base) => staticMatch(base, path, mode.prefix));
  }
  const matchers = route.patterns.flatMap((p) => {
    try {
      return [
        compilePath(p, {
          decode: false,
          sensitive: mode.caseSensitive,
          trailing: !mode.strict,
          end: !mode.prefix,
        }),
      ];
    } catch {
      // A decoded reading of a pattern may no longer parse; the configured one always does.
      return [];
    }
  });
  return (path) => matchers.some((m) => m(path) !== false);
}

/**
 * Exclusions (`/health`, `/static/*`) that skip every policy. A path is excluded only when
 * every reading of it is: a spelling that some reading dispatches elsewhere keeps its policies.
 */
export class ExcludeList {
  private readonly compiled: ({ exact: Set<string>; prefixes: string[] } | undefined)[] = [];

  constructor(private readonly paths: readonly string[]) {}

  /** `readings`: the request path's {@link comparableReadings} under `mode`. */
  excludes(readings: readonly string[], mode: DispatchMode): boolean {
    if (this.paths.length === 0) return false;
    const index = modeIndex(mode);
    const { exact, prefixes } = (this.compiled[index] ??= this.compile(mode));
    return readings.every(
      (p) =>
        exact.has(p) ||
        prefixes.some((prefix) => p.startsWith(prefix) || p === prefix.slice(0, -1)),
    );
  }

  private compile(mode: DispatchMode): { exact: Set<string>; prefixes: string[] } {
    const exact = new Set<string>();
    const prefixes: string[] = [];
    for (const p of this.paths) {
      const folded = mode.caseSensitive ? p : p.toLowerCase();
      if (folded.endsWith('/*')) prefixes.push(folded.slice(0, -1));
      else exact.add(comparable(p, mode));
    }
    return { exact, prefixes };
  }
}

/** The request's path as Express and Connect route it (parseurl: absolute-form, no query). */
export function pathOf(req: IncomingMessage): string {
  return parseurl(req)?.pathname ?? '/';
}
