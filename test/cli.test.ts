import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
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

/** Runs `node <nodeArgs…>` from the package root. */
function node(nodeArgs: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, nodeArgs, { cwd: ROOT, env: cleanEnv(extraEnv) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

/** Runs `node --import tsx lib/cli.ts …` from the package root. */
function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  return node(['--import', 'tsx', 'lib/cli.ts', ...args], extraEnv);
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
      ['--format with init', ['config', 'init', '--format', 'json'], /--format only applies/],
      ['--force with validate', ['config', 'validate', '--force'], /--force only applies to/],
      ['--env with init', ['config', 'init', '--env', 'production'], /--env does not apply/],
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

    it('prints loading warnings with their codes on stderr and still exits 0', async () => {
      const { code, stdout, stderr } = await cli(['config', 'validate', '--dir', VALID], {
        NODE_ENV: 'prod',
        RESILIENCE_METRICS_ENABLD: 'false',
      });
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^OK: configuration is valid \(env prod;/);
      const dir = resolve(ROOT, VALID);
      assert.equal(
        stderr,
        [
          `express-resilience: warning RESILIENCE_CONFIG_NO_ENV_FILE: environment "prod" has no config file in ${dir} (looked for resilience.prod.{yaml,yml,json} and prod.{yaml,yml,json}); only the default file applies`,
          'express-resilience: warning RESILIENCE_UNKNOWN_ENV_VAR: environment variable RESILIENCE_METRICS_ENABLD names no option (did you mean RESILIENCE_METRICS_ENABLED?); it is ignored',
          '',
        ].join('\n'),
      );
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

  describe('config init', () => {
    const dirs = new TempDirs();
    after(() => dirs.cleanup());
    const starter = readFileSync(resolve(ROOT, 'config/default.yaml'), 'utf8');

    it('writes the commented starter, creating the directory, and it passes config validate', async () => {
      const dir = join(dirs.make(), 'app', 'config');
      const written = await cli(['config', 'init', '--dir', dir]);
      assert.equal(written.code, 0, written.stderr);
      assert.equal(written.stderr, '');
      const file = join(dir, 'default.yaml');
      assert.match(written.stdout, new RegExp(`^Wrote ${file}\n`));
      assert.equal(readFileSync(file, 'utf8'), starter);
      assert.match(starter, /^# express-resilience/);

      const validated = await cli(['config', 'validate', '--dir', dir, '--env', 'production']);
      assert.equal(validated.code, 0, validated.stderr);
      assert.equal(
        validated.stdout,
        `OK: configuration is valid (env production; 0 routes, 0 resources; ${file})\n`,
      );
    });

    it('writes to RESILIENCE_CONFIG_DIR when --dir is not given', async () => {
      const dir = join(dirs.make(), 'config');
      const { code, stderr } = await cli(['config', 'init'], { RESILIENCE_CONFIG_DIR: dir });
      assert.equal(code, 0, stderr);
      assert.equal(readFileSync(join(dir, 'default.yaml'), 'utf8'), starter);
    });

    it('refuses to overwrite an existing default.yaml: exit 1, the file untouched', async () => {
      const mine = 'metrics: { enabled: false }\n';
      const dir = dirs.make({ 'default.yaml': mine });
      const { code, stdout, stderr } = await cli(['config', 'init', '--dir', dir]);
      assert.equal(code, 1);
      assert.equal(stdout, '');
      assert.equal(
        stderr,
        `express-resilience: ${join(dir, 'default.yaml')} already exists; pass --force to overwrite it\n`,
      );
      assert.equal(readFileSync(join(dir, 'default.yaml'), 'utf8'), mine);
    });

    it('overwrites an existing default.yaml with --force', async () => {
      const dir = dirs.make({ 'default.yaml': 'metrics: { enabled: false }\n' });
      const { code, stderr } = await cli(['config', 'init', '--dir', dir, '--force']);
      assert.equal(code, 0, stderr);
      assert.equal(readFileSync(join(dir, 'default.yaml'), 'utf8'), starter);
    });

    it("writes resilience.yaml beside an app's own default.yaml (node-config), which it leaves alone", async () => {
      const app = 'db:\n  host: localhost\nport: 8080\n';
      const dir = dirs.make({ 'default.yaml': app });
      const { code, stdout, stderr } = await cli(['config', 'init', '--dir', dir]);
      assert.equal(code, 0, stderr);
      const file = join(dir, 'resilience.yaml');
      assert.match(stdout, new RegExp(`^Wrote ${file} \\(beside the app's default\\.yaml\\)\n`));
      assert.equal(readFileSync(file, 'utf8'), starter);
      assert.equal(readFileSync(join(dir, 'default.yaml'), 'utf8'), app);
      const validated = await cli(['config', 'validate', '--dir', dir]);
      assert.equal(validated.code, 0, validated.stderr);
      // A second init finds the pack's own file and refuses.
      const again = await cli(['config', 'init', '--dir', dir]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /resilience\.yaml already exists; pass --force/);
    });

    it('never adds default.yaml beside a default.json, even with --force', async () => {
      const dir = dirs.make({ 'default.json': '{}' });
      const { code, stderr } = await cli(['config', 'init', '--dir', dir, '--force']);
      assert.equal(code, 1);
      assert.match(stderr, /default\.json already exists; remove it to write .*default\.yaml\n$/);
      assert.equal((await cli(['config', 'validate', '--dir', dir])).code, 0);
    });
  });

  describe('the bin launcher (bin/express-resilience.js)', () => {
    const LAUNCHER = 'bin/express-resilience.js';
    const dirs = new TempDirs();
    after(() => dirs.cleanup());

    /**
     * A package directory (ESM, as this one) holding a copy of the launcher and the given parts: a lib/cli.ts (in
     * TypeScript, so only tsx can run it), a dist/cli.js, and node_modules (the repo's, with tsx).
     */
    function packageDir(parts: { lib?: boolean; dist?: boolean; tsx?: boolean }): string {
      const dir = dirs.make({ 'package.json': '{ "type": "module" }' });
      mkdirSync(join(dir, 'bin'));
      copyFileSync(resolve(ROOT, LAUNCHER), join(dir, LAUNCHER));
      const report = (from: string) =>
        `process.stdout.write(\`${from} \${JSON.stringify(process.argv.slice(2))}\`);\n`;
      if (parts.lib === true) {
        mkdirSync(join(dir, 'lib'));
        writeFileSync(join(dir, 'lib/cli.ts'), `const from: string = 'lib';\n${report('lib')}`);
      }
      if (parts.dist === true) {
        mkdirSync(join(dir, 'dist'));
        writeFileSync(join(dir, 'dist/cli.js'), report('dist'));
      }
      if (parts.tsx === true) symlinkSync(resolve(ROOT, 'node_modules'), join(dir, 'node_modules'));
      return dir;
    }

    it('is the package bin, and is shipped', () => {
      const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as {
        bin: Record<string, string>;
        files: string[];
      };
      assert.deepEqual(pkg.bin, { 'express-resilience': `./${LAUNCHER}` });
      assert.ok(pkg.files.includes('bin'));
      assert.ok(readFileSync(resolve(ROOT, LAUNCHER), 'utf8').startsWith('#!/usr/bin/env node\n'));
    });

    it('runs config validate from the repository without a build', async () => {
      const { code, stdout, stderr } = await node([
        LAUNCHER,
        'config',
        'validate',
        '--dir',
        VALID,
        '--env',
        'production',
      ]);
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^OK: configuration is valid \(env production; 1 route, 1 resource;/);
    });

    it('runs lib/cli.ts through tsx in a checkout, even beside a (maybe stale) dist', async () => {
      const dir = packageDir({ lib: true, dist: true, tsx: true });
      const { code, stdout, stderr } = await node([join(dir, LAUNCHER), 'config', 'validate']);
      assert.equal(code, 0, stderr);
      assert.equal(stdout, 'lib ["config","validate"]');
    });

    it('runs dist/cli.js in the published layout, without tsx', async () => {
      const dir = packageDir({ dist: true });
      const { code, stdout, stderr } = await node([join(dir, LAUNCHER), 'config', 'init']);
      assert.equal(code, 0, stderr);
      assert.equal(stdout, 'dist ["config","init"]');
    });

    it('runs dist/cli.js in a checkout installed without devDependencies', async () => {
      const dir = packageDir({ lib: true, dist: true });
      const { code, stdout, stderr } = await node([join(dir, LAUNCHER), '--help']);
      assert.equal(code, 0, stderr);
      assert.equal(stdout, 'dist ["--help"]');
    });

    it('exits 1 saying what to do when it has nothing to run', async () => {
      const [checkout, installed] = await Promise.all([
        node([join(packageDir({ lib: true }), LAUNCHER), '--help']),
        node([join(packageDir({}), LAUNCHER), '--help']),
      ]);
      assert.equal(checkout.code, 1);
      assert.match(
        checkout.stderr,
        /dist\/cli\.js is missing and tsx is not installed: run `npm install`/,
      );
      assert.equal(installed.code, 1);
      assert.match(installed.stderr, /dist\/cli\.js is missing: reinstall the package/);
    });
  });
});
