#!/usr/bin/env bash
# The nightly job, runnable on any Linux machine with Docker:
#   ci/nightly.sh [BASELINE.json]
# kind cluster (1 control plane + 2 workers, metrics-server, ingress-nginx) -> the tests that need
# no cluster -> every check and negative control once, with `seaworthy run` (the reports, the
# JUnit file and tomorrow's baseline) -> comparison with the baseline, if given.
#
# The checks run once: the suites' cluster cases (`cargo test` with a cluster) run the very same
# checks on the very same stacks, so running both would double the job for no new finding.
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

export SEAWORTHY_CLUSTER=kind SEAWORTHY_REQUIRE_CLUSTER=1
status=0

echo "== tests without a cluster (unit tests, fixture lint, local proofs, load generator, reports)"
# The suites' cluster cases are compiled in (a cluster is configured) and filtered out by name:
# `seaworthy run` below runs those checks.
cargo test --locked -- --skip on_cluster::passes --skip on_cluster::catches_its_negative_control 2>&1 | tee "$OUT/cargo-test.log" || status=1

echo "== every check and negative control on the cluster (a skipped check fails the run)"
$SW run --cluster kind --artifacts "$OUT/evidence" --json "$OUT/result.json" --junit "$OUT/junit.xml" --html "$OUT/report.html" || status=1

if [ $# -ge 1 ] && [ -f "$1" ]; then
  echo "== compare with baseline $1"
  $SW report compare "$1" "$OUT/result.json" | tee "$OUT/compare.txt" || status=1
fi

# Every run of this job has ended here: whatever is left, however young, is a leftover.
$SW down --runs --older-than 0s --cluster existing --context kind-seaworthy || true
exit $status
