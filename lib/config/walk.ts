import { FormatError, describeValue, formatPath, isPlainObject, setOwn } from './problems.js';
import type { Path, Report } from './problems.js';

/**
 * The schema is a convict schema: a leaf is an object with a `default` key (convict's own
 * rule), anything else is a branch. Every leaf's `format` is a convict format function that
 * also carries our {@link Format} under {@link FORMAT}, so one object serves convict's
 * `validate()`, our walker (which coerces and reports every problem with its path), the env
 * var reader, redaction and the docs generator.
 */

/** Key under which a convict format function carries its {@link Format}. */
export const FORMAT = Symbol('express-resilience.format');

/** What a format's `parse` gets besides the value. */
export interface FormatContext {
  /** Path of the value being parsed, for nested problems. */
  readonly path: Path;
  /** Reports a nested problem (lists and maps validate entries field by field). */
  readonly report: Report;
}

/** Lists and maps of structured entries describe their entries for docs, env vars, redaction. */
export interface EntrySpec {
  readonly kind: 'list' | 'map';
  readonly schema: Branch;
  /** Map entries: the env var prefix of per-entry variables, e.g. `RESILIENCE_HTTP`. */
  readonly envPrefix?: string;
  /** Docs: the entry's policy fields are those of this section, not repeated. */
  readonly inherits?: string;
  /** Docs: keys of `schema` documented for the entry (default: all). */
  readonly ownKeys?: readonly string[];
}

/** A value format: validates and coerces a raw value (from a file, env var or code). */
export interface Format<T = unknown> {
  /** Type shown in config/README.md, e.g. `duration`, `integer >= 1`. */
  readonly name: string;
  /**
   * Returns the coerced value or throws {@link FormatError}. Must be idempotent: convict
   * re-validates coerced values with the same function.
   */
  parse(value: unknown, ctx: FormatContext): T;
  /** Turns an environment variable's text into the value `parse` expects. */
  fromEnv?(raw: string): unknown;
  /** Redacts a sensitive value of this format; the default replaces it with `[redacted]`. */
  redact?(value: unknown): unknown;
  readonly entries?: EntrySpec;
}

/** A convict `format` function carrying its {@link Format}. */
export type ConvictFormat = ((value: unknown) => void) & { readonly [FORMAT]: Format };

/** A schema leaf, in convict's shape plus the fields convict tolerates and we read. */
export interface Leaf {
  readonly doc: string;
  readonly format: ConvictFormat;
  /** As a user would write it (`'5s'`); `undefined` for optional or required leaves. */
  readonly default: unknown;
  readonly env?: string;
  readonly sensitive?: boolean;
  /** No default: a value must be given. */
  readonly required?: boolean;
  /** Map entries only: the env var suffix, as in `RESILIENCE_HTTP_<NAME>_ORIGIN`. */
  readonly entryEnv?: string;
}

/** A schema section: keys to nested sections or leaves. */
export interface Branch {
  readonly [key: string]: SchemaNode;
}

/** A section or a leaf. */
export type SchemaNode = Leaf | Branch;

/** convict's rule: a node with a `default` key is a leaf. */
export function isLeaf(node: SchemaNode): node is Leaf {
  return Object.hasOwn(node, 'default');
}

const convictFormats = new WeakMap<Format, ConvictFormat>();

/** The convict format function for `format` (one per format, so leaves can share it). */
export function toConvict(format: Format): ConvictFormat {
  let fn = convictFormats.get(format);
  if (fn === undefined) {
    const check = (value: unknown): void => {
      const problems: string[] = [];
      const report: Report = (path, message) => {
        problems.push(path.length === 0 ? message : `${formatPath(path)}: ${message}`);
      };
      try {
        format.parse(value, { path: [], report });
      } catch (err) {
        if (!(err instanceof FormatError)) throw err;
        problems.push(err.message);
      }
      if (problems.length > 0) throw new Error(problems.join('; '));
    };
    fn = Object.assign(check, { [FORMAT]: format });
    convictFormats.set(format, fn);
  }
  return fn;
}

/** The {@link Format} of a leaf. */
export function formatOf(leaf: Leaf): Format {
  return leaf.format[FORMAT];
}

/** Builds a leaf. */
export function leaf(
  format: Format,
  defaultValue: unknown,
  doc: string,
  extra: Omit<Leaf, 'doc' | 'format' | 'default'> = {},
): Leaf {
  return { doc, format: toConvict(format), default: defaultValue, ...extra };
}

/**
 * `complete` fills every missing leaf from its default (the defaults section, resources);
 * `partial` keeps only what was given (route and named-policy entries, merged later).
 */
export type Mode = 'complete' | 'partial';

/**
 * Validates and coerces `input` against a branch, strictly: unknown keys are problems, with a
 * suggestion when a known key is close. Invalid leaves are reported and replaced by their
 * default (complete) or dropped (partial) so the rest can still be checked.
 */
export function walk(
  schema: Branch,
  input: unknown,
  path: Path,
  mode: Mode,
  report: Report,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let given: Record<string, unknown> = {};
  if (isPlainObject(input)) {
    given = input;
  } else if (input !== undefined) {
    report(path, `must be an object, got ${describeValue(input)}`);
  }
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(schema, key) && given[key] !== undefined) {
      report([...path, key], unknownKeyMessage(key, schema, path));
    }
  }
  for (const [key, node] of Object.entries(schema)) {
    const at = [...path, key];
    const value = Object.hasOwn(given, key) ? given[key] : undefined;
    if (isLeaf(node)) {
      if (value === undefined) {
        if (node.required === true) report(at, 'is required');
        else if (mode === 'complete') setOwn(out, key, parseDefault(node, at));
        continue;
      }
      const parsed = parseLeaf(node, value, at, report);
      if (parsed.ok) setOwn(out, key, parsed.value);
      else if (mode === 'complete') setOwn(out, key, parseDefault(node, at));
    } else if (value !== undefined || mode === 'complete') {
      setOwn(out, key, walk(node, value, at, mode, report));
    }
  }
  return out;
}

/** Parses one leaf value, reporting a rejection with the value unless the leaf is sensitive. */
export function parseLeaf(
  node: Leaf,
  value: unknown,
  path: Path,
  report: Report,
): { ok: boolean; value: unknown } {
  try {
    return { ok: true, value: formatOf(node).parse(value, { path, report }) };
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    const got = err.hasValue && node.sensitive !== true ? `, got ${describeValue(err.value)}` : '';
    report(path, `${err.message}${got}`);
    return { ok: false, value: undefined };
  }
}

function parseDefault(node: Leaf, path: Path): unknown {
  if (node.default === undefined) return undefined;
  return formatOf(node).parse(node.default, {
    path,
    report: (at, message) => {
      throw new Error(`schema default of ${formatPath(at)} is invalid: ${message}`);
    },
  });
}

/** The resolved defaults of a branch (throws if the schema's own defaults are invalid). */
export function defaultsOf(schema: Branch): Record<string, unknown> {
  return walk(schema, {}, [], 'complete', (at, message) => {
    throw new Error(`schema default of ${formatPath(at)} is invalid: ${message}`);
  });
}

function unknownKeyMessage(key: string, schema: Branch, path: Path): string {
  const known = Object.keys(schema);
  const close = closest(key, known);
  if (close !== undefined) return `unknown key (did you mean ${close}?)`;
  const nested = findNested(key, schema);
  if (nested !== undefined)
    return `unknown key (did you mean ${formatPath([...path, nested, key])}?)`;
  return `unknown key; expected one of: ${known.join(', ')}`;
}

/** A known key one or two edits away (or differing only in case), if any. */
export function closest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    if (candidate.toLowerCase() === lower) return candidate;
    const distance = levenshtein(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const allowed = key.length <= 4 ? 1 : 2;
  return bestDistance <= allowed ? best : undefined;
}

/** `timeout` written one level too high: suggest `defaults.timeout`. */
function findNested(key: string, schema: Branch): string | undefined {
  for (const [name, node] of Object.entries(schema)) {
    if (isLeaf(node)) continue;
    if (Object.hasOwn(node, key)) return name;
  }
  return undefined;
}

function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}
