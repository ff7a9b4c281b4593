#!/usr/bin/env bash
# ADD/DEL latency and a concurrent burst through the REAL agent of a netns-lab node (real
# IPAM with its journal, tunnel and firewall services running), side by side with the
# reference bridge + host-local plugins on the same node, in one run.
# Needs root, a built tree (mvn -q -o install -DskipTests), python3, /usr/lib/cni.
# Usage: bench/cni/lab-run.sh [pods] [concurrent]   (default 100, 110; writes bench/cni/lab-results.md)
#   LAB_PREFIX (default bench-): the lab's namespace prefix; the lab is torn down at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
pods=${1:-100}
concurrent=${2:-110}
export LAB_PREFIX=${LAB_PREFIX:-bench-}
lab=$repo/scripts/lab
total=$((2 + 2 * concurrent))

cleanup() {
  for ((k = 0; k < total; k++)); do ip netns del "${LAB_PREFIX}bpod$k" 2>/dev/null || true; done
  "$lab" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$lab" up 1 >&2
conf_dir=$("$lab" dir 1)/cni/net.d
for _ in $(seq 1 600); do ls "$conf_dir"/*.conflist >/dev/null 2>&1 && break; sleep 0.2; done
conflist=$(ls "$conf_dir"/*.conflist | head -1)
work=$("$lab" dir)/bench
mkdir -p "$work"
# Pod namespaces exist before the clock starts, as a runtime's sandboxes do.
for ((k = 0; k < total; k++)); do ip netns add "${LAB_PREFIX}bpod$k"; done

{
  echo "# lab bench, $(date -u +%F) — load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  python3 "$here/lab_measure.py" --node-ns "${LAB_PREFIX}node1" --pod-prefix "${LAB_PREFIX}bpod" \
    --conflist "$conflist" --plugin "$repo/cni-gateway/target/ipsec-cni" --work "$work" \
    --pods "$pods" --concurrent "$concurrent" --metrics-url "http://$("$lab" addr 1):9750/metrics"
  echo
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$here/lab-results.md"
