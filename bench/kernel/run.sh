#!/usr/bin/env bash
# Pod -> remote pod throughput and RTT on two User-Mode Linux nodes (scripts/lab up 2 --kernel),
# for three datapaths on the same kernels and links:
#   kernel   charon kernel-netlink, ESP in the guest kernel's XFRM (AES-256-GCM-16, raw ESP)
#   libipsec charon kernel-libipsec in the guests (userspace ESP in UDP over a TUN device)
#   plain    no IPsec: the same pods routed between the nodes (charons stopped, our chains
#            flushed, a route per block), the floor both are compared with
# Throughput: a 64 MiB download (curl) from busybox httpd in the remote pod, median of RUNS;
# RTT: ping -c 50 -i 0.2, average. UML's absolute numbers are not a real node's (one
# virtual CPU per guest, a userspace kernel, a loaded host): read the ratios.
# Usage (root): bench/kernel/run.sh [RUNS]   (default 5); writes bench/kernel/last-run.md
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
export LAB_PREFIX=${LAB_PREFIX:-bk-}
lab=scripts/lab
size=$((64 * 1024 * 1024))
out=bench/kernel/last-run.md
trap '$lab down >/dev/null 2>&1 || true' EXIT

measure() { # datapath -> "mbit rtt_ms runs…": the median of RUNS downloads, then each run
  local i bps all=()
  for ((i = 1; i <= runs; i++)); do
    bps=$($lab exec pod-bench1 curl -s -o /dev/null -m 600 -w '%{speed_download}' "http://$server:8080/big.bin")
    all+=($((${bps%.*} * 8 / 1000000)))
  done
  local sorted
  sorted=$(printf '%s\n' "${all[@]}" | sort -n | tr '\n' ' ')
  read -ra sorted <<<"$sorted"
  rtt=$($lab exec pod-bench1 ping -n -q -c 50 -i 0.2 "$server" | awk -F/ '/^rtt/ { print $5 }')
  echo "${sorted[$((runs / 2))]} $rtt ${all[*]}"
}

pods() {
  $lab pod add 1 bench1 >/dev/null
  $lab pod add 2 bench2 >/dev/null
  server=$($lab pod addr bench2)
  # served from the guest's tmpfs: reading it through hostfs would measure hostfs
  $lab exec 2 sh -c "mkdir -p /tmp/www && head -c $size /dev/zero >/tmp/www/big.bin"
  $lab exec pod-bench2 busybox httpd -p 8080 -h /tmp/www
  local deadline=$((SECONDS + 300))
  until $lab exec pod-bench1 ping -c 1 -W 2 -q "$server" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "no tunnel between the pods" >&2; exit 1; }
  done
}

declare -A mbit rtt each
for datapath in kernel libipsec; do
  LAB_KERNEL_DATAPATH=$datapath $lab up 2 --kernel
  pods
  read -r "mbit[$datapath]" "rtt[$datapath]" "each[$datapath]" < <(measure)
  echo "$datapath: ${mbit[$datapath]} Mbit/s, RTT ${rtt[$datapath]} ms" >&2
  if [[ $datapath == kernel ]]; then
    # the same lab without IPsec: agents and charons stopped (charon removes its SAs and
    # policies), our chains emptied, each node routes the other's block via its address
    for i in 1 2; do
      $lab stop-agent "$i"
      $lab stop-charon "$i"
      $lab exec "$i" sh -c 'iptables -F IPSEC-CNI-FWD; iptables -F IPSEC-CNI-OUT'
    done
    $lab exec 1 ip route add 10.128.2.0/24 via "$($lab addr 2)"
    $lab exec 2 ip route add 10.128.1.0/24 via "$($lab addr 1)"
    read -r "mbit[plain]" "rtt[plain]" "each[plain]" < <(measure)
    echo "plain: ${mbit[plain]} Mbit/s, RTT ${rtt[plain]} ms" >&2
  fi
done
$lab down

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
{
  echo "| datapath | throughput, Mbit/s: median (runs) | vs plain | RTT (ms) | vs plain |"
  echo "| --- | --- | --- | --- | --- |"
  for d in plain kernel libipsec; do
    echo "| $d | ${mbit[$d]} (${each[$d]}) | $(ratio "${mbit[$d]}" "${mbit[plain]}") | ${rtt[$d]} | $(ratio "${rtt[$d]}" "${rtt[plain]}") |"
  done
  echo
  echo "kernel ESP vs libipsec: $(ratio "${mbit[kernel]}" "${mbit[libipsec]}")x the throughput," \
    "$(ratio "${rtt[libipsec]}" "${rtt[kernel]}")x lower RTT. medians of $runs downloads of 64 MiB each, 50 pings;" \
    "$(date -u +%F), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)."
} | tee "$out"
