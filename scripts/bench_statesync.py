#!/usr/bin/env python3
"""The measurements of scripts/bench-statesync.sh (which builds the binary).

    bench_statesync.py BIN join ACCOUNTS BLOCKS
    bench_statesync.py BIN idle-disk BLOCKS

join: a 4-validator network on loopback whose genesis funds ACCOUNTS
accounts (half native, half Ethereum: `testnet --bench-accounts`); nodes
0-2 run until height BLOCKS (blocks every 20 ms, a snapshot at BLOCKS),
then node 3, which has never run, joins: once by state sync, once (wiped)
by block sync from genesis. Prints each join's time to reach the others'
height, and the snapshot's size.

idle-disk: one validator making empty blocks (20 ms apart) for BLOCKS
blocks, archive and then pruned (keep_blocks 1000, keep_state_versions
100); prints the database's bytes per block after the first and the
last thousand, and what an idle chain's day (one block every 30 s, the
empty-block interval) adds."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN, MODE = sys.argv[1], sys.argv[2]
BASE_P2P, BASE_RPC, BASE_METRICS = 27856, 28845, 29915


def rpc(port, method, params):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}",
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        answer = json.load(r)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def height(i):
    try:
        return rpc(BASE_RPC + i, "chain_getHeight", [])
    except Exception:  # noqa: BLE001 - a node still starting
        return None


class Net:
    def __init__(self, n, extra):
        self.dir = tempfile.mkdtemp(prefix="palisade-statesync.")
        self.procs = {}
        subprocess.run(
            [BIN, "testnet", "--validators", str(n), "--output", f"{self.dir}/net",
             "--p2p-port", str(BASE_P2P), "--rpc-port", str(BASE_RPC),
             "--metrics-port", str(BASE_METRICS), "--block-interval-ms", "20",
             "--create-empty-blocks", *extra],
            check=True, stdout=subprocess.DEVNULL,
        )

    def home(self, i):
        return f"{self.dir}/net/node{i}"

    def start(self, i, *args):
        log = open(f"{self.dir}/node{i}.log", "ab")
        self.procs[i] = subprocess.Popen(
            [BIN, "start", "--home", self.home(i), *args],
            stdout=subprocess.DEVNULL, stderr=log,
        )

    def stop(self, i):
        p = self.procs.pop(i, None)
        if p:
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log(self, i):
        with open(f"{self.dir}/node{i}.log", encoding="utf-8", errors="replace") as f:
            return f.read()

    def close(self):
        for i in list(self.procs):
            self.stop(i)
        if os.environ.get("KEEP_DIR") == "1":
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    sys.exit(f"timed out after {timeout} s: {what}")


def db_bytes(home):
    total = 0
    for root, _, files in os.walk(f"{home}/data/db"):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def join(accounts, blocks):
    t = time.time()
    net = Net(4, ["--bench-accounts", str(accounts // 2)])
    print(f"genesis of {accounts} accounts written in {time.time() - t:.1f} s", file=sys.stderr)
    try:
        for i in range(3):
            net.start(i, "--set", f"statesync.snapshot_interval={blocks}")
        wait(lambda: all((height(i) or 0) >= blocks for i in range(3)), 3600, f"height {blocks}")
        snap = f"{net.home(0)}/data/snapshots/{blocks:020}.snap"
        wait(lambda: os.path.exists(snap), 600, "the snapshot")
        snap_bytes = os.path.getsize(snap)
        results = {}
        for how, args in (("state sync", ["--state-sync"]), ("block sync", [])):
            shutil.rmtree(f"{net.home(3)}/data", ignore_errors=True)
            t = time.time()
            net.start(3, *args)
            wait(lambda: (height(3) or 0) >= (height(0) or 0) - 2 and (height(3) or 0) > blocks,
                 3600, f"node 3 catching up by {how}")
            results[how] = time.time() - t
            net.stop(3)
        restored = [l for l in net.log(3).splitlines() if "state restored" in l]
        print(f"| {accounts:,} accounts, {blocks:,} blocks | snapshot {snap_bytes / 1e6:.1f} MB "
              f"| state sync {results['state sync']:.1f} s | block sync {results['block sync']:.1f} s |")
        if restored:
            print(f"  {restored[0].split('INFO', 1)[-1].strip()}", file=sys.stderr)
    finally:
        net.close()


def idle_disk(blocks):
    """Samples the database every 2,000 blocks: RocksDB's log and memtable
    grow until a flush (64 MiB), so only the trend across flushes says
    whether the disk keeps growing."""
    for label, args in (
        ("archive", []),
        ("pruned", ["--set", "pruning.keep_blocks=1000", "--set", "pruning.keep_state_versions=100"]),
    ):
        net = Net(1, [])
        try:
            net.start(0, *args)
            samples = []
            for h in range(2000, blocks + 1, 2000):
                wait(lambda: (height(0) or 0) >= h, 3600, f"height {h}")
                samples.append((height(0), db_bytes(net.home(0))))
            half = samples[len(samples) // 2:]
            (h0, b0), (h1, b1) = half[0], half[-1]
            per_block = (b1 - b0) / (h1 - h0)
            low, high = min(b for _, b in half), max(b for _, b in half)
            print(f"| {label} | {samples[-1][0]:,} empty blocks | last half: {low / 1e6:.1f}-{high / 1e6:.1f} MB "
                  f"| {per_block:.0f} B/block | {per_block * 2880 / (1 << 20):.2f} MiB per idle day |")
            print("  " + ", ".join(f"{h}: {b / 1e6:.1f} MB" for h, b in samples), file=sys.stderr)
        finally:
            net.close()


if MODE == "join":
    join(int(sys.argv[3]), int(sys.argv[4]))
elif MODE == "idle-disk":
    idle_disk(int(sys.argv[3]))
else:
    sys.exit(__doc__)
