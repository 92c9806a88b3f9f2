#!/usr/bin/env bash
# Regenerate the kube tools module (go.mod + go.sum) for one Kubernetes version.
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
# ./staging/src paths, which only work inside that repository; a dependent module
# must replace each one with its published v0.<minor>.<patch> version.
# Usage: ./regen.sh v1.37.2
set -euo pipefail
K8S_VERSION="${1:?usage: regen.sh vX.Y.Z}"
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
cd "$(dirname "$0")"
rm -f go.mod go.sum
go mod init gldt.invalid/tooling/testenv/go/kube
go mod edit -go=1.26.0
gomod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*#\1#p' "$gomod"); do
  go mod edit "-replace=${m}=${m}@${STAGING_VERSION}"
done
for cmd in kube-apiserver kube-controller-manager kubectl; do
  go get -tool "k8s.io/kubernetes/cmd/${cmd}@${K8S_VERSION}"
done
go mod tidy
