#!/usr/bin/env bash
# Per-exec latency of the gateway's ways to run a command: ProcessBuilder from the JVM,
# the resident ipsec-cni-spawner, and python3's subprocess.run as a reference, for
# /bin/true and for the reference bridge plugin's VERSION, interleaved round by round.
# Needs gcc, python3, the reference plugins in /usr/lib/cni. No root, no namespaces.
# Usage: bench/cni/spawn-bench.sh [runs]     (default 300; prints a markdown table)
#   BENCH_JAVA_OPTS=...   JVM options (default: the agent launcher's, bin/ipsec-cni)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${1:-300}
work=$(mktemp -d /tmp/spawn-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

cd "$repo"
mvn -q -o -pl cni-gateway -am install -DskipTests
mvn -q -o -pl cni-gateway test-compile dependency:build-classpath -Dmdep.outputFile="$work/cp.txt" -Dmdep.includeScope=test
# shellcheck disable=SC2086
java ${BENCH_JAVA_OPTS:--XX:+UseSerialGC -Xss512k} \
  -cp "cni-gateway/target/classes:cni-gateway/target/test-classes:$(cat "$work/cp.txt")" \
  dev.ipseccni.cni.SpawnBench "$runs" "$here/spawn_reference.py" "$work" /usr/lib/cni/bridge
