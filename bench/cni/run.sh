#!/usr/bin/env bash
# Plugin binary start-up and round trip, measured in one run so the numbers compare:
# the C client, the Java client (plain, and AppCDS + C1 + SerialGC), curl as the floor of
# the protocol, and the reference bridge + host-local plugins doing a whole ADD+DEL.
# Needs root (network namespaces), gcc, the reference plugins in /usr/lib/cni, python3.
# Usage: bench/cni/run.sh [runs]      (default 21; writes bench/cni/results.md)
#   GATEWAY_JAVA_OPTS=...              JVM options of the gateway process (e.g. its process launch mechanism)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${1:-21}
node=cg-bench-node
pod=cg-bench-pod
work=$(mktemp -d /tmp/cg-bench.XXXXXX)
gateway_pid=

cleanup() {
  if [ -n "$gateway_pid" ]; then kill "$gateway_pid" 2>/dev/null || true; wait "$gateway_pid" 2>/dev/null || true; fi
  exec 3>&- || true
  for ns in $(ip netns list | awk '{print $1}' | grep '^cg-bench-' || true); do ip netns delete "$ns"; done
  rm -rf "$work"
}
trap cleanup EXIT
# whatever a crashed earlier run left, by name
for ns in $(ip netns list | awk '{print $1}' | grep '^cg-bench-' || true); do ip netns delete "$ns"; done

cd "$repo"
mvn -q -o -pl cni-gateway -am install -DskipTests
mvn -q -o -pl cni-gateway test-compile dependency:build-classpath -Dmdep.outputFile="$work/cp.txt" -Dmdep.includeScope=test
plugin_jar=$(ls cni-gateway/target/cni-gateway-*-plugin.jar)
c_plugin=cni-gateway/target/ipsec-cni

ip netns add "$node"
ip netns add "$pod"
ip -n "$node" link set lo up
ip -n "$pod" link set lo up

socket="$work/run/cni.sock"
# The gateway serves until its stdin closes: a fifo this script holds open (fd 3) until it exits.
mkfifo "$work/gateway.in"
exec 3<>"$work/gateway.in"
java ${GATEWAY_JAVA_OPTS:-} -cp "cni-gateway/target/classes:cni-gateway/target/test-classes:$(cat "$work/cp.txt")" \
  dev.ipseccni.cni.BenchGateway "$node" "$socket" < "$work/gateway.in" > "$work/gateway.out" 2> "$work/gateway.err" &
gateway_pid=$!
for _ in $(seq 1 600); do
  grep -q ready "$work/gateway.out" 2>/dev/null && break
  kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/gateway.err"; exit 1; }
  sleep 0.1
done
grep -q ready "$work/gateway.out"

# The AppCDS archive of the Java client, trained on a real call.
echo "{\"cniVersion\":\"1.1.0\",\"name\":\"ipsec-cni\",\"agentSocket\":\"$socket\"}" \
  | CNI_COMMAND=STATUS java -XX:ArchiveClassesAtExit="$work/plugin.jsa" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
      -cp "$plugin_jar" dev.ipseccni.cni.plugin.IpsecCniPlugin > /dev/null 2>&1

python3 "$here/measure.py" --runs "$runs" --node "$node" --pod "$pod" --socket "$socket" --work "$work" \
  --c-plugin "$c_plugin" --plugin-jar "$plugin_jar" --jsa "$work/plugin.jsa" | tee "$here/results.md"
