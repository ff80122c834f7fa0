import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { TempDirs } from './config/helpers.js';

const ROOT = resolve(import.meta.dirname, '..');
const VALID = 'test/fixtures/config/valid';
const INVALID = 'test/fixtures/config/invalid';

/** The environment without NODE_ENV and RESILIENCE_*, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key !== 'NODE_ENV' && !key.startsWith('RESILIENCE_')) env[key] = value;
  }
  return { ...env, ...extra };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node --import tsx lib/cli.ts …` from the package root. */
function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli.ts', ...args], {
      cwd: ROOT,
      env: cleanEnv(extraEnv),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

describe('express-resilience CLI', () => {
  it('starts with a node shebang (it is the package bin)', () => {
    assert.ok(
      readFileSync(resolve(ROOT, 'lib/cli.ts'), 'utf8').startsWith('#!/usr/bin/env node\n'),
    );
  });

  it('--help prints the usage and exits 0', async () => {
    const { code, stdout, stderr } = await cli(['--help']);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage:\n {2}express-resilience config validate/);
    assert.match(stdout, /config print \[--env <name>\] \[--dir <path>\] \[--format yaml\|json\]/);
    assert.equal(stderr, '');
  });

  describe('usage errors', () => {
    const cases: [string, string[], RegExp][] = [
      ['no command', [], /missing command/],
      ['an unknown config command', ['config', 'check'], /unknown config command "check"/],
      ['an unknown option', ['config', 'validate', '--verbose'], /Unknown option '--verbose'/],
      ['an extra argument', ['config', 'validate', 'x'], /unexpected argument "x"/],
      [
        'a bad format',
        ['config', 'print', '--format', 'xml'],
        /--format must be yaml or json, got "xml"/,
      ],
      [
        '--format with validate',
        ['config', 'validate', '--format', 'json'],
        /--format only applies to config print/,
      ],
    ];
    // One process per case, started together: each takes a while to boot tsx.
    let runs: Run[] = [];
    before(async () => {
      runs = await Promise.all(cases.map(([, args]) => cli(args)));
    });

    cases.forEach(([title, , message], i) => {
      it(`exits 2 with the usage on ${title}`, () => {
        const { code, stdout, stderr } = runs[i]!;
        assert.equal(code, 2);
        assert.equal(stdout, '');
        assert.match(stderr, message);
        assert.match(stderr, /Usage:/);
      });
    });
  });

  describe('config validate', () => {
    it('prints one OK line and exits 0 for a valid config', async () => {
      const { code, stdout, stderr } = await cli([
        'config',
        'validate',
        '--dir',
        VALID,
        '--env',
        'production',
      ]);
      assert.equal(code, 0, stderr);
      assert.equal(stderr, '');
      assert.equal(
        stdout,
        `OK: configuration is valid (env production; 1 route, 1 resource; ${resolve(ROOT, VALID, 'default.yaml')}, ${resolve(ROOT, VALID, 'production.yaml')})\n`,
      );
    });

    it('lists every problem with its file on stderr and exits 1', async () => {
      const { code, stdout, stderr } = await cli([
        'config',
        'validate',
        '--dir',
        INVALID,
        '--env',
        'production',
      ]);
      assert.equal(code, 1);
      assert.equal(stdout, '');
      const dir = resolve(ROOT, INVALID);
      assert.equal(
        stderr,
        [
          `express-resilience: invalid configuration (env production, dir ${dir}), 3 problems:`,
          `  - middleware.defaults.bulkhead.maxConcurent: unknown key (did you mean maxConcurrent?) (from ${dir}/default.yaml)`,
          `  - middleware.routes[0] (create-order).rateLimit.burst: must be an integer >= 0, got -1 (from ${dir}/production.yaml)`,
          `  - metrics.prefix: must be a Prometheus metric name prefix (letters, digits, _ and :, not starting with a digit), got "1bad" (from ${dir}/production.yaml)`,
          '',
        ].join('\n'),
      );
    });

    it('reads NODE_ENV and RESILIENCE_CONFIG_DIR when no option is given', async () => {
      const { code, stdout } = await cli(['config', 'validate'], {
        NODE_ENV: 'production',
        RESILIENCE_CONFIG_DIR: VALID,
      });
      assert.equal(code, 0);
      assert.match(stdout, /^OK: configuration is valid \(env production; 1 route, 1 resource;/);
      // The development layer of the invalid fixture does not exist: only default.yaml applies.
      assert.equal((await cli(['config', 'validate', '--dir', INVALID])).code, 1);
    });

    it('names the environment variable that holds a bad value', async () => {
      const { code, stderr } = await cli(['config', 'validate', '--dir', VALID], {
        RESILIENCE_METRICS_ENABLED: 'maybe',
      });
      assert.equal(code, 1);
      assert.match(
        stderr,
        /metrics\.enabled: must be true or false, got "maybe" \(from environment variable RESILIENCE_METRICS_ENABLED\)/,
      );
    });
  });

  describe('config validate: limits and start-up constraints', () => {
    const dirs = new TempDirs();
    after(() => dirs.cleanup());

    it('exits 1 naming the file for an alias bomb, an oversize file and a start-up conflict', async () => {
      const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]'];
      for (let i = 1; i < 10; i++) {
        const [prev, name] = [String.fromCharCode(96 + i), String.fromCharCode(97 + i)];
        bomb.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
      }
      const dirsByCase = [
        dirs.make({ 'default.yaml': bomb.join('\n') }),
        dirs.make({ 'default.yaml': `# ${'x'.repeat(200_000)}\n` }),
        dirs.make({
          'default.yaml': 'middleware:\n  defaults:\n    breaker: { halfOpenAfter: 10m }\n',
        }),
      ];
      const expected = [
        'expands YAML aliases more than 100 times (the limit)',
        'is larger than 131072 bytes (128 KiB), the limit of a config file',
        'middleware.defaults.breaker.openBackoff.max: must be at least halfOpenAfter (600000ms), got 300000ms',
      ];
      const runs = await Promise.all(
        dirsByCase.map((dir) => cli(['config', 'validate', '--dir', dir])),
      );
      runs.forEach(({ code, stdout, stderr }, i) => {
        const file = join(dirsByCase[i]!, 'default.yaml');
        assert.equal(code, 1, stderr);
        assert.equal(stdout, '');
        assert.ok(
          stderr.includes(
            i < 2 ? `  - ${file}: ${expected[i]}\n` : `  - ${expected[i]} (from ${file})\n`,
          ),
          stderr,
        );
      });
    });
  });

  describe('config print', () => {
    it('prints the effective config as JSON with secrets redacted', async () => {
      const { code, stdout, stderr } = await cli([
        'config',
        'print',
        '--dir',
        VALID,
        '--env',
        'production',
        '--format',
        'json',
      ]);
      assert.equal(code, 0, stderr);
      const printed = JSON.parse(stdout);
      assert.equal(printed.middleware.defaults.timeout.duration, 3000);
      assert.equal(printed.middleware.routes[0].timeout.duration, 2000);
      assert.deepEqual(printed.middleware.routes[0].match, { methods: ['POST'], path: '/orders' });
      assert.equal(printed.health.details, false);
      assert.equal(printed.resources.redis.cache.url, 'redis://app:[redacted]@cache.internal:6379');
      assert.equal(printed.resources.redis.cache.password, '[redacted]');
      assert.ok(!stdout.includes('hunter2') && !stdout.includes('pa55'));
    });

    it('prints YAML by default, with the same content', async () => {
      const [yaml, json] = await Promise.all([
        cli(['config', 'print', '--dir', VALID, '--env', 'production']),
        cli(['config', 'print', '--dir', VALID, '--env', 'production', '--format', 'json']),
      ]);
      assert.equal(yaml.code, 0);
      assert.ok(!yaml.stdout.trimStart().startsWith('{'));
      assert.deepEqual(parse(yaml.stdout), JSON.parse(json.stdout));
    });

    it('exits 1 listing the problems when the config is invalid', async () => {
      const { code, stdout, stderr } = await cli([
        'config',
        'print',
        '--dir',
        INVALID,
        '--env',
        'production',
      ]);
      assert.equal(code, 1);
      assert.equal(stdout, '');
      assert.match(stderr, /3 problems:/);
    });
  });
});
