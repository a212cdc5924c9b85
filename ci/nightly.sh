#!/usr/bin/env bash
# The nightly job, runnable on any Linux machine with Docker:
#   ci/nightly.sh [BASELINE.json]
# kind cluster (1 control plane + 2 workers, metrics-server, ingress-nginx) -> `cargo test` with
# SEAWORTHY_REQUIRE_CLUSTER=1: every suite, each check and negative control of every stack a
# cluster case -> one run report of those cases (`seaworthy report merge`: JSON, JUnit, HTML, and
# tomorrow's baseline) -> comparison with the baseline, if given -> a smoke run of `seaworthy run`.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_VERSION=${KIND_VERSION:-v0.24.0}
# Absolute: the test binaries read it from their own working directory.
OUT=$(mkdir -p "${SEAWORTHY_OUT:-artifacts/nightly}" && cd "${SEAWORTHY_OUT:-artifacts/nightly}" && pwd)

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

export SEAWORTHY_CLUSTER=kind SEAWORTHY_REQUIRE_CLUSTER=1
export SEAWORTHY_RESULTS="$OUT/results" SEAWORTHY_ARTIFACTS="$OUT/evidence"
# Results of an earlier night in the same folder would pass for tonight's.
rm -rf "$SEAWORTHY_RESULTS"
status=0

echo "== cargo test: every suite, the cluster cases included (a skip is a failure)"
cargo test --locked --no-fail-fast 2>&1 | tee "$OUT/cargo-test.log" || status=1

echo "== one run report of the cluster cases (a check whose case did not run is reported skipped)"
$SW report merge "$SEAWORTHY_RESULTS" --json "$OUT/result.json" --junit "$OUT/junit.xml" --html "$OUT/report.html" || status=1

if [ $# -ge 1 ] && [ -f "$1" ]; then
  echo "== compare with baseline $1"
  $SW report compare "$1" "$OUT/result.json" | tee "$OUT/compare.txt" || status=1
fi

echo "== seaworthy run, end to end on one check (the command users run; its report is not the baseline)"
mkdir -p "$OUT/smoke"
$SW run phpdemo --check config-override --cluster existing --context kind-seaworthy --artifacts "$OUT/smoke" --json "$OUT/smoke/result.json" || status=1

# Every run of this job has ended here: whatever is left, however young, is a leftover.
$SW down --runs --older-than 0s --cluster existing --context kind-seaworthy || true
exit $status
