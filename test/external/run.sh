#!/usr/bin/env bash
# Tests what users install: packs the tarball, installs it with express into fresh ESM,
# CommonJS and TypeScript consumer apps, and runs each one (test/external/consumers/).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$root"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "packed $tarball ($(du -h "$work/$tarball" | cut -f1))"
tar -tzf "$work/$tarball" >"$work/contents.txt"
grep -q 'package/dist/index.js' "$work/contents.txt"
grep -q 'package/dist/index.d.ts' "$work/contents.txt"
grep -q 'package/dist/cli.js' "$work/contents.txt"
grep -q 'package/bin/express-resilience.js' "$work/contents.txt"
if grep -qE 'package/(test|lib|load)/' "$work/contents.txt"; then
  echo "tarball ships sources or tests it should not" >&2
  exit 1
fi

# Source maps must resolve from the installed package: lib/ is not shipped, so every map carries
# its sources inline (and no declaration map points at a .ts file that is not there).
tar -xzf "$work/$tarball" -C "$work"
node -e '
const { readdirSync, readFileSync } = require("node:fs");
const { join } = require("node:path");
const bad = [];
for (const entry of readdirSync(process.argv[1], { recursive: true })) {
  if (!entry.endsWith(".map")) continue;
  const map = JSON.parse(readFileSync(join(process.argv[1], entry), "utf8"));
  const inlined = Array.isArray(map.sourcesContent) && map.sourcesContent.length === map.sources.length && map.sourcesContent.every((s) => typeof s === "string");
  if (!inlined) bad.push(entry);
}
if (bad.length > 0) { console.error("source maps without their sources: " + bad.join(", ")); process.exit(1); }
' "$work/package/dist"

for kind in esm cjs ts; do
  app="$work/$kind-app"
  mkdir -p "$app"
  cp -r "$root/test/external/consumers/$kind/." "$app/"
  (
    cd "$app"
    npm install --no-audit --no-fund --loglevel=error "$work/$tarball" express@^5 >/dev/null
    if [ "$kind" = ts ]; then
      npm install --no-audit --no-fund --loglevel=error "typescript@$(node -p "require('$root/node_modules/typescript/package.json').version")" @types/express@^5 @types/node@^20 >/dev/null
      npx tsc -p tsconfig.json
      node dist/main.js
    else
      node main.*
    fi
    if [ "$kind" = esm ]; then
      # The bin as users run it: the launcher must find dist/cli.js (no lib/, no tsx here), and
      # the starter config init writes must validate.
      npx --no-install express-resilience config init >/dev/null
      npx --no-install express-resilience config validate --env production
      if npx --no-install express-resilience config init 2>/dev/null; then
        echo "config init overwrote config/default.yaml without --force" >&2
        exit 1
      fi
    fi
  )
  echo "$kind consumer: ok"
done
echo "packaging: ok"
