#!/usr/bin/env bash
# The main job on an embedded default: the GitLab simulator (HTTPS, its own CA) as GitLab, file
# State and a file sink. Shows mint, rotate, revoke, and ends by checking that nothing leaked.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/bootstrap.sh
source scripts/env.sh
work="$(mktemp -d "${TMPDIR:-/tmp}/gldt-demo.XXXXXX")"
sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
gldt() { printf '$ gldt %s\n' "$*"; ./gldt "$@"; }

step "starting the GitLab simulator (HTTPS with a generated CA)"
node tooling/gitlab-sim/src/main.ts --port 0 --tls --ca-out "$work/ca.pem" >"$work/sim.json" 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 1 100); do [ -s "$work/sim.json" ] && break; sleep 0.1; done
url="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).url)' "$work/sim.json")"
GITLAB_TOKEN="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).pat)' "$work/sim.json")"
export GITLAB_TOKEN
echo "simulator at $url (project 42 = group/project)"

cat >"$work/gitlab-deploy-token.yaml" <<YAML
apiVersion: generators.external-secrets.io/v1alpha1
kind: GitlabDeployToken
metadata:
  name: gitlab-deploy-token
spec:
  url: "$url"
  projectID: "group/project"
  name: "eso-managed"
  scopes:
    - read_repository
    - read_registry
  expiresAfter: "720h"
  username: "eso"
  auth:
    token:
      secretRef:
        name: gitlab-api-token
        key: token
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: gitlab-deploy-token
spec:
  refreshInterval: "1h"
  target:
    name: gitlab-deploy-token
  dataFrom:
    - sourceRef:
        generatorRef:
          apiVersion: generators.external-secrets.io/v1alpha1
          kind: GitlabDeployToken
          name: gitlab-deploy-token
YAML
flags=(-f "$work/gitlab-deploy-token.yaml" --ca-file "$work/ca.pem" --state "file:$work/state" --sink "file:$work/deploy-token.env?format=env")

step "validate the manifest (contacts nothing)"
gldt validate -f "$work/gitlab-deploy-token.yaml"
step "preflight: can this access token manage deploy tokens there?"
gldt preflight "${flags[@]}"
step "generate: mint and deliver the first token"
gldt generate "${flags[@]}"
echo "sink now holds (token masked):"; sed -E 's/(TOKEN=).*/\1••••••••/' "$work/deploy-token.env"
step "rotate with the default 15m grace: the old token stays valid meanwhile"
gldt rotate "${flags[@]}"
gldt status --state "file:$work/state"
step "rotate with --grace 0: the new token is delivered and the one it replaces is revoked at once (token 1 keeps its own grace)"
gldt rotate "${flags[@]}" --grace 0
gldt status --state "file:$work/state"
step "revoke: the consumer is gone, every token of the key is revoked"
gldt revoke "${flags[@]}"

step "final check against the simulator's own record (the ground truth)"
node -e '
const [url, ca] = process.argv.slice(1)
const https = require("https")
https.get(url + "/_sim/tokens", { ca: require("fs").readFileSync(ca) }, (res) => {
  let body = ""
  res.on("data", (c) => (body += c))
  res.on("end", () => {
    const parsed = JSON.parse(body)
    const tokens = Array.isArray(parsed) ? parsed : parsed.tokens
    const live = tokens.filter((t) => t.createdBy !== "foreign" && !t.deleted)
    console.log(`tokens minted by gldt still live in GitLab: ${live.length}`)
    process.exit(live.length === 0 ? 0 : 1)
  })
}).on("error", (e) => { console.error(e.message); process.exit(1) })
' "$url" "$work/ca.pem"
echo "demo finished: nothing leaked"
