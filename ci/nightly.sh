#!/usr/bin/env bash
# The nightly job, runnable on any Linux machine with Docker:
#   ci/nightly.sh [BASELINE.json]
# kind cluster (1 control plane + 2 workers, metrics-server, ingress-nginx) -> every suite with
# SEAWORTHY_REQUIRE_CLUSTER=1 -> `seaworthy run` reports -> comparison with the baseline, if given.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_VERSION=${KIND_VERSION:-v0.24.0}
OUT=${SEAWORTHY_OUT:-artifacts/nightly}
mkdir -p "$OUT"

if ! command -v kind >/dev/null; then
  echo "== installing kind $KIND_VERSION into ~/.local/bin"
  mkdir -p ~/.local/bin
  curl -fsSLo ~/.local/bin/kind "https://kind.sigs.k8s.io/dl/$KIND_VERSION/kind-linux-amd64"
  chmod +x ~/.local/bin/kind
  export PATH="$HOME/.local/bin:$PATH"
fi

cargo build --release --locked
SW=target/release/seaworthy

echo "== cluster"
$SW up --cluster kind --name seaworthy --workers 2 ${SEAWORTHY_NODE_IMAGE:+--image "$SEAWORTHY_NODE_IMAGE"}

echo "== suites (a missing cluster or a skipped check fails)"
export SEAWORTHY_CLUSTER=kind SEAWORTHY_REQUIRE_CLUSTER=1 SEAWORTHY_ARTIFACTS="$PWD/$OUT/evidence"
status=0
cargo test --locked -- --include-ignored 2>&1 | tee "$OUT/cargo-test.log" || status=1

echo "== run reports"
$SW run --cluster kind --artifacts "$OUT/evidence" --json "$OUT/result.json" --junit "$OUT/junit.xml" --html "$OUT/report.html" || status=1

if [ $# -ge 1 ] && [ -f "$1" ]; then
  echo "== compare with baseline $1"
  $SW report compare "$1" "$OUT/result.json" | tee "$OUT/compare.txt" || status=1
fi

$SW down --runs --cluster existing --context kind-seaworthy || true
exit $status
