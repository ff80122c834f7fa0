import { match as compilePath } from 'path-to-regexp';
import type { RouteMatch } from '../config/types.js';

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

interface CompiledRoute<T> {
  methods: ReadonlySet<string> | null;
  /** Set when the pattern has no parameters: compared as a plain string, no regex. */
  exact: string | null;
  test: ((path: string) => boolean) | null;
  value: T;
}

/**
 * First-match route lookup, compiled once at start-up. Static paths compare as strings;
 * patterns go through path-to-regexp (the matcher Express 5 itself uses).
 */
export class RouteTable<T> {
  private readonly routes: CompiledRoute<T>[] = [];

  constructor(private readonly fallback: T) {}

  add(match: RouteMatch, value: T): void {
    const pattern = toPathPattern(match.path);
    const isStatic = !/[:*{}()]/.test(pattern);
    const matcher = isStatic ? null : compilePath(pattern, { decode: false });
    this.routes.push({
      methods: match.methods === null ? null : new Set(match.methods.map((m) => m.toUpperCase())),
      exact: isStatic ? stripTrailingSlash(pattern) : null,
      test: matcher === null ? null : (path) => matcher(path) !== false,
      value,
    });
  }

  /** The first route whose method and path match, else the fallback. */
  lookup(method: string | undefined, path: string): T {
    const normalised = stripTrailingSlash(path);
    for (const route of this.routes) {
      if (route.methods !== null && !route.methods.has(method ?? 'GET')) continue;
      if (route.exact !== null ? route.exact === normalised : route.test!(normalised)) {
        return route.value;
      }
    }
    return this.fallback;
  }
}

function stripTrailingSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** The path part of a request URL, without the query string. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
