"""Times each case `runs` times, interleaved round by round so machine noise hits all alike; prints medians."""
import argparse
import json
import os
import statistics
import subprocess
import time

p = argparse.ArgumentParser()
for a in ("--node", "--pod", "--socket", "--work", "--c-plugin", "--plugin-jar", "--jsa"):
    p.add_argument(a, required=True)
p.add_argument("--runs", type=int, default=21)
args = p.parse_args()

netns = f"/run/netns/{args.pod}"
conf = {"cniVersion": "1.0.0", "name": "ipsec-cni", "type": "ipsec-cni", "agentSocket": args.socket, "mtu": 1400}
java_plain = ["java", "-cp", args.plugin_jar, "dev.ipseccni.cni.plugin.IpsecCniPlugin"]
java_fast = ["java", f"-XX:SharedArchiveFile={args.jsa}", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
             "-Xshare:auto", "-cp", args.plugin_jar, "dev.ipseccni.cni.plugin.IpsecCniPlugin"]
c_client = [args.c_plugin]
reference_conf = {"cniVersion": "1.0.0", "name": "bench-ref", "type": "bridge", "bridge": "cni0", "isGateway": True,
                  "mtu": 1400, "ipam": {"type": "host-local", "dataDir": f"{args.work}/host-local",
                                        "ranges": [[{"subnet": "10.128.1.0/24", "rangeStart": "10.128.1.200",
                                                     "gateway": "10.128.1.1"}]]}}
counter = 0


def run(argv, env, stdin, expect=0):
    full_env = {"PATH": os.environ["PATH"], **env}
    out = subprocess.run(argv, input=json.dumps(stdin).encode(), env=full_env, capture_output=True)
    if out.returncode != expect:
        raise SystemExit(f"{argv[0]} {env.get('CNI_COMMAND')} exited {out.returncode}: {out.stdout!r} {out.stderr!r}")


def cni(command, cid):
    return {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns, "CNI_IFNAME": "eth0",
            "CNI_PATH": "/usr/lib/cni", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=p"}


def version(client):
    return lambda: run(client, {"CNI_COMMAND": "VERSION"}, {"cniVersion": "1.0.0"})


def status(client):
    return lambda: run(client, {"CNI_COMMAND": "STATUS"}, {**conf, "cniVersion": "1.1.0"})


def add_del(client):
    def once():
        global counter
        counter += 1
        cid = f"bench{counter}"
        run(client, cni("ADD", cid), conf)
        run(client, cni("DEL", cid), conf)
    return once


def curl_status():
    body = json.dumps({"env": {"CNI_COMMAND": "STATUS"}, "stdin": json.dumps({**conf, "cniVersion": "1.1.0"})})
    subprocess.run(["curl", "-sf", "--unix-socket", args.socket, "-H", "Content-Type: application/json",
                    "--data-binary", body, "http://ipsec-cni/cni"], check=True, capture_output=True)


def reference_add_del():
    global counter
    counter += 1
    cid = f"ref{counter}"
    in_node = ["ip", "netns", "exec", args.node, "/usr/lib/cni/bridge"]
    run(in_node, cni("ADD", cid), reference_conf)
    run(in_node, cni("DEL", cid), reference_conf)


cases = {
    "VERSION, C client (start-up only, no agent)": version(c_client),
    "VERSION, Java client, plain JVM": version(java_plain),
    "VERSION, Java client, AppCDS + C1 + SerialGC": version(java_fast),
    "STATUS round trip, curl --unix-socket (protocol floor)": curl_status,
    "STATUS round trip, C client": status(c_client),
    "STATUS round trip, Java client, AppCDS + C1 + SerialGC": status(java_fast),
    "ADD+DEL pod, C client -> gateway -> bridge": add_del(c_client),
    "ADD+DEL pod, Java client (AppCDS) -> gateway -> bridge": add_del(java_fast),
    "ADD+DEL pod, reference bridge + host-local (no agent)": reference_add_del,
}

for case in cases.values():  # warm-up: page cache, the gateway's JIT, the bridge's first cni0 touch
    for _ in range(3):
        case()

samples = {name: [] for name in cases}
for _ in range(args.runs):
    for name, case in cases.items():
        start = time.perf_counter()
        case()
        samples[name].append((time.perf_counter() - start) * 1000)

print(f"| case | median ms | min ms | max ms |   ({args.runs} runs each, interleaved, after 3 warm-up runs)")
print("| --- | ---: | ---: | ---: |")
for name, values in samples.items():
    print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")
