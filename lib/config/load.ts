import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import convict from 'convict';
import { parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';
import { entryEnvVar } from './formats.js';
import { CONFIG_LIMITS, describeBytes, entryProblems, treeProblem } from './limits.js';
import { formatPath, isPlainObject, rawKey, setOwn } from './problems.js';
import type { Path, Problem, Report } from './problems.js';
import { protectSensitive } from './redact.js';
import { resolveTree } from './resolve.js';
import { configSchema } from './schema.js';
import type { ResilienceConfig, ResilienceConfigInput } from './types.js';
import { closest, formatOf, isLeaf, walk } from './walk.js';
import { warnOnce } from '../middleware/warnings.js';
import type { Logger, WarningCode } from '../middleware/warnings.js';
import type { Branch } from './walk.js';

const BRAND = Symbol.for('express-resilience.config');

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Environment whose file is layered over the defaults. Default: `NODE_ENV`, else `development`. */
  env?: string;
  /** Config directory. Default: `RESILIENCE_CONFIG_DIR`, else `<cwd>/config`. */
  dir?: string;
  /** Applied last, over files and environment variables. */
  overrides?: ResilienceConfigInput;
  /** Where `NODE_ENV`, `RESILIENCE_CONFIG_DIR` and `RESILIENCE_*` are read. Default: `process.env`. */
  environment?: NodeJS.ProcessEnv;
  /** Where loading warnings go (once per process each); default: `process.emitWarning`. */
  logger?: Logger;
}

/** Options of {@link resolveConfig}. */
export interface ResolveConfigOptions {
  /** Where `RESILIENCE_*` variables are read. Default: `process.env`. */
  environment?: NodeJS.ProcessEnv;
  /** Where loading warnings go (once per process each); default: `process.emitWarning`. */
  logger?: Logger;
}

/** A suspicious but legal setup found while loading: the config still loads. */
export interface ConfigWarning {
  code: Extract<WarningCode, 'RESILIENCE_CONFIG_NO_ENV_FILE' | 'RESILIENCE_UNKNOWN_ENV_VAR'>;
  message: string;
}

/** A loaded config and where it came from (for the CLI). */
export interface LoadedConfig {
  config: ResilienceConfig;
  env: string;
  dir: string;
  /** Files that gave the pack's settings, in layering order. */
  files: string[];
  /** Warnings found (not emitted: {@link loadConfig} emits them, the CLI prints them). */
  warnings: ConfigWarning[];
}

/** True for a config returned by {@link loadConfig} / {@link resolveConfig}, from any copy of the pack. */
export function isResolvedConfig(value: unknown): value is ResilienceConfig {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true
  );
}

/**
 * Loads, layers, validates and resolves the configuration:
 * schema defaults < `<dir>/resilience.{yaml,yml,json}`, else `<dir>/default.*` <
 * `<dir>/resilience.<env>.*`, else `<dir>/<env>.*` < `RESILIENCE_*` environment variables <
 * `overrides`. From a shared `default.*` / `<env>.*` only the pack's part is read (its
 * `resilience:` section, else the file if it holds the pack's sections, else nothing; see
 * config/README.md). Objects merge key by key; lists replace. Validation is strict (unknown
 * keys are errors). Routes and named policies are resolved against `middleware.defaults`,
 * durations become milliseconds.
 *
 * A missing directory or file is fine (schema defaults apply); a file that exists must parse.
 * Warns (`RESILIENCE_CONFIG_NO_ENV_FILE`, `RESILIENCE_UNKNOWN_ENV_VAR`) once per process
 * through `logger`, else `process.emitWarning`.
 *
 * @returns a deep-frozen {@link ResilienceConfig}; `JSON.stringify` and `util.inspect` of it
 *   (or of any part holding a secret) show secrets redacted.
 * @throws ConfigError listing every problem found, one line each, with its path and the file
 *   (or environment variable, or `overrides`) that set the value.
 */
export function loadConfig(options: LoadConfigOptions = {}): ResilienceConfig {
  const loaded = loadConfigWithSources(options);
  emit(loaded.warnings, options.logger);
  return loaded.config;
}

function emit(warnings: readonly ConfigWarning[], logger: Logger | undefined): void {
  for (const { code, message } of warnings) warnOnce(logger, code, message, message);
}

/** The environment name and absolute config directory {@link loadConfig} would use. */
export function configLocation(
  options: Pick<LoadConfigOptions, 'env' | 'dir' | 'environment'> = {},
): { env: string; dir: string } {
  const environment = options.environment ?? process.env;
  return {
    env: options.env ?? (environment.NODE_ENV || 'development'),
    dir: resolve(options.dir ?? (environment.RESILIENCE_CONFIG_DIR || 'config')),
  };
}

/**
 * {@link loadConfig}, also returning the environment, directory and files used.
 *
 * @throws ConfigError as {@link loadConfig}.
 */
export function loadConfigWithSources(options: LoadConfigOptions = {}): LoadedConfig {
  const environment = options.environment ?? process.env;
  const { env, dir } = configLocation(options);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(env)) {
    throw new ConfigError([
      `environment name ${JSON.stringify(env)} is invalid (letters, digits, _ . - only)`,
    ]);
  }
  const fileProblems: string[] = [];
  const warnings: ConfigWarning[] = [];
  const found: { file: string; own: boolean }[] = [];
  const bases = env === 'default' ? [undefined] : [undefined, env];
  for (const base of bases) {
    // The pack's own name wins; the shared node-config name is read only without it.
    const own = findFile(dir, base === undefined ? OWN_BASE : `${OWN_BASE}.${base}`, fileProblems);
    const shared = own === undefined ? findFile(dir, base ?? 'default', fileProblems) : undefined;
    if (own !== undefined) found.push({ file: own, own: true });
    else if (shared !== undefined) found.push({ file: shared, own: false });
    else if (base !== undefined && found.length > 0 && explicitEnv(options, environment)) {
      warnings.push({
        code: 'RESILIENCE_CONFIG_NO_ENV_FILE',
        message: `environment "${env}" has no config file in ${dir} (looked for ${OWN_BASE}.${env}.{yaml,yml,json} and ${env}.{yaml,yml,json}); only the default file applies`,
      });
    }
  }
  const layers: Layer[] = [];
  for (const { file, own } of found) {
    const data = readFile(file, fileProblems);
    if (data === undefined) continue;
    const layer = own ? { source: file, file, data } : sharedLayer(file, data, fileProblems);
    if (layer !== undefined) layers.push(layer);
  }
  if (fileProblems.length > 0) throw new ConfigError(fileProblems);
  const config = build(layers, environment, {
    source: 'overrides',
    data: options.overrides ?? {},
  });
  warnings.push(...environmentWarnings(environment));
  return { config, env, dir, files: layers.map((layer) => layer.file!), warnings };
}

/**
 * Validates a config object given in code on top of the schema defaults (and the `RESILIENCE_*`
 * environment variables, which it overrides); no file is read. A config that is already
 * resolved is returned as is.
 *
 * @throws ConfigError listing every problem found.
 */
export function resolveConfig(
  input: ResilienceConfigInput | ResilienceConfig = {},
  options: ResolveConfigOptions = {},
): ResilienceConfig {
  if (isResolvedConfig(input)) return input;
  const environment = options.environment ?? process.env;
  const config = build([], environment, { source: 'config object', data: input });
  emit(environmentWarnings(environment), options.logger);
  return config;
}

// ---------------------------------------------------------------------------------------------
// files

const EXTENSIONS = ['.yaml', '.yml', '.json'];

/** The pack's own file names: `resilience.yaml`, `resilience.<env>.yaml`. */
const OWN_BASE = 'resilience';

/** The top-level sections of the pack's config. */
const SECTIONS = Object.keys(configSchema);

function explicitEnv(options: LoadConfigOptions, environment: NodeJS.ProcessEnv): boolean {
  return options.env !== undefined || Boolean(environment.NODE_ENV);
}

/**
 * The pack's part of a shared file (`default.yaml`, `<env>.yaml`, which node-config and the
 * like read too): its `resilience:` section if it has one; else the whole file if it holds
 * one of the pack's sections; else nothing (the file is the app's). Typos stay errors: a
 * top-level key beside the pack's sections, a pack section beside `resilience:`, and an
 * app-file key one or two edits from a section name.
 */
function sharedLayer(
  file: string,
  data: Record<string, unknown>,
  problems: string[],
): Layer | undefined {
  const keys = Object.keys(data);
  if (Object.hasOwn(data, OWN_BASE)) {
    for (const key of keys.filter((k) => SECTIONS.includes(k))) {
      problems.push(
        `${file}: ${key}: belongs under resilience: (beside a resilience: section, top-level keys are the app's)`,
      );
    }
    const section = data[OWN_BASE];
    if (section === null || section === undefined) return undefined;
    if (!isPlainObject(section)) {
      problems.push(
        `${file}: resilience: must hold a mapping of sections (${SECTIONS.join(', ')}), got ${
          Array.isArray(section) ? 'a list' : typeof section
        }`,
      );
      return undefined;
    }
    return { source: `${file}, resilience: section`, file, data: section };
  }
  // The validator names every unknown key beside the sections, with the rest of its problems.
  if (keys.some((k) => SECTIONS.includes(k))) return { source: file, file, data };
  for (const key of keys) {
    const close = closest(key, [...SECTIONS, OWN_BASE]);
    if (close !== undefined && close !== key) {
      problems.push(`${file}: ${key}: unknown key (did you mean ${close}?)`);
    }
  }
  return undefined;
}

/**
 * True when a shared file's parsed content is entirely the app's: at least one top-level key,
 * none of them a pack section or `resilience:` ({@link sharedLayer} then reads nothing of it).
 */
export function isAppOnlyFile(data: unknown): boolean {
  if (!isPlainObject(data)) return false;
  const keys = Object.keys(data);
  return keys.length > 0 && !keys.some((k) => k === OWN_BASE || SECTIONS.includes(k));
}

function findFile(dir: string, base: string, problems: string[]): string | undefined {
  const found = EXTENSIONS.map((ext) => join(dir, base + ext)).filter((file) => existsSync(file));
  if (found.length > 1) {
    problems.push(`${dir}: only one of ${found.map((f) => basename(f)).join(', ')} may exist`);
    return undefined;
  }
  return found[0];
}

/** The file's text, or a problem when it cannot be read or is over the size limit. */
function readText(file: string): { text: string } | { problem: string } {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    if (!fstatSync(fd).isFile()) throw new Error('not a file');
    // Read at most one byte past the limit, so a huge (or growing) file costs nothing.
    const buffer = Buffer.alloc(CONFIG_LIMITS.fileBytes + 1);
    let length = 0;
    for (let n = -1; n !== 0 && length < buffer.length; length += n) {
      n = readSync(fd, buffer, length, buffer.length - length, null);
    }
    if (length > CONFIG_LIMITS.fileBytes) {
      return {
        problem: `${file}: is larger than ${describeBytes(CONFIG_LIMITS.fileBytes)}, the limit of a config file`,
      };
    }
    return { text: buffer.toString('utf8', 0, length) };
  } catch (err) {
    return { problem: `${file}: cannot be read: ${(err as Error).message}` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The deepest nesting of YAML flow collections (`[…]`, `{…}`) in `text`, counting no further
 * than `limit + 1`. yaml's parser recurses per level: a 120 KiB file of brackets takes it over
 * a second before it gives up with a stack overflow, where this scan takes microseconds.
 * Written by hand because yaml exposes no depth limit. It errs towards counting less (a quote
 * it cannot classify is taken as opening a string), so it never refuses a file yaml would
 * accept under the depth limit; anything it misses is still caught by the tree check.
 */
export function flowDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  // Whether only spaces, `-`, `?`, `:` or `,` came since the line or the last token started:
  // then `[`, `{` or a quote begins a node, not the middle of a plain scalar.
  let nodeStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      nodeStart = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') continue;
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      const end = text.indexOf('\n', i);
      if (end === -1) break;
      i = end - 1;
      continue;
    }
    if (nodeStart && (c === "'" || c === '"')) {
      // A quoted scalar: skip to its closing quote ('' and \" escape one).
      for (i++; i < text.length; i++) {
        if (c === '"' && text[i] === '\\') i++;
        else if (text[i] === c) {
          if (c === "'" && text[i + 1] === "'") i++;
          else break;
        }
      }
      nodeStart = false;
      continue;
    }
    if (nodeStart && depth === 0 && (c === '|' || c === '>')) {
      // A block scalar: its lines are text, indented deeper than the line that starts it.
      const lineStart = text.lastIndexOf('\n', i) + 1;
      const indent = /^ */.exec(text.slice(lineStart, i))![0].length;
      let end = text.indexOf('\n', i);
      while (end !== -1) {
        const next = text.slice(end + 1, text.indexOf('\n', end + 1) >>> 0);
        if (next.trim() !== '' && /^ */.exec(next)![0].length <= indent) break;
        end = text.indexOf('\n', end + 1);
      }
      if (end === -1) break;
      i = end - 1;
      continue;
    }
    if ((c === '[' || c === '{') && (nodeStart || depth > 0)) {
      depth++;
      if (depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
      nodeStart = true;
      continue;
    }
    if ((c === ']' || c === '}') && depth > 0) {
      depth--;
      nodeStart = false;
      continue;
    }
    nodeStart = c === '-' || c === '?' || c === ':' || (c === ',' && depth > 0);
  }
  return deepest;
}

function parseYaml(file: string, text: string): { data: unknown } | { problem: string } {
  if (flowDepth(text, CONFIG_LIMITS.depth) > CONFIG_LIMITS.depth) {
    return {
      problem: `${file}: is nested more than ${CONFIG_LIMITS.depth} levels deep (the limit)`,
    };
  }
  try {
    const doc = parseDocument(text, { merge: true, prettyErrors: false });
    const error = doc.errors[0];
    if (error !== undefined) {
      return { problem: `${file}: invalid YAML: ${error.message.split('\n')[0]}` };
    }
    return { data: doc.toJS({ maxAliasCount: CONFIG_LIMITS.yamlAliases }) };
  } catch (err) {
    // yaml throws a ReferenceError past maxAliasCount (an alias bomb), and deep nesting can
    // overflow its parser's stack: neither may escape without naming the file.
    if (err instanceof ReferenceError && /alias/i.test(err.message)) {
      return {
        problem: `${file}: expands YAML aliases more than ${CONFIG_LIMITS.yamlAliases} times (the limit)`,
      };
    }
    if (err instanceof RangeError) {
      return {
        problem: `${file}: is nested too deeply to parse (at most ${CONFIG_LIMITS.depth} levels)`,
      };
    }
    return { problem: `${file}: invalid YAML: ${(err as Error).message.split('\n')[0]}` };
  }
}

function readFile(file: string, problems: string[]): Record<string, unknown> | undefined {
  const read = readText(file);
  if ('problem' in read) {
    problems.push(read.problem);
    return undefined;
  }
  const { text } = read;
  let data: unknown;
  if (file.endsWith('.json')) {
    try {
      data = JSON.parse(text);
    } catch (err) {
      problems.push(`${file}: invalid JSON: ${(err as Error).message}`);
      return undefined;
    }
  } else {
    const parsed = parseYaml(file, text);
    if ('problem' in parsed) {
      problems.push(parsed.problem);
      return undefined;
    }
    data = parsed.data;
  }
  if (data === null || data === undefined) return {};
  if (!isPlainObject(data)) {
    problems.push(
      `${file}: must hold a mapping of sections (middleware, resources, metrics, health, shutdown), got ${
        Array.isArray(data) ? 'a list' : typeof data
      }`,
    );
    return undefined;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// layering

interface Layer {
  source: string;
  data: unknown;
  /** The file it was read from, if any. */
  file?: string;
}

interface ProvenanceNode {
  source?: string;
  order: number;
  children?: Map<string, ProvenanceNode>;
}

/**
 * Which layer last set each path: the file, env var or `overrides` named in problems. A tree
 * by key, so replacing a value drops the records below it in one step (a flat map of paths
 * had to scan every record per replaced value: quadratic on large maps).
 */
class Provenance {
  private readonly root: ProvenanceNode = { order: -1 };
  private order = 0;

  /**
   * Records that `source` set `path`. `replace`: the value replaced whatever was there, so
   * older records below `path` are dropped and every path inside the value is recorded.
   */
  set(path: readonly string[], value: unknown, source: string, replace: boolean): void {
    let node = this.root;
    for (const key of path) {
      node.children ??= new Map();
      let child = node.children.get(key);
      if (child === undefined) {
        child = { order: -1 };
        node.children.set(key, child);
      }
      node = child;
    }
    if (replace) node.children = undefined;
    this.record(node, value, source, replace);
  }

  private record(node: ProvenanceNode, value: unknown, source: string, deep: boolean): void {
    node.source = source;
    node.order = this.order++;
    if (deep && (isPlainObject(value) || Array.isArray(value))) {
      for (const [k, v] of Object.entries(value)) {
        node.children ??= new Map();
        const child: ProvenanceNode = { order: -1 };
        node.children.set(k, child);
        this.record(child, v, source, true);
      }
    }
  }

  private exact(path: Path): { source: string; order: number } | undefined {
    let node: ProvenanceNode | undefined = this.root;
    for (const segment of path) {
      node = node.children?.get(typeof segment === 'string' ? segment : String(segment.index));
      if (node === undefined) return undefined;
    }
    return node.source === undefined ? undefined : { source: node.source, order: node.order };
  }

  /** The source of `path` (or its closest recorded ancestor), or of the latest of `involves`. */
  lookup(path: Path, involves?: readonly Path[]): string | undefined {
    let best: { source: string; order: number } | undefined;
    for (const p of involves ?? []) {
      const found = this.exact(p);
      if (found !== undefined && (best === undefined || found.order > best.order)) best = found;
    }
    if (best !== undefined) return best.source;
    for (let n = path.length; n > 0; n--) {
      const found = this.exact(path.slice(0, n));
      if (found !== undefined) return found.source;
    }
    return undefined;
  }
}

/** Copies plain objects and arrays, so merging never shares or mutates the caller's objects. */
function copy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copy);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) setOwn(out, key, copy(v));
  return out;
}

function merge(
  target: Record<string, unknown>,
  source: Record<string, unknown>,
  path: string[],
  from: string,
  provenance: Provenance,
): void {
  for (const [key, value] of Object.entries(source)) {
    if (value === undefined) continue;
    const at = [...path, key];
    const existing = Object.hasOwn(target, key) ? target[key] : undefined;
    if (isPlainObject(value) && isPlainObject(existing)) {
      provenance.set(at, value, from, false);
      merge(existing, value, at, from, provenance);
    } else {
      provenance.set(at, value, from, true);
      setOwn(target, key, copy(value));
    }
  }
}

function nested(path: readonly string[], value: unknown): Record<string, unknown> {
  let data = value;
  for (let i = path.length - 1; i >= 0; i--) {
    const level: Record<string, unknown> = {};
    setOwn(level, path[i]!, data);
    data = level;
  }
  return data as Record<string, unknown>;
}

function keysAt(data: unknown, path: readonly string[]): string[] {
  let node = data;
  for (const key of path) {
    if (!isPlainObject(node)) return [];
    node = node[key];
  }
  return isPlainObject(node) ? Object.keys(node) : [];
}

/**
 * One layer per environment variable that is set: the schema's `env` leaves, and the per-entry
 * variables of resource maps (`RESILIENCE_HTTP_<NAME>_ORIGIN`, ...) for the entries declared in
 * files or overrides.
 */
function environmentLayers(
  environment: NodeJS.ProcessEnv,
  declared: readonly unknown[],
  problems: string[],
): Layer[] {
  const layers: Layer[] = [];
  const add = (name: string, path: readonly string[], toValue: (raw: string) => unknown): void => {
    const raw = environment[name];
    if (raw === undefined) return;
    const source = `environment variable ${name}`;
    // Before any parsing: a list variable is JSON.
    if (
      raw.length > CONFIG_LIMITS.envValueBytes ||
      Buffer.byteLength(raw) > CONFIG_LIMITS.envValueBytes
    ) {
      problems.push(
        `${source}: is longer than ${describeBytes(CONFIG_LIMITS.envValueBytes)}, the limit of an environment variable`,
      );
      return;
    }
    layers.push({ source, data: nested(path, toValue(raw)) });
  };
  const visit = (node: Branch, path: string[]): void => {
    for (const [key, child] of Object.entries(node)) {
      const at = [...path, key];
      if (!isLeaf(child)) {
        visit(child, at);
        continue;
      }
      const format = formatOf(child);
      const toValue = (raw: string): unknown => (format.fromEnv ? format.fromEnv(raw) : raw);
      if (child.env !== undefined) add(child.env, at, toValue);
      const spec = format.entries;
      if (spec?.envPrefix === undefined) continue;
      const names = new Set(declared.flatMap((data) => keysAt(data, at)));
      for (const name of names) visitEntry(spec.schema, [...at, name], spec.envPrefix, name);
    }
  };
  const visitEntry = (node: Branch, path: string[], prefix: string, entry: string): void => {
    for (const [key, child] of Object.entries(node)) {
      const at = [...path, key];
      if (!isLeaf(child)) visitEntry(child, at, prefix, entry);
      else if (child.entryEnv !== undefined) {
        const format = formatOf(child);
        add(entryEnvVar(prefix, entry, child.entryEnv), at, (raw) =>
          format.fromEnv ? format.fromEnv(raw) : raw,
        );
      }
    }
  };
  visit(configSchema, []);
  return layers;
}

let knownVariables: { names: string[]; entries: RegExp[] } | undefined;

/** The `RESILIENCE_*` names the loader reads, and patterns of the per-entry ones. */
function variables(): { names: string[]; entries: RegExp[] } {
  if (knownVariables !== undefined) return knownVariables;
  const names = ['RESILIENCE_CONFIG_DIR'];
  const entries: RegExp[] = [];
  const suffixes = (node: Branch): string[] =>
    Object.values(node).flatMap((child) =>
      isLeaf(child) ? (child.entryEnv === undefined ? [] : [child.entryEnv]) : suffixes(child),
    );
  const visit = (node: Branch): void => {
    for (const child of Object.values(node)) {
      if (!isLeaf(child)) {
        visit(child);
        continue;
      }
      if (child.env !== undefined) names.push(child.env);
      const spec = formatOf(child).entries;
      if (spec?.envPrefix !== undefined) {
        entries.push(new RegExp(`^${spec.envPrefix}_.+_(?:${suffixes(spec.schema).join('|')})$`));
      }
    }
  };
  visit(configSchema);
  knownVariables = { names, entries };
  return knownVariables;
}

/** A warning per `RESILIENCE_*` variable that names no option (a typo, most likely). */
function environmentWarnings(environment: NodeJS.ProcessEnv): ConfigWarning[] {
  const { names, entries } = variables();
  return Object.keys(environment)
    .filter(
      (name) =>
        name.startsWith('RESILIENCE_') &&
        !names.includes(name) &&
        !entries.some((pattern) => pattern.test(name)),
    )
    .map((name) => {
      const close = closest(name, names);
      return {
        code: 'RESILIENCE_UNKNOWN_ENV_VAR',
        message: `environment variable ${name} names no option${close === undefined ? '' : ` (did you mean ${close}?)`}; it is ignored`,
      };
    });
}

// ---------------------------------------------------------------------------------------------
// validation and resolution

/** Problems of one layer against {@link CONFIG_LIMITS}, each naming the layer's source. */
function limitProblems(layer: Layer): string[] {
  const problem = treeProblem(layer.data);
  if (problem !== undefined) return [`${layer.source}: ${problem}`];
  return entryProblems(layer.data).map(
    ({ path, message }) => `${layer.source}: ${formatPath(path)}: ${message}`,
  );
}

function build(files: Layer[], environment: NodeJS.ProcessEnv, last: Layer): ResilienceConfig {
  // Limits first, on every layer as given: nothing below may see a cyclic, huge or endlessly
  // deep tree (merging, provenance, the walker and convict all recurse or copy).
  const limitLines = [...files, last].flatMap(limitProblems);
  if (limitLines.length > 0) throw new ConfigError(limitLines);
  const provenance = new Provenance();
  const merged: Record<string, unknown> = {};
  const problems: Problem[] = [];
  const apply = (layer: Layer): void => {
    if (isPlainObject(layer.data)) merge(merged, layer.data, [], layer.source, provenance);
    else {
      problems.push({
        path: [],
        message: `${layer.source} must be an object, got ${typeof layer.data}`,
      });
    }
  };
  files.forEach(apply);
  const envLayers = environmentLayers(environment, [merged, last.data], limitLines);
  limitLines.push(...envLayers.flatMap(limitProblems));
  if (limitLines.length > 0) throw new ConfigError(limitLines);
  envLayers.forEach(apply);
  apply(last);
  // Maps merge across layers, so their entry counts are checked once more on the result.
  const merges = entryProblems(merged);
  if (merges.length > 0) {
    throw new ConfigError(
      merges.map(({ path, message }) => {
        const source = provenance.lookup(path);
        return `${formatPath(path)}: ${message}${source === undefined ? '' : ` (from ${source})`}`;
      }),
    );
  }

  const invalid = new Set<string>();
  const report: Report = (path, message, involves) => {
    problems.push({ path, message, involves });
    invalid.add(rawKey(path));
  };
  const coerced = walk(configSchema, merged, [], 'complete', report);
  if (problems.length === 0) {
    // convict stays the authority: its strict validation over the coerced tree must agree.
    for (const line of convictProblems(coerced)) problems.push({ path: [], message: line });
  }
  const resolved = resolveTree(coerced, {
    report,
    isInvalid: (path) => invalid.has(rawKey(path)),
  });
  if (problems.length > 0) {
    const lines = problems.map((problem) => {
      const source = provenance.lookup(problem.path, problem.involves);
      const where = problem.path.length === 0 ? '' : `${formatPath(problem.path)}: `;
      return `${where}${problem.message}${source === undefined ? '' : ` (from ${source})`}`;
    });
    throw new ConfigError([...new Set(lines)]);
  }
  return seal(resolved);
}

function convictProblems(coerced: Record<string, unknown>): string[] {
  const config = convict(configSchema as unknown as convict.Schema<ResilienceConfig>, {
    env: {},
    args: [],
  });
  // set() per leaf rather than load(): convict's load() recurses into object values of leaves
  // (our maps) through schema nodes that leaves do not have.
  const maps: string[] = [];
  const visit = (node: Branch, path: string[], value: Record<string, unknown>): void => {
    for (const [key, child] of Object.entries(node)) {
      const at = [...path, key].join('.');
      if (!isLeaf(child)) visit(child, [...path, key], value[key] as Record<string, unknown>);
      else if (formatOf(child).entries?.kind === 'map') {
        // convict's validate() flattens every object it holds with Array#shift, quadratic in
        // the number of keys, only to ignore what sits below an object-valued leaf. So map
        // leaves go through their convict format here, as validate() would run it, and
        // convict itself holds an empty map.
        try {
          child.format(value[key]);
        } catch (err) {
          maps.push(`${at}: ${(err as Error).message}`);
        }
        config.set(at, {});
      } else config.set(at, value[key]);
    }
  };
  visit(configSchema, [], coerced);
  try {
    config.validate({ allowed: 'strict' });
    return maps;
  } catch (err) {
    // convict appends the whole value, which for resource maps may hold secrets.
    return [
      ...maps,
      ...(err as Error).message
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => line.replace(/: value was .*$/, '')),
    ];
  }
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}

/** Brands, protects secrets from printing, and deep-freezes a resolved tree. */
function seal(config: ResilienceConfig): ResilienceConfig {
  protectSensitive(config);
  Object.defineProperty(config, BRAND, { value: true, enumerable: false });
  deepFreeze(config);
  return config;
}
