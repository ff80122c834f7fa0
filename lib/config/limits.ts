import { formatPath, isPlainObject } from './problems.js';
import type { Path } from './problems.js';

/**
 * Size limits of a configuration, checked on every layer (file, environment variable,
 * overrides, config object) before anything is merged or validated, so a hostile or broken
 * input (a YAML alias bomb, a huge file, a cyclic object) fails fast with a ConfigError naming
 * its source instead of exhausting memory, time or the stack. Documented in config/README.md
 * (generated from these values by lib/config/docs.ts).
 */
export const CONFIG_LIMITS = Object.freeze({
  /** Bytes of one config file. */
  fileBytes: 128 * 1024,
  /** Bytes of one environment variable's value. */
  envValueBytes: 64 * 1024,
  /** YAML alias expansions in one file (yaml's `maxAliasCount`). */
  yamlAliases: 100,
  /** Levels of nested objects and lists in one layer. */
  depth: 32,
  /** Values (every object, list, key and list entry) in one layer. */
  values: 20_000,
  /** Entries of `middleware.routes`. */
  routes: 1_000,
  /** Entries of `middleware.policies`. */
  policies: 1_000,
  /** Entries of `resources.http`. */
  httpResources: 100,
  /** Entries of `resources.redis`. */
  redisResources: 100,
});

/** `131072 bytes (128 KiB)` */
export function describeBytes(bytes: number): string {
  return `${bytes} bytes (${bytes / 1024} KiB)`;
}

/** Lists and maps whose entry count is limited, by path. */
const ENTRY_LIMITS: readonly { path: readonly string[]; max: number }[] = [
  { path: ['middleware', 'routes'], max: CONFIG_LIMITS.routes },
  { path: ['middleware', 'policies'], max: CONFIG_LIMITS.policies },
  { path: ['resources', 'http'], max: CONFIG_LIMITS.httpResources },
  { path: ['resources', 'redis'], max: CONFIG_LIMITS.redisResources },
];

/**
 * Problems of one layer's tree against the depth, value-count and cycle limits. Stops at the
 * first one: past a limit the rest of the tree is not worth walking (and may be endless).
 * Shared (non-cyclic) references are walked once per reference, so an exponential graph of
 * shared objects hits the value limit rather than being expanded.
 */
export function treeProblem(data: unknown): string | undefined {
  let values = 0;
  const ancestors = new Set<object>();
  const path: (string | { index: number })[] = [];
  const visit = (value: unknown): string | undefined => {
    values++;
    if (values > CONFIG_LIMITS.values) {
      return `holds more than ${CONFIG_LIMITS.values} values (the limit)`;
    }
    const isList = Array.isArray(value);
    if (!isList && !isPlainObject(value)) return undefined;
    if (ancestors.has(value)) {
      return `${formatPath(path)}: refers back to an object that contains it (a cycle)`;
    }
    if (path.length >= CONFIG_LIMITS.depth) {
      return `${formatPath(path)}: is nested more than ${CONFIG_LIMITS.depth} levels deep (the limit)`;
    }
    ancestors.add(value);
    let problem: string | undefined;
    if (isList) {
      for (let i = 0; i < value.length && problem === undefined; i++) {
        path.push({ index: i });
        problem = visit(value[i]);
        path.pop();
      }
    } else {
      for (const key of Object.keys(value)) {
        path.push(key);
        problem = visit(value[key]);
        path.pop();
        if (problem !== undefined) break;
      }
    }
    ancestors.delete(value);
    return problem;
  };
  return visit(data);
}

/** Problems of the entry counts of routes, policies and resources in `data`. */
export function entryProblems(data: unknown): { path: Path; message: string }[] {
  const out: { path: Path; message: string }[] = [];
  for (const { path, max } of ENTRY_LIMITS) {
    let node = data;
    for (const key of path) node = isPlainObject(node) ? node[key] : undefined;
    const count = Array.isArray(node)
      ? node.length
      : isPlainObject(node)
        ? Object.keys(node).length
        : 0;
    if (count > max) {
      out.push({ path, message: `has ${count} entries, more than the limit of ${max}` });
    }
  }
  return out;
}
