#!/usr/bin/env bash
# Tunnel benchmark on the netns lab (real charon with libipsec, real agents, real plugin):
#   join convergence   node3's agent started (charon running, its old lease expired and
#                      unloaded by the peers) -> a pod on node3 answers node1 and a pod on node1
#   charon recovery    charon on node1 SIGKILLed and started again -> pod on node1 answers
#                      a pod on node2 again (the agent is not touched)
#   datapath           RTT (ping) and TCP throughput (iperf3) pod -> pod across the tunnel
#                      and between two pods on the same node
#   reconcile cost     render + diff for 1,000 peers, CPU time (TunnelBench.java, no charon)
# Medians of RUNS runs. As root; needs iperf3 (apt-get install iperf3).
# Usage: bench/tunnel/run.sh [RUNS]      (env: LAB_PREFIX, default tb-)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
export LAB_PREFIX=${LAB_PREFIX:-tb-}
# short leases: a stopped node loses its lease in 5 s, so a restart is a real join
export LAB_AGENT_CONFIG_EXTRA='{"ipam":{"leaseRenewSeconds":1,"leaseGraceSeconds":5}}'
LAB=scripts/lab
OUT=bench/tunnel/last-run.md
trap '$LAB down >/dev/null 2>&1 || true' EXIT

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# poll until the command succeeds (deadline in seconds); never a fixed sleep
until_ok() {
  local deadline=$(($(date +%s) + $1)); shift
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || { echo "bench: timed out waiting for: $*" >&2; return 1; }
    sleep 0.05
  done
}
pings() { $LAB exec "$1" ping -c 1 -W 1 -q "$2"; }
conns_lack() { ! $LAB exec "$1" swanctl --list-conns | grep -q "^$2:"; }

mvn -q -o -pl tunnel-service -am install -DskipTests
mvn -q -o -pl tunnel-service dependency:build-classpath -Dmdep.outputFile=target/tunnel-bench.cp >/dev/null
CP="$(cat tunnel-service/target/tunnel-bench.cp):tunnel-service/target/classes"

$LAB up 3 >/dev/null
$LAB pod add 1 a1 >/dev/null
$LAB pod add 1 b1 >/dev/null
$LAB pod add 2 a2 >/dev/null
A1=$($LAB pod addr a1); B1=$($LAB pod addr b1); A2=$($LAB pod addr a2)
until_ok 120 pings pod-a1 "$A2"

# --- join convergence
join=(); agent_up=()
for ((r = 1; r <= RUNS; r++)); do
  $LAB pod del a3 >/dev/null 2>&1 || true
  $LAB stop-agent 3 >/dev/null 2>&1
  until_ok 120 conns_lack 1 peer-node3
  until_ok 120 conns_lack 2 peer-node3
  t0=$(now_ms)
  $LAB start-agent 3 >/dev/null 2>&1
  agent_up+=($(($(now_ms) - t0)))
  until_ok 120 $LAB pod add 3 a3
  A3=$($LAB pod addr a3)
  until_ok 120 pings 1 "$A3"
  until_ok 120 pings pod-a1 "$A3"
  join+=($(($(now_ms) - t0)))
done

# --- charon restart recovery
recovery=()
for ((r = 1; r <= RUNS; r++)); do
  until_ok 120 pings pod-a1 "$A2"
  pid=$($LAB pid charon 1)
  kill -KILL "$pid"
  until_ok 30 bash -c "! kill -0 $pid"
  t0=$(now_ms)
  $LAB start-charon 1 >/dev/null 2>&1
  until_ok 120 pings pod-a1 "$A2"
  recovery+=($(($(now_ms) - t0)))
done

# --- datapath
rtt() { $LAB exec pod-a1 ping -c 20 -i 0.2 -n "$1" | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | median; }
tput() {
  $LAB exec pod-a1 iperf3 -c "$1" -t 5 -J | jq '.end.sum_received.bits_per_second / 1e6 | floor'
}
$LAB exec pod-a2 iperf3 -s -D >/dev/null
$LAB exec pod-b1 iperf3 -s -D >/dev/null
until_ok 30 $LAB exec pod-a1 bash -c "exec 3<>/dev/tcp/$A2/5201"
until_ok 30 $LAB exec pod-a1 bash -c "exec 3<>/dev/tcp/$B1/5201"
rtt_tunnel=(); rtt_local=(); tp_tunnel=(); tp_local=()
for ((r = 1; r <= RUNS; r++)); do
  rtt_tunnel+=("$(rtt "$A2")"); rtt_local+=("$(rtt "$B1")")
  tp_tunnel+=("$(tput "$A2")"); tp_local+=("$(tput "$B1")")
done
leaks=$($LAB leaks)
$LAB down >/dev/null

# --- reconcile cost
reconcile=$(java -Xmx512m -Djava.util.logging.config.file=/dev/null -cp "$CP" bench/tunnel/TunnelBench.java 1000 21)

m() { printf '%s\n' "$@" | median; }
{
  echo "# Tunnel benchmark, last run ($(date -u +%F\ %H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  echo "Runs: $RUNS; medians (all runs in brackets). Lab: 3 nodes, charon 5.9 kernel-libipsec."
  echo
  echo "| measure | median | runs |"
  echo "| --- | --- | --- |"
  echo "| join: agent start -> API healthy | $(m "${agent_up[@]}") ms | ${agent_up[*]} |"
  echo "| join: agent start -> new pod answers node1 and a pod on node1 | $(m "${join[@]}") ms | ${join[*]} |"
  echo "| charon SIGKILL, start-charon -> pod traffic answered again | $(m "${recovery[@]}") ms | ${recovery[*]} |"
  echo "| RTT pod -> pod across the tunnel | $(m "${rtt_tunnel[@]}") ms | ${rtt_tunnel[*]} |"
  echo "| RTT pod -> pod, same node | $(m "${rtt_local[@]}") ms | ${rtt_local[*]} |"
  echo "| TCP (iperf3, 5 s) across the tunnel | $(m "${tp_tunnel[@]}") Mbit/s | ${tp_tunnel[*]} |"
  echo "| TCP (iperf3, 5 s) same node | $(m "${tp_local[@]}") Mbit/s | ${tp_local[*]} |"
  echo
  echo "Pod-address packets seen by the router during the run: $leaks"
  echo
  echo '```'
  echo "$reconcile"
  echo '```'
} | tee "$OUT"
