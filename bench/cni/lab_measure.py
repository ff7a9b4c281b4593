"""ADD and DEL through the real agent of a lab node against the reference bridge + host-local,
on the same node, in the same run.

This process joins the node's network namespace (setns), so every plugin is exec'd exactly
as a runtime on that node would exec it: no `ip netns exec` in the timed path. Timed:
fork+exec of the plugin until it exits with its result (as libcni sees it).

Part 1, sequential: per round one pod of ours and one reference pod, ADD then DEL each,
order alternating round by round, so machine load hits both alike. Median and p99.
Part 2, concurrent: N ADDs started at once on the node (ours), then N on the reference,
then the DELs; all must succeed with N distinct addresses. Pods per second = N / wall time.
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

p = argparse.ArgumentParser()
p.add_argument("--node-ns", required=True)       # e.g. cx-node1
p.add_argument("--pod-prefix", required=True)    # pod namespaces are PREFIX0, PREFIX1, …
p.add_argument("--conflist", required=True)      # the conflist the node's agent wrote
p.add_argument("--plugin", required=True)        # our plugin binary
p.add_argument("--work", required=True)
p.add_argument("--pods", type=int, default=100)
p.add_argument("--concurrent", type=int, default=110)
p.add_argument("--metrics-url", default="")      # the node agent's /metrics: the gateway's own time per command
args = p.parse_args()

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(f"/run/netns/{args.node_ns}", os.O_RDONLY)
if libc.setns(fd, CLONE_NEWNET) != 0:
    raise SystemExit(f"setns into {args.node_ns}: errno {ctypes.get_errno()}")
os.close(fd)

conflist = json.load(open(args.conflist))
ours_conf = {**conflist["plugins"][0], "cniVersion": conflist["cniVersion"], "name": conflist["name"]}
ours_path = f"{os.path.dirname(os.path.abspath(args.plugin))}:/usr/lib/cni"
ref_conf = {"cniVersion": "1.0.0", "name": "bench-ref", "type": "bridge", "bridge": "refbr0", "isGateway": True,
            "mtu": 1400, "ipam": {"type": "host-local", "dataDir": f"{args.work}/host-local",
                                  "ranges": [[{"subnet": "10.99.0.0/24", "gateway": "10.99.0.1"}]]}}
ours = ([args.plugin], ours_conf, ours_path)
reference = (["/usr/lib/cni/bridge"], ref_conf, "/usr/lib/cni")


def call(plugin, command, cid, netns):
    argv, conf, path = plugin
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
           "CNI_IFNAME": "eth0", "CNI_PATH": path,
           "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={cid}"}
    start = time.perf_counter()
    out = subprocess.run(argv, input=json.dumps(conf).encode(), env=env, capture_output=True)
    elapsed = (time.perf_counter() - start) * 1000
    if out.returncode != 0:
        raise SystemExit(f"{argv[0]} {command} {cid} exited {out.returncode}: {out.stdout!r} {out.stderr!r}")
    address = json.loads(out.stdout)["ips"][0]["address"] if command == "ADD" else None
    return elapsed, address


def netns(i):
    return f"/run/netns/{args.pod_prefix}{i}"


def p99(values):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(0.99 * len(s))) - 1))]


def row(name, values):
    return f"| {name} | {len(values)} | {statistics.median(values):.1f} | {p99(values):.1f} | {max(values):.1f} |"


# ---- part 1: sequential, interleaved
times = {("ours", "ADD"): [], ("ours", "DEL"): [], ("ref", "ADD"): [], ("ref", "DEL"): []}
warmup = 3
for i in range(warmup + args.pods):
    order = [("ours", ours, 0), ("ref", reference, 1)]
    if i % 2:
        order.reverse()
    for name, plugin, slot in order:
        ns = netns(slot)
        cid = f"seq{name}{i}"
        t_add, _ = call(plugin, "ADD", cid, ns)
        t_del, _ = call(plugin, "DEL", cid, ns)
        if i >= warmup:
            times[(name, "ADD")].append(t_add)
            times[(name, "DEL")].append(t_del)

print(f"## ADD and DEL through a lab node's agent vs the reference plugins ({args.pods} pods each, interleaved)\n")
print("| case | pods | median ms | p99 ms | max ms |")
print("| --- | ---: | ---: | ---: | ---: |")
for (name, cmd), label in [(("ours", "ADD"), "ADD, ipsec-cni → agent (IPAM journal, bridge)"),
                           (("ref", "ADD"), "ADD, reference bridge + host-local"),
                           (("ours", "DEL"), "DEL, ipsec-cni → agent"),
                           (("ref", "DEL"), "DEL, reference bridge + host-local")]:
    print(row(label, times[(name, cmd)]))
for cmd in ("ADD", "DEL"):
    o, r = times[("ours", cmd)], times[("ref", cmd)]
    print(f"\n{cmd} ratio ours / reference: median {statistics.median(o) / statistics.median(r):.2f}, "
          f"p99 {p99(o) / p99(r):.2f}", end="")
print("\n")

if args.metrics_url:
    # The gateway's own latency histogram (agent side, socket in -> answer out), over the sequential
    # part so far (warm-up included): what our side costs beyond the agent is the client and the socket.
    import re
    import urllib.request
    text = urllib.request.urlopen(args.metrics_url, timeout=10).read().decode()
    agent = {}
    for cmd in ("ADD", "DEL"):
        sums = [float(m.group(1)) for m in re.finditer(
            r'ipsec_cni_command_seconds_sum\{code="0",command="%s"[^}]*\} ([0-9.eE+-]+)' % cmd, text)]
        counts = [float(m.group(1)) for m in re.finditer(
            r'ipsec_cni_command_seconds_count\{code="0",command="%s"[^}]*\} ([0-9.eE+-]+)' % cmd, text)]
        if sums and counts and counts[0] > 0:
            agent[cmd] = 1000 * sums[0] / counts[0]
    if agent:
        print("Inside the agent (its own histogram, mean of the sequential calls): "
              + ", ".join(f"{cmd} {ms:.1f} ms" for cmd, ms in agent.items()) + "\n")


# ---- part 2: concurrent ADDs on one node
def burst(name, plugin, first_ns, command):
    n = args.concurrent
    with ThreadPoolExecutor(max_workers=n) as pool:
        start = time.perf_counter()
        results = list(pool.map(lambda k: call(plugin, command, f"burst{name}{k}", netns(first_ns + k)), range(n)))
        wall = time.perf_counter() - start
    return wall, results


print(f"## {args.concurrent} concurrent ADDs (then DELs) on one node\n")
print("| case | pods | all succeeded | distinct addresses | wall s | pods/s | median ms | p99 ms |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
rates = {}
for name, plugin, first_ns in [("ours", ours, 2), ("ref", reference, 2 + args.concurrent)]:
    for command in ("ADD", "DEL"):
        wall, results = burst(name, plugin, first_ns, command)
        lat = [t for t, _ in results]
        distinct = len({a for _, a in results}) if command == "ADD" else "-"
        if command == "ADD" and distinct != args.concurrent:
            raise SystemExit(f"{name}: {distinct} distinct addresses for {args.concurrent} pods")
        rates[(name, command)] = args.concurrent / wall
        label = "ipsec-cni → agent" if name == "ours" else "reference bridge + host-local"
        print(f"| {command}, {label} | {args.concurrent} | yes | {distinct} | {wall:.2f} | "
              f"{rates[(name, command)]:.1f} | {statistics.median(lat):.0f} | {p99(lat):.0f} |")
print(f"\npods/s ratio ours / reference: ADD {rates[('ours', 'ADD')] / rates[('ref', 'ADD')]:.2f}, "
      f"DEL {rates[('ours', 'DEL')] / rates[('ref', 'DEL')]:.2f}")
