"""The python3 reference of bench/cni/spawn-bench.sh: subprocess.run, timed here.

Reads one JSON request a line ({"argv": [...], "env": {...}}) and answers each with the
nanoseconds subprocess.run took (start, stdin closed, stdout and stderr read, exit)."""
import json
import subprocess
import sys
import time

for line in sys.stdin:
    request = json.loads(line)
    began = time.perf_counter_ns()
    subprocess.run(request["argv"], env=request["env"], input=b"", capture_output=True, check=False)
    took = time.perf_counter_ns() - began
    print(took, flush=True)
