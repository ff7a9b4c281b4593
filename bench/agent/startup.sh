#!/usr/bin/env bash
# Agent start-up benchmark, on loopback:
#   - first node: process start -> cluster formed + services deployed ("agent ... running")
#   - second node: process start -> joined the first node's cluster and running
#   - RSS of a running agent
# each without and with an AppCDS archive (Java 17 dynamic archive), RUNS times,
# reporting medians. Usage: bench/agent/startup.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
jar=agent/target/ipsec-cni-agent.jar
[[ -f $jar ]] || mvn -q -B -DskipTests install
work=$(mktemp -d /tmp/ipsec-cni-bench.XXXXXX)
pids=()
pid=0
started=0
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

config() { # name port apiPort
  cat >"$work/$1.json" <<JSON
{"nodeName":"$1","underlayAddress":"127.0.0.1","services":[],
 "cluster":{"name":"bench","port":$2,"eventBusPort":$(($2+1)),"members":["127.0.0.1:36701","127.0.0.1:36711"]},
 "api":{"port":$3}}
JSON
}
config bench-a 36701 36751
config bench-b 36711 36752

now_ms() { date +%s%3N; }
# ms from the given start until the agent's log says it runs
wait_running() { # log start_ms
  local deadline=$(( $(now_ms) + 180000 ))
  until grep -q ' running$' "$1" 2>/dev/null; do
    (( $(now_ms) < deadline )) || { echo "agent did not start, log:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.02
  done
  local ts; ts=$(grep ' running$' "$1" | head -1 | cut -d' ' -f1)
  echo $(( $(date -d "$ts" +%s%3N) - $2 ))
}
start_agent() { # name cds-opts -> sets $pid and $started
  started=$(now_ms)
  # shellcheck disable=SC2086
  java $2 -XX:+UseSerialGC -Xss512k -jar "$jar" agent --config "$work/$1.json" >"$work/$1.log" 2>&1 &
  pid=$!; pids+=("$pid")
}
stop_agent() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }

# Train the AppCDS archive with a real start and clean stop of a two-node cluster.
archive="$work/agent.jsa"
start_agent bench-a "-XX:ArchiveClassesAtExit=$archive"; a=$pid; wait_running "$work/bench-a.log" "$started" >/dev/null
start_agent bench-b ""; b=$pid; wait_running "$work/bench-b.log" "$started" >/dev/null
stop_agent "$b"; stop_agent "$a"
[[ -f $archive ]] || { echo "no AppCDS archive was written" >&2; exit 1; }

for mode in plain appcds; do
  opts=""; [[ $mode == appcds ]] && opts="-XX:SharedArchiveFile=$archive -Xshare:auto"
  : >"$work/$mode.first"; : >"$work/$mode.join"; : >"$work/$mode.rss"
  for ((i = 1; i <= runs; i++)); do
    start_agent bench-a "$opts"; a=$pid
    wait_running "$work/bench-a.log" "$started" >>"$work/$mode.first"
    start_agent bench-b "$opts"; b=$pid
    wait_running "$work/bench-b.log" "$started" >>"$work/$mode.join"
    grep VmRSS "/proc/$b/status" | awk '{print int($2/1024)}' >>"$work/$mode.rss"
    stop_agent "$b"; stop_agent "$a"
  done
done

printf '%-8s %22s %22s %14s\n' mode "first node start (ms)" "second node join (ms)" "RSS (MiB)"
for mode in plain appcds; do
  printf '%-8s %22s %22s %14s\n' "$mode" "$(median <"$work/$mode.first")" "$(median <"$work/$mode.join")" \
    "$(median <"$work/$mode.rss")"
done
echo "medians of $runs runs; java: $(java -version 2>&1 | head -1); $(nproc) cores"
