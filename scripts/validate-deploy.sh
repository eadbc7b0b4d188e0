#!/usr/bin/env bash
# Validates deploy/ with the real tools, offline:
# - the Kubernetes manifests against Kubernetes' OpenAPI schemas, strictly (unknown fields are
#   errors), for the oldest Kubernetes version deploy/README.md supports and the newest the
#   validator knows (PyPI kubernetes-validate, which ships the schemas, in .tools/venv);
# - the Prometheus alert rules with promtool (Debian package `prometheus`): PromQL syntax and
#   rule structure (`check rules`), and the rules' unit tests (`test rules`).
# `scripts/bootstrap.sh`'s ensure_deploy_validators installs both. Exit codes: 0 valid, 1 not
# valid, 78 a validator is missing (crates/orderflow/tests/e2e/deploy.rs skips then, except in CI).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OLDEST_KUBERNETES="1.29"

VALIDATOR="${KUBERNETES_VALIDATE:-$ROOT/.tools/venv/bin/kubernetes-validate}"
PROMTOOL="${PROMTOOL:-$(command -v promtool || true)}"
missing=()
[ -x "$VALIDATOR" ] || missing+=("kubernetes-validate (pip install into .tools/venv)")
[ -n "$PROMTOOL" ] && [ -x "$PROMTOOL" ] || missing+=("promtool (apt-get install prometheus)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "not installed: ${missing[*]}; run: bash -c 'source scripts/bootstrap.sh; ensure_deploy_validators'" >&2
  exit 78
fi

shopt -s nullglob
manifests=(deploy/kubernetes/*.yaml)
[ ${#manifests[@]} -gt 0 ] || { echo "no manifests in deploy/kubernetes" >&2; exit 1; }
for version in "$OLDEST_KUBERNETES" ""; do
  "$VALIDATOR" --strict --quiet ${version:+--kubernetes-version "$version"} "${manifests[@]}"
done
echo "deploy/kubernetes: ${#manifests[@]} files valid for Kubernetes $OLDEST_KUBERNETES and $("$VALIDATOR" --help | sed -n 's/.*Defaults to \([0-9.]*\).*/\1/p')"

"$PROMTOOL" check rules deploy/prometheus/alerts.yaml
"$PROMTOOL" test rules deploy/prometheus/alerts.test.yaml
