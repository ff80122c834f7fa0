import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CONFIG_LIMITS } from '../../lib/config/limits.js';
import { flowDepth, loadConfig, resolveConfig } from '../../lib/config/load.js';
import type { ResilienceConfigInput } from '../../lib/config/types.js';
import { TempDirs, configProblems } from './helpers.js';

const dirs = new TempDirs();
const noEnv = {};

function resolveProblems(input: unknown, environment: NodeJS.ProcessEnv = noEnv): string[] {
  return configProblems(() => resolveConfig(input as ResilienceConfigInput, { environment }));
}

function loadProblems(files: Record<string, string>, environment: NodeJS.ProcessEnv = noEnv) {
  const dir = dirs.make(files);
  return { dir, problems: configProblems(() => loadConfig({ dir, environment })) };
}

/** `{ a: { a: ... } }`, `levels` objects deep. */
function nestedObject(levels: number): Record<string, unknown> {
  let node: Record<string, unknown> = {};
  const root = node;
  for (let i = 1; i < levels; i++) {
    const child = {};
    node.a = child;
    node = child;
  }
  return root;
}

/** A config with the most routes, policies and resources the limits allow. */
function configAtTheLimits(): ResilienceConfigInput {
  const policies: Record<string, unknown> = {};
  for (let i = 0; i < CONFIG_LIMITS.policies; i++) {
    policies[`p${i}`] = { timeout: { duration: '1s' }, bulkhead: { maxConcurrent: 5 } };
  }
  const routes = [];
  for (let i = 0; i < CONFIG_LIMITS.routes; i++) {
    routes.push({
      name: `r${i}`,
      match: `GET /r${i}/:id`,
      policy: `p${i}`,
      rateLimit: { limit: 10 },
    });
  }
  const http: Record<string, unknown> = {};
  for (let i = 0; i < CONFIG_LIMITS.httpResources; i++) {
    http[`h${i}`] = { origin: `http://127.0.0.1:${1000 + i}`, headers: { 'x-a': 'a', 'x-b': 'b' } };
  }
  const redis: Record<string, unknown> = {};
  for (let i = 0; i < CONFIG_LIMITS.redisResources; i++) redis[`c${i}`] = { db: i % 16 };
  return { middleware: { routes, policies }, resources: { http, redis } } as ResilienceConfigInput;
}

describe('config limits', () => {
  afterEach(() => dirs.cleanup());

  it('rejects a YAML alias bomb, naming the file', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i++) {
      const [prev, name] = [String.fromCharCode(96 + i), String.fromCharCode(97 + i)];
      lines.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    const { dir, problems } = loadProblems({ 'default.yaml': lines.join('\n') });
    assert.deepEqual(problems, [
      `${join(dir, 'default.yaml')}: expands YAML aliases more than ${CONFIG_LIMITS.yamlAliases} times (the limit)`,
    ]);
  });

  it('rejects YAML flow collections nested past the limit before parsing them, naming the file', () => {
    // 120 KB of brackets: yaml's recursive parser would take about a second to give up.
    const text = `middleware:\n  defaults: ${'['.repeat(60_000)}${']'.repeat(60_000)}\n`;
    const { dir, problems } = loadProblems({ 'default.yaml': text });
    assert.deepEqual(problems, [
      `${join(dir, 'default.yaml')}: is nested more than ${CONFIG_LIMITS.depth} levels deep (the limit)`,
    ]);
  });

  it('counts only real flow collections towards the nesting limit', () => {
    const deep = '['.repeat(40);
    const text = [
      `pattern: /a[0-9]+[a-z]/${deep}`, // brackets inside a plain scalar
      `quoted: '${deep}'`,
      `doubled: "\\" ${deep}"`,
      `# ${deep}`,
      'literal: |',
      `  ${deep}`,
      '',
      `  ${deep}`,
      "list: [a, 'b]]]', {c: [d]}]",
    ].join('\n');
    assert.equal(flowDepth(text, CONFIG_LIMITS.depth), 3);
    assert.equal(flowDepth('a: [[[[1]]]]', CONFIG_LIMITS.depth), 4);
  });

  it('rejects a recursive YAML alias as a cycle, naming the file', () => {
    const { dir, problems } = loadProblems({ 'default.yaml': 'metrics: &m\n  self: *m\n' });
    assert.deepEqual(problems, [
      `${join(dir, 'default.yaml')}: metrics.self: refers back to an object that contains it (a cycle)`,
    ]);
  });

  it('rejects a file over the size limit without parsing it', () => {
    const big = `# ${'x'.repeat(CONFIG_LIMITS.fileBytes)}\nmetrics: { prefix: a_ }\n`;
    const { dir, problems } = loadProblems({ 'default.yaml': big });
    assert.deepEqual(problems, [
      `${join(dir, 'default.yaml')}: is larger than 131072 bytes (128 KiB), the limit of a config file`,
    ]);
  });

  it('rejects a layer with too many values, naming the file or the config object', () => {
    const exclude = Array<string>(CONFIG_LIMITS.values).fill('/a');
    const { dir, problems } = loadProblems({
      'default.json': JSON.stringify({ middleware: { exclude } }),
    });
    assert.deepEqual(problems, [
      `${join(dir, 'default.json')}: holds more than ${CONFIG_LIMITS.values} values (the limit)`,
    ]);
    const policies: Record<string, unknown> = {};
    for (let i = 0; i < CONFIG_LIMITS.values; i++)
      policies[`p${i}`] = { timeout: { duration: '1s' } };
    assert.deepEqual(resolveProblems({ middleware: { policies } }), [
      `config object: holds more than ${CONFIG_LIMITS.values} values (the limit)`,
    ]);
  });

  it('rejects nesting past the depth limit, naming the source and the path', () => {
    const deep = { middleware: { defaults: nestedObject(100_000) } };
    const [problem, ...rest] = resolveProblems(deep);
    assert.equal(rest.length, 0);
    assert.match(
      problem!,
      /^config object: middleware\.defaults(\.a)+: is nested more than 32 levels deep \(the limit\)$/,
    );
    const overrides = configProblems(() =>
      loadConfig({ dir: dirs.make(), environment: noEnv, overrides: deep as never }),
    );
    assert.match(overrides[0]!, /^overrides: middleware\.defaults(\.a)+: is nested more than 32/);
  });

  it('rejects a cyclic config object with a ConfigError, not a stack overflow', () => {
    const config: Record<string, Record<string, unknown>> = { middleware: { defaults: {} } };
    config.middleware!.defaults = { breaker: { enabled: true } };
    (config.middleware!.defaults as Record<string, unknown>).self = config;
    assert.deepEqual(resolveProblems(config), [
      'config object: middleware.defaults.self: refers back to an object that contains it (a cycle)',
    ]);
    const list: unknown[] = [];
    list.push(list);
    assert.deepEqual(resolveProblems({ middleware: { exclude: list } }), [
      'config object: middleware.exclude[0]: refers back to an object that contains it (a cycle)',
    ]);
  });

  it('accepts an object shared between two places (not a cycle)', () => {
    const shared = { duration: '2s' };
    const config = resolveConfig(
      {
        middleware: {
          defaults: { timeout: shared },
          routes: [{ name: 'a', match: 'GET /a', timeout: shared }],
        },
      },
      { environment: noEnv },
    );
    assert.equal(config.middleware.routes[0]!.timeout.duration, 2000);
  });

  it('rejects an environment variable over its size limit, naming it', () => {
    const problems = resolveProblems(
      {},
      { RESILIENCE_EXCLUDE: `/${'a'.repeat(CONFIG_LIMITS.envValueBytes)}` },
    );
    assert.deepEqual(problems, [
      'environment variable RESILIENCE_EXCLUDE: is longer than 65536 bytes (64 KiB), the limit of an environment variable',
    ]);
  });

  it('rejects more routes, policies or resources than the limits', () => {
    const routes = Array.from({ length: CONFIG_LIMITS.routes + 1 }, (_, i) => ({
      name: `r${i}`,
      match: `GET /r${i}`,
    }));
    assert.deepEqual(resolveProblems({ middleware: { routes } }), [
      `config object: middleware.routes: has ${CONFIG_LIMITS.routes + 1} entries, more than the limit of ${CONFIG_LIMITS.routes}`,
    ]);
    const redis: Record<string, unknown> = {};
    for (let i = 0; i <= CONFIG_LIMITS.redisResources; i++) redis[`c${i}`] = {};
    assert.deepEqual(resolveProblems({ resources: { redis } }), [
      `config object: resources.redis: has ${CONFIG_LIMITS.redisResources + 1} entries, more than the limit of ${CONFIG_LIMITS.redisResources}`,
    ]);
  });

  it('counts map entries again after layering, naming the latest layer', () => {
    const half = (from: number) =>
      Array.from(
        { length: CONFIG_LIMITS.httpResources / 2 + 1 },
        (_, i) => `  h${from + i}: { origin: "http://127.0.0.1:${1000 + from + i}" }`,
      ).join('\n');
    const dir = dirs.make({
      'default.yaml': `resources:\n http:\n${half(0)}\n`,
      'production.yaml': `resources:\n http:\n${half(1000)}\n`,
    });
    assert.deepEqual(
      configProblems(() => loadConfig({ dir, env: 'production', environment: noEnv })),
      [
        `resources.http: has ${CONFIG_LIMITS.httpResources + 2} entries, more than the limit of ${CONFIG_LIMITS.httpResources} (from ${join(dir, 'production.yaml')})`,
      ],
    );
  });

  it('loads a config at the limits', () => {
    const config = resolveConfig(configAtTheLimits(), { environment: noEnv });
    assert.equal(config.middleware.routes.length, CONFIG_LIMITS.routes);
    assert.equal(Object.keys(config.middleware.policies).length, CONFIG_LIMITS.policies);
    assert.equal(Object.keys(config.resources.http).length, CONFIG_LIMITS.httpResources);
    assert.equal(Object.keys(config.resources.redis).length, CONFIG_LIMITS.redisResources);
    assert.equal(config.middleware.routes[999]!.bulkhead.maxConcurrent, 5);
  });

  it('still names the layer of a problem in a config at the limits', () => {
    const input = configAtTheLimits() as unknown as {
      middleware: { routes: Record<string, unknown>[] };
    };
    input.middleware.routes[500]!.rateLimit = { limit: 0 };
    assert.deepEqual(resolveProblems(input), [
      'middleware.routes[500] (r500).rateLimit.limit: must be an integer >= 1, got 0 (from config object)',
    ]);
  });
});
