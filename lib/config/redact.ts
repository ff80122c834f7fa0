import { inspect } from 'node:util';
import { REDACTED } from './formats.js';
import { isPlainObject, setOwn } from './problems.js';
import { configSchema } from './schema.js';
import type { ResilienceConfig, ResilienceConfigInput } from './types.js';
import { formatOf, isLeaf } from './walk.js';
import type { EntrySpec, SchemaNode } from './walk.js';

/**
 * Redaction follows the schema: a leaf marked `sensitive` is replaced by `[redacted]`, or by
 * its format's own redaction (URLs keep everything but the password, header maps keep
 * non-credential headers). Entries of routes and resource maps are redacted with their own
 * schemas.
 */

function plainCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plainCopy);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) setOwn(out, key, plainCopy(v));
  return out;
}

function redactEntries(value: unknown, spec: EntrySpec): unknown {
  if (spec.kind === 'list') {
    return Array.isArray(value)
      ? value.map((entry) => redactNode(entry, spec.schema))
      : plainCopy(value);
  }
  if (!isPlainObject(value)) return plainCopy(value);
  const out: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(value))
    setOwn(out, key, redactNode(entry, spec.schema));
  return out;
}

function redactNode(value: unknown, node: SchemaNode | undefined): unknown {
  if (node === undefined) return plainCopy(value);
  if (isLeaf(node)) {
    const format = formatOf(node);
    if (node.sensitive === true && value !== undefined) {
      return format.redact === undefined ? REDACTED : plainCopy(format.redact(value));
    }
    return format.entries === undefined ? plainCopy(value) : redactEntries(value, format.entries);
  }
  if (!isPlainObject(value)) return plainCopy(value);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    setOwn(out, key, redactNode(v, Object.hasOwn(node, key) ? node[key] : undefined));
  }
  return out;
}

/**
 * A plain, unfrozen deep copy of `config` (resolved, or input-shaped) with every sensitive
 * value replaced by `"[redacted]"` and the password in Redis URLs masked
 * (`redis://user:[redacted]@host`). Credential headers of HTTP resources are redacted too.
 * Unset sensitive values stay unset. Safe to log, print or serialise.
 */
export function redactConfig(
  config: ResilienceConfig | ResilienceConfigInput,
): Record<string, unknown> {
  const out = redactNode(config, configSchema);
  return isPlainObject(out) ? out : {};
}

const sensitiveCache = new WeakMap<object, boolean>();

function holdsSensitive(node: SchemaNode): boolean {
  let result = sensitiveCache.get(node);
  if (result === undefined) {
    if (isLeaf(node)) {
      const entries = formatOf(node).entries;
      result = node.sensitive === true || (entries !== undefined && holdsSensitive(entries.schema));
    } else {
      result = Object.values(node).some(holdsSensitive);
    }
    sensitiveCache.set(node, result);
  }
  return result;
}

function defineRedacted(target: object, redacted: () => unknown): void {
  // Inherited sub-objects can be shared between resolved entries; protect each once.
  if (Object.hasOwn(target, 'toJSON')) return;
  Object.defineProperty(target, 'toJSON', { value: redacted, enumerable: false });
  Object.defineProperty(target, inspect.custom, { value: redacted, enumerable: false });
}

/**
 * Gives every object of a resolved tree that holds a sensitive value (at any depth) a
 * non-enumerable `toJSON` and `util.inspect.custom` returning its redacted copy, so logging
 * `config`, `config.resources.redis.cache` or its `tls` never prints a secret. Call before
 * freezing.
 */
export function protectSensitive(value: unknown, node: SchemaNode = configSchema): void {
  if (typeof value !== 'object' || value === null || !holdsSensitive(node)) return;
  defineRedacted(value, () => redactNode(value, node));
  if (isLeaf(node)) {
    const spec = formatOf(node).entries;
    if (spec === undefined) return;
    for (const entry of Object.values(value)) protectSensitive(entry, spec.schema);
    return;
  }
  for (const [key, child] of Object.entries(node)) {
    protectSensitive((value as Record<string, unknown>)[key], child);
  }
}
