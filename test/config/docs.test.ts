import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REFERENCE_FILE, docsMain, renderConfigReference } from '../../lib/config/docs.js';
import { configSchema } from '../../lib/config/schema.js';
import { isLeaf } from '../../lib/config/walk.js';
import type { Branch } from '../../lib/config/walk.js';
import { TempDirs } from './helpers.js';

const dirs = new TempDirs();
const quiet = { log: () => undefined, error: () => undefined };

function leaves(node: Branch, prefix: string): [string, { env?: string }][] {
  return Object.entries(node).flatMap(([key, child]) => {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    return isLeaf(child) ? [[path, child] as [string, { env?: string }]] : leaves(child, path);
  });
}

describe('config reference (config/README.md)', () => {
  afterEach(() => dirs.cleanup());

  it('is up to date with the schema (run `npm run docs:config` when this fails)', () => {
    assert.equal(REFERENCE_FILE, join(process.cwd(), 'config', 'README.md'));
    assert.ok(
      readFileSync(REFERENCE_FILE, 'utf8') === renderConfigReference(),
      'config/README.md is stale',
    );
  });

  it('documents every option and every environment variable', () => {
    const reference = renderConfigReference();
    for (const [path, leaf] of leaves(configSchema, '')) {
      assert.ok(reference.includes(`| \`${path}\` |`), `${path} is not documented`);
      if (leaf.env !== undefined)
        assert.ok(reference.includes(`\`${leaf.env}\``), `${leaf.env} is not documented`);
    }
    for (const entry of [
      'resources.http.<name>.origin',
      'resources.redis.<name>.sentinels',
      'middleware.routes[].match',
      'RESILIENCE_HTTP_<NAME>_ORIGIN',
      'RESILIENCE_REDIS_<NAME>_URL',
      'RESILIENCE_REDIS_<NAME>_PASSWORD',
      'RESILIENCE_CONFIG_DIR',
    ]) {
      assert.ok(reference.includes(entry), `${entry} is not documented`);
    }
  });

  it('--check fails on a stale or missing file and passes after --write', () => {
    const file = join(dirs.make({ 'README.md': '# old\n' }), 'README.md');
    assert.equal(docsMain(['--check'], file, quiet), 1);
    assert.equal(docsMain(['--check'], join(dirs.make(), 'missing.md'), quiet), 1);
    assert.equal(docsMain(['--write'], file, quiet), 0);
    assert.equal(readFileSync(file, 'utf8'), renderConfigReference());
    assert.equal(docsMain(['--check'], file, quiet), 0);
  });

  it('checks when given both flags (npm run docs:config -- --check)', () => {
    const file = join(dirs.make({ 'README.md': '# old\n' }), 'README.md');
    assert.equal(docsMain(['--write', '--check'], file, quiet), 1);
    assert.equal(readFileSync(file, 'utf8'), '# old\n');
  });

  it('rejects other arguments', () => {
    assert.equal(docsMain([], REFERENCE_FILE, quiet), 2);
    assert.equal(docsMain(['--fix'], REFERENCE_FILE, quiet), 2);
  });
});
