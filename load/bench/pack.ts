// The benchmarks measure the package as users run it: the compiled dist/, not lib/ through
// tsx (esbuild's keepNames wraps every named closure in a __name() call, a cost on the hot
// path that the published package does not have). `npm run bench` builds first.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type * as PackModule from '../../lib/index.js';

type Pack = typeof PackModule;

const DIST = new URL('../../dist/index.js', import.meta.url);

export async function loadPack(): Promise<Pack> {
  if (!existsSync(fileURLToPath(DIST))) {
    throw new Error('dist/ is missing: run `npm run build` first (`npm run bench` does)');
  }
  return (await import(DIST.href)) as Pack;
}
