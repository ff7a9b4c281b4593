#!/bin/sh
# Drift-repair benchmark of the firewall service: real iptables inside a namespace (fw-bench).
# Needs root. Writes bench/firewall/last-run.md; REPORT.md quotes a run of it.
set -e
cd "$(dirname "$0")/../.."
mvn -q -o -pl firewall-service -am install -DskipTests
mvn -o -pl firewall-service test -Dtest=DriftRepairBenchmark -Dfirewall.bench=true \
  -Dfirewall.bench.runs="${RUNS:-7}" -Dfirewall.bench.out="$PWD/bench/firewall/last-run.md" -Dsurefire.failIfNoSpecifiedTests=false
cat bench/firewall/last-run.md
