import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

/** Every module specifier `lib/` imports or re-exports from (static and dynamic). */
function importedPackages(): Set<string> {
  const found = new Set<string>();
  const specifier = /(?:from\s+|import\s*\(\s*|import\s+)'([^'.][^']*)'/g;
  for (const entry of readdirSync(join(ROOT, 'lib'), { recursive: true, encoding: 'utf8' })) {
    if (!entry.endsWith('.ts') || entry.endsWith('.d.ts')) continue;
    const text = readFileSync(join(ROOT, 'lib', entry), 'utf8');
    for (const match of text.matchAll(specifier)) {
      const name = match[1]!;
      if (name.startsWith('node:')) continue;
      const parts = name.split('/');
      found.add(name.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!);
    }
  }
  return found;
}

describe('package.json', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    peerDependencies: Record<string, string>;
  };

  it('installs only runtime dependencies that lib/ imports, and declares every one it imports', () => {
    const imported = importedPackages();
    const declared = new Set([
      ...Object.keys(pkg.dependencies),
      ...Object.keys(pkg.peerDependencies),
    ]);
    const unused = Object.keys(pkg.dependencies).filter((name) => !imported.has(name));
    const undeclared = [...imported].filter((name) => !declared.has(name));
    assert.deepEqual({ unused, undeclared }, { unused: [], undeclared: [] });
  });
});
