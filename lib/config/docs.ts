import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CONFIG_LIMITS, describeBytes } from './limits.js';
import { configSchema } from './schema.js';
import { formatOf, isLeaf } from './walk.js';
import type { Branch, Leaf } from './walk.js';

/** Where the generated reference lives (same relative place from lib/ and from dist/). */
export const REFERENCE_FILE = fileURLToPath(new URL('../../config/README.md', import.meta.url));

function limitsTable(): string {
  const L = CONFIG_LIMITS;
  const rows: [string, string][] = [
    ['Size of a config file', describeBytes(L.fileBytes)],
    ['Size of an environment variable value', describeBytes(L.envValueBytes)],
    ['YAML alias expansions in a file', String(L.yamlAliases)],
    ['Nesting of objects and lists in a layer', `${L.depth} levels`],
    ['Values (objects, lists, keys, list entries) in a layer', String(L.values)],
    ['Entries of `middleware.routes`', String(L.routes)],
    ['Entries of `middleware.policies`', String(L.policies)],
    ['Entries of `resources.http`', String(L.httpResources)],
    ['Entries of `resources.redis`', String(L.redisResources)],
  ];
  return [
    '| Limit | At most |',
    '| --- | --- |',
    ...rows.map(([what, max]) => `| ${what} | ${max} |`),
  ].join('\n');
}

const INTRO = `# Configuration reference

<!-- Generated from lib/config/schema.ts by \`npm run docs:config\`; do not edit by hand. -->

Every option of express-resilience, generated from the convict schema
(\`lib/config/schema.ts\`), which is the single source of truth.

## Loading

\`loadConfig({ env, dir, overrides })\` builds the configuration from these layers, each over the
previous one:

1. the schema defaults (the *Default* column below);
2. the default file: \`<dir>/resilience.yaml\` if it exists, else \`<dir>/default.yaml\`;
3. the environment file: \`<dir>/resilience.<env>.yaml\` if it exists, else
   \`<dir>/<env>.yaml\`, where \`env\` is the \`env\` option, else \`NODE_ENV\`, else
   \`development\`;
4. environment variables (the *Env var* column, and the per-resource variables below);
5. \`overrides\` passed in code.

\`dir\` is the \`dir\` option, else \`RESILIENCE_CONFIG_DIR\`, else \`<cwd>/config\`. Each name
may end in \`.yaml\`, \`.yml\` or \`.json\`; only one of them may exist per name. A missing
directory or file is fine; a file that exists must parse.

Objects merge key by key; **lists replace** (an environment file that sets
\`middleware.routes\` replaces the whole list). \`resolveConfig(object)\` validates an object
given in code the same way, over the schema defaults and environment variables, reading no
file.

Validation is strict: an unknown or misspelt key, a wrong type or an impossible combination
fails start-up with one \`ConfigError\` listing every problem, each with its path and the file
(or environment variable, or \`overrides\`) that set it:

\`\`\`
middleware.routes[1] (create-order).rateLimit.burst: must be an integer >= 0, got -1 (from /srv/app/config/production.yaml)
\`\`\`

Validation covers every constraint the policies, pools and resources check when
\`resilience()\` builds them, so a config that \`config validate\` accepts starts; only what lives
outside the config is checked at start-up (TLS files it names, \`fn:\` key generators passed in
code).

The result is deep-frozen; durations are milliseconds and sizes bytes.

### Sharing \`config/\` with the app

The pack's own files (\`resilience.yaml\`, \`resilience.<env>.yaml\`) are the pack's alone:
every top-level key must be one of its sections (\`middleware\`, \`resources\`, \`metrics\`,
\`health\`, \`shutdown\`). The shared names (\`default.yaml\`, \`<env>.yaml\`, which
node-config and similar loaders read too) are read only when the pack's own file for that layer
is absent, and the pack takes from a shared file:

- its top-level \`resilience:\` section, if it has one; every other top-level key is the app's
  and is ignored (a pack section beside \`resilience:\` is an error: move it under it);
- else the whole file, if any top-level key is one of the pack's sections: then every
  top-level key must be one (an app key such as \`db\` beside them is an unknown key);
- else nothing: the file is the app's. A top-level key one or two edits from a section name or
  \`resilience\` (\`middlware\`) is still an error, so a misspelt section is not ignored.

Inside the pack's part, validation is as strict as anywhere.

### Warnings

Loading warns (once per process, through \`resilience()\`'s \`logger\`, else
\`process.emitWarning\`; \`config validate\` and \`config print\` print them on stderr and
still exit 0) with these codes:

- \`RESILIENCE_CONFIG_NO_ENV_FILE\`: the environment was chosen (\`env\` option or
  \`NODE_ENV\`) but has no file under either name while a default file exists. Only the
  default file applies; an empty \`resilience.<env>.yaml\` silences it.
- \`RESILIENCE_UNKNOWN_ENV_VAR\`: a \`RESILIENCE_*\` variable is neither an option's variable,
  \`RESILIENCE_CONFIG_DIR\`, nor shaped like a per-resource variable
  (\`RESILIENCE_HTTP_<NAME>_ORIGIN\`, \`RESILIENCE_REDIS_<NAME>_URL\`, ...); it names the
  closest known variable when one is near. The variable is ignored.

## Limits

Each layer (a file, an environment variable, \`overrides\`, a config object given in code) is
checked against these limits before anything is merged or validated; past one, loading fails at
once with a \`ConfigError\` naming the layer (a YAML alias bomb, a huge file, a cyclic or
endlessly deep object never reach the validator). Entry counts are checked again after
layering, as maps merge across layers:

${limitsTable()}

## Value formats

- **duration**: \`"250ms"\`, \`"5s"\`, \`"1m"\`, \`"1h"\` (decimals allowed, rounded to the
  millisecond) or a number of milliseconds (digit strings in environment variables). Never
  negative; at most 2147483647 ms, Node's timer limit.
- **size**: bytes, or \`"512kb"\`, \`"10MiB"\`, \`"1gb"\` (kb = 1000 bytes, KiB = 1024).
- **status patterns**: \`"5xx"\`, \`"4xx"\`, or exact codes such as \`"503"\`.
- **route match**: \`"GET /orders/:id"\`, \`"GET,HEAD /orders"\`, \`"/admin/*"\` or
  \`"* /admin/*"\` (any method), or \`{ methods: [GET], path: /orders }\`. Paths are
  Express-style patterns (path-to-regexp v8; a bare \`*\` is a wildcard).
- **name** (routes, named policies, resources): letters, digits and \`_ . : -\`; names become
  metric labels.
- **boolean** environment variables: \`true\`/\`false\` or \`1\`/\`0\`. **list** environment
  variables: comma-separated, or a JSON array.

## Inheritance

Every entry of \`middleware.routes\` and \`middleware.policies\` is a *partial* policy set:
it holds any of the fields of \`middleware.defaults\` (\`timeout\`, \`breaker\`, \`bulkhead\`,
\`rateLimit\`) and inherits the rest. A route resolves as \`middleware.defaults\`, then the named
policy it selects with \`policy:\` (if any), then its own fields. Lists inside a policy
(e.g. \`failureStatuses\`) replace, not merge. Routes are matched in order; the first match wins.
A request that matches no route gets \`middleware.defaults\` **without its breaker** (a breaker
protects one dependency; one shared by every unlisted route would couple them): list a route to
give it a breaker.

## Resource environment variables

Entries of \`resources.http\` and \`resources.redis\` are named by you, so their variables are
derived from the entry's name, upper-cased with every other character than A-Z and 0-9 turned
into \`_\`. They apply to entries declared in a file or in \`overrides\`:

| Variable | Sets |
| --- | --- |
| \`RESILIENCE_HTTP_<NAME>_ORIGIN\` | \`resources.http.<name>.origin\` |
| \`RESILIENCE_REDIS_<NAME>_URL\` | \`resources.redis.<name>.url\` |
| \`RESILIENCE_REDIS_<NAME>_PASSWORD\` | \`resources.redis.<name>.password\` |

For example \`RESILIENCE_REDIS_RATE_LIMITS_URL\` sets \`resources.redis.rate-limits.url\`.

## Secrets

Sensitive options (marked *sensitive* below) never appear in logs, metrics or \`/readyz\`
details: \`JSON.stringify\` and \`util.inspect\` of the resolved config show them as
\`[redacted]\`, Redis URLs keep everything but the password
(\`redis://user:[redacted]@host:6379\`), and credential headers (\`authorization\`, \`cookie\`,
\`*token*\`, \`*secret*\`, \`*api-key*\`, …) of HTTP resources are redacted.
\`redactConfig(config)\` returns the same redacted copy.

## Protecting health details and metrics

\`health.protect\` and \`metrics.protect\` each take an \`allowlist\` of IP addresses and CIDR
ranges and a bearer \`token\` (at least 16 characters; set it with
\`RESILIENCE_HEALTH_TOKEN\` / \`RESILIENCE_METRICS_TOKEN\` rather than in a file). A client is
allowed when its address (as \`trustProxy\` resolves it) is in the allowlist **or** it sends
\`Authorization: Bearer <token>\`; with neither set, everyone is. \`/metrics\` refuses other
clients; \`/readyz\` still answers them, with the status only and no details.

## Command line

\`\`\`sh
npx express-resilience config validate [--env E] [--dir D]
npx express-resilience config print [--env E] [--dir D] [--format yaml|json]
npx express-resilience config init [--dir D] [--force]
\`\`\`

\`validate\` prints one line and exits 0, or lists every problem on stderr and exits 1.
\`print\` prints the effective configuration with secrets redacted. \`init\` writes a commented
starter (the package's \`config/default.yaml\`: every option at its default), creating the
directory: as \`<dir>/default.yaml\`, or as \`<dir>/resilience.yaml\` when the directory's
\`default.*\` is the app's own (no pack section, no \`resilience:\` key) or a \`resilience.*\`
exists. It exits 1 and writes nothing when that file exists (\`--force\` overwrites it) or another
file of the same layer (\`.yml\`, \`.json\`) does. Usage errors exit 2.
`;

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function flow(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(flow).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    return entries.length === 0
      ? '{}'
      : `{ ${entries.map(([k, v]) => `${k}: ${flow(v)}`).join(', ')} }`;
  }
  if (value === '') return '""';
  return String(value);
}

function defaultCell(leaf: Leaf): string {
  if (leaf.default === undefined) return leaf.required === true ? '*required*' : '*unset*';
  return `\`${flow(leaf.default)}\``;
}

function typeCell(leaf: Leaf): string {
  const type = formatOf(leaf).name;
  return leaf.sensitive === true ? `${type} (*sensitive*)` : type;
}

interface Row {
  path: string;
  leaf: Leaf;
  env: string;
}

function rows(
  node: Branch,
  prefix: string,
  entryEnv?: { prefix: string },
  only?: readonly string[],
): Row[] {
  const out: Row[] = [];
  for (const [key, child] of Object.entries(node)) {
    if (only !== undefined && !only.includes(key)) continue;
    const path = `${prefix}.${key}`;
    if (!isLeaf(child)) {
      out.push(...rows(child, path, entryEnv));
      continue;
    }
    let env = '';
    if (child.env !== undefined) env = `\`${child.env}\``;
    else if (entryEnv !== undefined && child.entryEnv !== undefined) {
      env = `\`${entryEnv.prefix}_<NAME>_${child.entryEnv}\``;
    }
    out.push({ path, leaf: child, env });
  }
  return out;
}

function table(list: Row[]): string {
  const lines = [
    '| Path | Type | Default | Env var | Description |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const { path, leaf, env } of list) {
    lines.push(
      `| \`${cell(path)}\` | ${cell(typeCell(leaf))} | ${cell(defaultCell(leaf))} | ${env} | ${cell(leaf.doc)} |`,
    );
  }
  return lines.join('\n');
}

/** Entry sections (routes[], policies.<name>, resources.*.<name>) found under `node`. */
function entrySections(node: Branch, prefix: string): string[] {
  const out: string[] = [];
  for (const [key, child] of Object.entries(node)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (!isLeaf(child)) {
      out.push(...entrySections(child, path));
      continue;
    }
    const spec = formatOf(child).entries;
    if (spec === undefined) continue;
    const entryPath = spec.kind === 'list' ? `${path}[]` : `${path}.<name>`;
    const body: string[] = [`### \`${entryPath}\``, '', child.doc];
    if (spec.inherits !== undefined) {
      body.push(
        '',
        `Besides the fields below, an entry may set any field of \`${spec.inherits}\` (\`timeout\`, \`breaker\`, \`bulkhead\`, \`rateLimit\`); unset fields are inherited (see *Inheritance*).`,
      );
    }
    const list = rows(
      spec.schema,
      entryPath,
      spec.envPrefix === undefined ? undefined : { prefix: spec.envPrefix },
      spec.ownKeys,
    );
    if (list.length > 0) body.push('', table(list));
    out.push(body.join('\n'));
  }
  return out;
}

/** The option reference (config/README.md), generated from the schema. */
export function renderConfigReference(): string {
  const parts = [INTRO.trimEnd(), '## Options'];
  for (const [section, node] of Object.entries(configSchema)) {
    parts.push(`### \`${section}\``);
    parts.push(
      table(isLeaf(node) ? [{ path: section, leaf: node, env: '' }] : rows(node, section)),
    );
  }
  parts.push('## Entries', ...entrySections(configSchema, ''));
  return `${parts.join('\n\n')}\n`;
}

/**
 * `--write` regenerates config/README.md; `--check` exits 1 when it is stale. `--check` wins
 * over `--write`, so `npm run docs:config -- --check` checks.
 *
 * @returns the process exit code (2 for a usage error).
 */
export function docsMain(
  args: readonly string[],
  file: string = REFERENCE_FILE,
  log: Pick<Console, 'log' | 'error'> = console,
): number {
  const expected = renderConfigReference();
  const known = args.length > 0 && args.every((a) => a === '--write' || a === '--check');
  if (!known) {
    log.error('usage: tsx lib/config/docs.ts --write | --check');
    return 2;
  }
  if (!args.includes('--check')) {
    writeFileSync(file, expected);
    log.log(`wrote ${file}`);
    return 0;
  }
  let current = '';
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // A missing file is stale too.
  }
  if (current === expected) {
    log.log(`${file} is up to date`);
    return 0;
  }
  log.error(`${file} is stale: run \`npm run docs:config\``);
  return 1;
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) process.exitCode = docsMain(process.argv.slice(2));
