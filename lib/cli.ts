#!/usr/bin/env node
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { configLocation, isAppOnlyFile, loadConfigWithSources } from './config/load.js';
import { redactConfig } from './config/redact.js';
import { isConfigError } from './errors.js';

const USAGE = `Usage:
  express-resilience config validate [--env <name>] [--dir <path>]
  express-resilience config print [--env <name>] [--dir <path>] [--format yaml|json]
  express-resilience config init [--dir <path>] [--force]

Commands:
  config validate   check the configuration; exit 0 when valid, 1 listing every problem
  config print      print the effective configuration, secrets redacted
  config init       write a commented starter, every option at its default: <dir>/default.yaml,
                    or <dir>/resilience.yaml when default.yaml is the app's own (node-config)
                    or a resilience.yaml exists; exit 1, writing nothing, when the file
                    exists (unless --force)

Options:
  --env <name>      environment file layered over default (default: NODE_ENV, else development)
  --dir <path>      config directory (default: RESILIENCE_CONFIG_DIR, else ./config)
  --format <fmt>    output of print: yaml (default) or json
  --force           init: overwrite the existing starter file
  -h, --help        show this help
`;

function usageError(message: string): number {
  process.stderr.write(`express-resilience: ${message}\n\n${USAGE}`);
  return 2;
}

/**
 * The starter config: the shipped config/default.yaml (same relative place from lib/ and from
 * dist/; package.json "files" ships it). test/config/load.test.ts holds it equal to the schema
 * defaults, so the starter cannot drift from the schema.
 */
const STARTER = fileURLToPath(new URL('../config/default.yaml', import.meta.url));

/** The config files of `base` (`default`, `resilience`) that exist in `dir`. */
function existing(dir: string, base: string): string[] {
  return ['.yaml', '.yml', '.json']
    .map((ext) => base + ext)
    .filter((n) => existsSync(join(dir, n)));
}

/** Whether `file` parses to a mapping that is entirely the app's (see isAppOnlyFile). */
function appOnly(file: string): boolean {
  try {
    return isAppOnlyFile(parse(readFileSync(file, 'utf8')));
  } catch {
    return false;
  }
}

/**
 * `config init`: writes the starter and returns the exit code. The file is the pack's own
 * `resilience.yaml` when the directory already has one, or when its `default.*` is the app's
 * (node-config and the like); else `default.yaml`. Never a second file of the same layer.
 */
function init(dir: string, force: boolean): number {
  const own = existing(dir, 'resilience');
  const shared = existing(dir, 'default');
  const useOwn = own.length > 0 || (shared.length === 1 && appOnly(join(dir, shared[0]!)));
  const name = useOwn ? 'resilience.yaml' : 'default.yaml';
  const target = join(dir, name);
  // The loader refuses a directory holding two files of one layer, so never add a second one.
  const other = (useOwn ? own : shared).find((n) => n !== name);
  if (other !== undefined) {
    process.stderr.write(
      `express-resilience: ${join(dir, other)} already exists; remove it to write ${target}\n`,
    );
    return 1;
  }
  try {
    const text = readFileSync(STARTER, 'utf8');
    mkdirSync(dir, { recursive: true });
    // 'wx' fails if the file appeared after any check: an existing config is never clobbered.
    writeFileSync(target, text, { flag: force ? 'w' : 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      process.stderr.write(
        `express-resilience: ${target} already exists; pass --force to overwrite it\n`,
      );
    } else {
      process.stderr.write(
        `express-resilience: cannot write ${target}: ${(err as Error).message}\n`,
      );
    }
    return 1;
  }
  const beside = useOwn && shared.length > 0 ? ` (beside the app's ${shared[0]})` : '';
  process.stdout.write(
    `Wrote ${target}${beside}\nCheck it with: express-resilience config validate --dir ${dir}\n`,
  );
  return 0;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Runs the CLI; returns the exit code (0 ok, 1 invalid configuration or a file init would not
 * overwrite, 2 usage error).
 */
function main(argv: string[]): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        env: { type: 'string' },
        dir: { type: 'string' },
        format: { type: 'string' },
        force: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [group, command, ...extra] = positionals;
  if (group === undefined) return usageError('missing command');
  if (group !== 'config') return usageError(`unknown command "${group}"`);
  if (command !== 'validate' && command !== 'print' && command !== 'init') {
    return usageError(
      command === undefined ? 'missing config command' : `unknown config command "${command}"`,
    );
  }
  if (extra.length > 0) return usageError(`unexpected argument "${extra[0]}"`);
  if (command !== 'print' && values.format !== undefined) {
    return usageError('--format only applies to config print');
  }
  if (command !== 'init' && values.force !== undefined) {
    return usageError('--force only applies to config init');
  }
  if (command === 'init') {
    if (values.env !== undefined) {
      return usageError('--env does not apply to config init (it writes the default layer)');
    }
    return init(configLocation({ dir: values.dir }).dir, values.force === true);
  }
  const format = values.format ?? 'yaml';
  if (format !== 'yaml' && format !== 'json') {
    return usageError(`--format must be yaml or json, got "${format}"`);
  }

  const options = { env: values.env, dir: values.dir };
  try {
    const loaded = loadConfigWithSources(options);
    for (const { code, message } of loaded.warnings) {
      process.stderr.write(`express-resilience: warning ${code}: ${message}\n`);
    }
    if (command === 'validate') {
      const { middleware, resources } = loaded.config;
      const files =
        loaded.files.length === 0 ? 'no files, schema defaults only' : loaded.files.join(', ');
      const resourceCount =
        Object.keys(resources.http).length + Object.keys(resources.redis).length;
      process.stdout.write(
        `OK: configuration is valid (env ${loaded.env}; ${plural(middleware.routes.length, 'route')}, ${plural(resourceCount, 'resource')}; ${files})\n`,
      );
    } else {
      const redacted = redactConfig(loaded.config);
      process.stdout.write(
        format === 'json' ? `${JSON.stringify(redacted, null, 2)}\n` : stringify(redacted),
      );
    }
    return 0;
  } catch (err) {
    if (!isConfigError(err)) {
      process.stderr.write(`express-resilience: ${(err as Error).message}\n`);
      return 1;
    }
    const { env, dir } = configLocation(options);
    process.stderr.write(
      `express-resilience: invalid configuration (env ${env}, dir ${dir}), ${plural(err.problems.length, 'problem')}:\n${err.problems
        .map((p) => `  - ${p}\n`)
        .join('')}`,
    );
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
