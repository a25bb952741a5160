#!/usr/bin/env python3
"""The measurements of scripts/bench-statesync.sh (which builds the binary).

    bench_statesync.py BIN join ACCOUNTS BLOCKS
    bench_statesync.py BIN idle-disk BLOCKS
    bench_statesync.py BIN tx-disk TXS RATE

join: a 4-validator network on loopback whose genesis funds ACCOUNTS
accounts (half native, half Ethereum: `testnet --bench-accounts`); all
four run until height BLOCKS (blocks every BLOCK_INTERVAL_MS, default 20
ms, a snapshot at BLOCKS),
then node 3 is stopped and wiped and joins: once by state sync, once
(wiped again) by block sync from genesis. Prints each join's time to reach the others'
height, and the snapshot's size.

idle-disk: one validator making empty blocks (20 ms apart) for BLOCKS
blocks, archive and then pruned (keep_blocks 1000, keep_state_versions
100), stopped cleanly at half and at all of them; prints how much its
table files grew per block between the two, and what an idle chain's day
(one block every 30 s, the empty-block interval) adds.

tx-disk: one validator with 10,000 funded accounts takes TXS transfers at
RATE per second, archive and then pruned; prints the table files' growth
per million transfers between clean stops before and after."""
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
# 0 for long chains: blocks as fast as consensus decides them.
BLOCK_INTERVAL_MS = os.environ.get("BLOCK_INTERVAL_MS", "20")


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
             "--metrics-port", str(BASE_METRICS), "--block-interval-ms", BLOCK_INTERVAL_MS,
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
        # All four make the chain (with one missing, every fourth height
        # waits out its proposer's timeout); node 3 is then wiped and joins.
        for i in range(4):
            net.start(i, "--set", f"statesync.snapshot_interval={blocks}")
        t = time.time()
        wait(lambda: all((height(i) or 0) >= blocks for i in range(3)), 7200, f"height {blocks}")
        print(f"{blocks} blocks made in {time.time() - t:.0f} s", file=sys.stderr)
        net.stop(3)
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


def sst_bytes(home):
    """The database's table files: what it keeps once its log is flushed."""
    total = 0
    for root, _, files in os.walk(f"{home}/data/db"):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if f.endswith(".sst"))
    return total


def idle_disk(blocks):
    """Stops the validator (a clean stop flushes RocksDB's memtables into
    table files and drops the log) at half and at all of BLOCKS, and
    compares the table files: what the node keeps for good. The log in
    between grows until a flush (64 MiB memtables) whatever is pruned."""
    for label, args in (
        ("archive", []),
        ("pruned", ["--set", "pruning.keep_blocks=1000", "--set", "pruning.keep_state_versions=100"]),
    ):
        net = Net(1, [])
        try:
            samples = []
            for target in (blocks // 2, blocks):
                net.start(0, *args)
                wait(lambda: (height(0) or 0) >= target, 3600, f"height {target}")
                h = height(0)
                net.stop(0)
                samples.append((h, sst_bytes(net.home(0)), db_bytes(net.home(0))))
            (h0, s0, _), (h1, s1, d1) = samples
            per_block = (s1 - s0) / (h1 - h0)
            print(f"| {label} | {h0:,} -> {h1:,} empty blocks | tables {s0 / 1e6:.2f} -> {s1 / 1e6:.2f} MB "
                  f"(all files {d1 / 1e6:.2f} MB) | {per_block:.0f} B/block | "
                  f"{per_block * 2880 / (1 << 20):.2f} MiB per idle day |")
        finally:
            net.close()


def tx_disk(txs, rate):
    """One validator, 10,000 funded accounts: TXS native transfers offered
    at RATE per second by `palisade bench`; the table files' growth between
    a clean stop before and one after, archive and pruned."""
    for label, args in (
        ("archive", []),
        ("pruned", ["--set", "pruning.keep_blocks=1000", "--set", "pruning.keep_state_versions=100"]),
    ):
        net = Net(1, ["--bench-accounts", "10000"])
        try:
            net.start(0, *args)
            wait(lambda: (height(0) or 0) >= 2, 120, "height 2")
            net.stop(0)
            s0 = sst_bytes(net.home(0))
            net.start(0, *args)
            wait(lambda: (height(0) or 0) >= 1, 120, "the node back")
            duration = max(1, txs // rate)
            out = subprocess.run(
                [BIN, "bench", "--rpc", f"127.0.0.1:{BASE_RPC}", "--accounts", "10000",
                 "--rate", str(rate), "--duration-s", str(duration), "--json"],
                check=True, capture_output=True, text=True,
            )
            committed = json.loads(out.stdout).get("committed", 0)
            # Past every kept window, so the pruned node prunes what the
            # load wrote (empty blocks 20 ms apart).
            target = (height(0) or 0) + 1500
            wait(lambda: (height(0) or 0) >= target, 600, f"height {target}")
            net.stop(0)
            s1 = sst_bytes(net.home(0))
            print(f"| {label} | {committed:,} transfers committed | tables {s0 / 1e6:.1f} -> {s1 / 1e6:.1f} MB "
                  f"| {(s1 - s0) / max(committed, 1) * 1e6 / 1e6:.1f} MB per million transfers |")
        finally:
            net.close()


if MODE == "join":
    join(int(sys.argv[3]), int(sys.argv[4]))
elif MODE == "idle-disk":
    idle_disk(int(sys.argv[3]))
elif MODE == "tx-disk":
    tx_disk(int(sys.argv[3]), int(sys.argv[4]))
else:
    sys.exit(__doc__)
