#!/usr/bin/env python3
"""The measurements of scripts/bench-files.sh (which starts the devnet).

    bench_files.py BIN DIR BASE_RPC SIZE_MIB PID0 PID1 single
    bench_files.py BIN DIR BASE_RPC SIZE_MIB PID0 PID1 capped CAP_MIB

single: node 0 publishes SIZE_MIB MiB, node 1 fetches it (one holder);
prints throughput, CPU per GB and node 0's block times idle and serving.
capped: node 0 publishes, nodes 1, 2, 3 fetch in turn (one, two, three
holders); prints each fetch's time and speed-up."""
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

BIN, DIR, BASE_RPC, SIZE_MIB = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
PIDS = [int(sys.argv[5]), int(sys.argv[6])]
MODE = sys.argv[7]
CAP_MIB = int(sys.argv[8]) if len(sys.argv) > 8 else 0
ADMIN = os.path.join(DIR, "net", "admin_key.json")
MIB = 1 << 20
TICK = os.sysconf("SC_CLK_TCK")


def url(node):
    return f"http://127.0.0.1:{BASE_RPC + node}"


def rpc(node, method, params):
    req = urllib.request.Request(
        url(node),
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        answer = json.load(r)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def height(node):
    try:
        return rpc(node, "chain_getHeight", [])
    except Exception:  # noqa: BLE001 - a node still starting
        return None


def wait_all_advance(nodes, timeout=60):
    deadline = time.time() + timeout
    start = {n: height(n) for n in nodes}
    while time.time() < deadline:
        now = {n: height(n) for n in nodes}
        if all(now[n] is not None and (start[n] is None or now[n] >= start[n] + 2) for n in nodes):
            return
        time.sleep(0.2)
    sys.exit(f"the nodes did not all commit blocks within {timeout} s")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def random_file(name, mib):
    path = os.path.join(DIR, name)
    with open(path, "wb") as f:
        for _ in range(mib // 4):
            f.write(os.urandom(4 * MIB))
        f.write(os.urandom((mib % 4) * MIB))
    return path


def cli(node, *args):
    out = subprocess.run(
        [BIN, "file", *args, "--rpc", url(node)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def publish(node, path):
    t = time.time()
    root = json.loads(cli(node, "add", path, "--key-file", ADMIN, "--output", "json"))["root"]
    return root, time.time() - t


def fetch(node, root, save=False):
    """Fetches onto `node` (timed by the node); with `save`, also copies it
    out over HTTP (timed by the CLI)."""
    out = os.path.join(DIR, f"got-{node}-{root[2:10]}.bin")
    args = ["--output", out] if save else []
    r = json.loads(cli(node, "get", root, "--key-file", ADMIN, *args, "--json"))
    if save:
        os.remove(out)
    return r["fetchSeconds"], r.get("saveSeconds")


def block_times(node, first, last):
    """Intervals (ms) between the headers' times of blocks first..last."""
    times = []
    for h in range(first, last + 1):
        b = rpc(node, "chain_getBlock", [h])
        times.append(b["block"]["header"]["time"])
    return [b - a for a, b in zip(times, times[1:])]


def describe(intervals):
    if not intervals:
        return "n/a", "n/a", "n/a"
    q = sorted(intervals)
    p95 = q[min(len(q) - 1, int(len(q) * 0.95))]
    return f"{statistics.mean(q):.0f}", f"{p95:.0f}", f"{q[-1]:.0f}"


def single():
    wait_all_advance(range(4))
    path = random_file("single.bin", SIZE_MIB)
    root, publish_s = publish(0, path)
    size = SIZE_MIB * MIB
    # The same span idle first, for the block times.
    h_idle = height(0)
    time.sleep(5)
    h_start = height(0)
    cpu0, cpu1 = cpu_seconds(PIDS[0]), cpu_seconds(PIDS[1])
    fetch_s, _ = fetch(1, root)
    d0, d1 = cpu_seconds(PIDS[0]) - cpu0, cpu_seconds(PIDS[1]) - cpu1
    h_end = height(0)
    # The copy out, from node 0 (which holds it), apart from the fetch.
    _, save_s = fetch(0, root, save=True)
    idle = block_times(0, h_idle, h_start)
    serving = block_times(0, h_start, h_end)
    gb = size / 1e9
    print(f"### One holder, {SIZE_MIB} MiB, uploads unlimited\n")
    print(f"- publish (hash, record on chain, upload to node 0): {publish_s:.2f} s")
    print(
        f"- fetch by node 1 from node 0: {fetch_s:.2f} s, **{size / 1e6 / fetch_s:,.0f} MB/s** "
        f"({size / MIB / fetch_s:,.0f} MiB/s; every piece verified and synced to disk; "
        f"timed by node 1)"
    )
    print(f"- copy out over HTTP (`GET /files/`, re-hashed by the CLI): {save_s:.2f} s")
    print(
        f"- CPU per GB moved (whole processes, consensus included): sender (node 0) "
        f"{d0 / gb:.2f} s, receiver (node 1) {d1 / gb:.2f} s"
    )
    print("\n| node 0 block interval (ms) | mean | p95 | max | blocks |")
    print("|---|---|---|---|---|")
    print("| idle, 5 s before | {} | {} | {} | {} |".format(*describe(idle), len(idle)))
    print("| while serving | {} | {} | {} | {} |".format(*describe(serving), len(serving)))
    print()


def capped():
    wait_all_advance(range(4))
    path = random_file("capped.bin", SIZE_MIB)
    root, _ = publish(0, path)
    size = SIZE_MIB * MIB
    print(f"### Holders capped at {CAP_MIB} MiB/s upload each, {SIZE_MIB} MiB\n")
    print("| fetching node | holders | seconds | MB/s | speed-up |")
    print("|---|---|---|---|---|")
    first = None
    for node in (1, 2, 3):
        s, _ = fetch(node, root)
        first = first or s
        print(f"| {node} | {node} | {s:.2f} | {size / 1e6 / s:,.1f} | {first / s:.2f}x |")
    print()


{"single": single, "capped": capped}[MODE]()
