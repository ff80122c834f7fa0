import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import * as byName from 'express-resilience';
import * as lib from '../../lib/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = join(ROOT, 'examples');
const LIB = join(ROOT, 'lib');

// The examples are meant to be copied into an app: they import the package by name, as the app
// would, and the repo resolves that name to lib/ (the "express-resilience-source" condition in
// package.json's exports, set in .mocharc.json, tsconfig.json and examples/launch.ts).
describe('examples import the package by name', () => {
  it('"express-resilience" is lib/index.ts itself here, not a second copy', () => {
    assert.equal(byName.resilience, lib.resilience);
    assert.deepEqual(Object.keys(byName).sort(), Object.keys(lib).sort());
  });

  it('no file in examples/ imports from lib/ by a relative path', () => {
    const files = readdirSync(EXAMPLES, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts'))
      .map((file) => join(EXAMPLES, file));
    assert.ok(files.length > 10, `the examples' files: ${files.length}`);
    const offending: string[] = [];
    for (const file of files) {
      const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      for (const { fileName } of importedFiles) {
        if (!fileName.startsWith('.')) continue;
        const target = resolve(dirname(file), fileName);
        if (!relative(LIB, target).startsWith('..')) {
          offending.push(`${relative(ROOT, file)}: ${fileName}`);
        }
      }
    }
    assert.deepEqual(offending, []);
  });
});
