#!/usr/bin/env bash
# The whole check: set-up, lint, typecheck, every test suite (unit, simulator conformance,
# lifecycle fault suite, CLI end to end, Kubernetes integration on a real apiserver).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/bootstrap.sh
source scripts/env.sh
echo "== lint"; biome check .
echo "== typecheck"; tsc -b
echo "== test binaries (etcd, kube-apiserver, kube-controller-manager, kubectl, vault; cached by version)"
node tooling/testenv/src/cli.ts build
echo "== tests"; vitest run "$@"
