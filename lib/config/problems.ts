/**
 * Paths and problem lines shared by the schema walker, the formats and the loader. Kept apart
 * so formats can report nested problems without importing the loader.
 */

/** A key, or a list index with an optional label (a route's name) shown next to it. */
export type Segment = string | { readonly index: number; readonly label?: string | undefined };

/** Where in the configuration tree a value sits. */
export type Path = readonly Segment[];

/** One problem found while validating; `message` never includes the path. */
export interface Problem {
  readonly path: Path;
  readonly message: string;
  /**
   * Paths whose provenance explains the problem (a cross-field check involves several); the
   * source named in the final line is the most recent layer that set any of them.
   */
  readonly involves?: readonly Path[] | undefined;
}

/** Receives problems as they are found. */
export type Report = (path: Path, message: string, involves?: readonly Path[]) => void;

/**
 * Thrown by a format's `parse` for a value it rejects. `got` (when given) is appended as
 * `, got <value>` unless the value is sensitive, so formats never decide about redaction.
 */
export class FormatError extends Error {
  readonly hasValue: boolean;
  readonly value: unknown;
  constructor(message: string, ...got: [] | [unknown]) {
    super(message);
    this.hasValue = got.length > 0;
    this.value = got[0];
  }
}

/** `middleware.routes[1] (create-order).rateLimit.burst` */
export function formatPath(path: Path): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'string') {
      out += out === '' ? segment : `.${segment}`;
    } else {
      out += `[${segment.index}]`;
      if (segment.label !== undefined) out += ` (${segment.label})`;
    }
  }
  return out === '' ? '(root)' : out;
}

/** The plain keys of a path, as stored in the provenance map. */
export function rawKey(path: Path): string {
  return path.map((s) => (typeof s === 'string' ? s : String(s.index))).join('\u0000');
}

/** A short, single-line rendering of a bad value for a problem line. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'function':
      return 'a function';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

/** True for `{}`-style objects (also null-prototype ones), false for arrays, class instances. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Assigns an own property even for keys like `__proto__`, which `obj[key] =` would not. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}
