#!/usr/bin/env node
// The package bin. It is a plain JavaScript launcher rather than dist/cli.js itself because
// `npx express-resilience` inside this repository runs the repository's own bin, and dist/ only
// exists after `npm run build`: pointing `bin` at dist/cli.js made the command the README gives
// fail there (exit 127, as npm could not link a missing file). A `prepare` script that builds
// would fix that too, but would run tsc on every `npm install`/`npm ci` of the repository.
//
// - In a checkout (lib/ is present; it is not in the published package, see package.json
//   "files") it runs lib/cli.ts through tsx, a devDependency, so the command always reflects
//   the sources, never a stale build.
// - Otherwise (the installed package, or a checkout installed without devDependencies) it runs
//   the compiled dist/cli.js; the published package never needs tsx.
import { existsSync } from 'node:fs';

const source = new URL('../lib/cli.ts', import.meta.url);
const compiled = new URL('../dist/cli.js', import.meta.url);

/** tsx's register(), or undefined when tsx is not installed (a production install). */
async function tsxRegister() {
  try {
    return (await import('tsx/esm/api')).register;
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

const register = existsSync(source) ? await tsxRegister() : undefined;
if (register !== undefined) {
  register();
  await import(source.href);
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write(
    existsSync(source)
      ? 'express-resilience: dist/cli.js is missing and tsx is not installed: run `npm install` (for tsx) or `npm run build`\n'
      : 'express-resilience: dist/cli.js is missing: reinstall the package\n',
  );
  process.exitCode = 1;
}
