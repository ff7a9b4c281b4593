#!/bin/sh
# IPAM benchmark. Usage: bench/ipam/run.sh [journal-dir] [allocations]
# journal-dir defaults to /run/ipsec-cni-bench (tmpfs, like the product default);
# pass a directory on a disk (e.g. /var/tmp/ipam-bench) to measure with real fsync cost.
set -e
cd "$(dirname "$0")/../.."
mvn -q -o -pl ipam-service -am install -DskipTests
mvn -q -o -pl ipam-service dependency:build-classpath -Dmdep.outputFile=target/ipam-bench.cp >/dev/null
mkdir -p target
CP="$(cat ipam-service/target/ipam-bench.cp 2>/dev/null || cat target/ipam-bench.cp):ipam-service/target/classes"
exec java -Xmx512m -Djava.util.logging.config.file=/dev/null -cp "$CP" bench/ipam/IpamBench.java "${1:-/run/ipsec-cni-bench}" "${2:-3000}"
