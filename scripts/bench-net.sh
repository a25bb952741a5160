# Sourced by the bench scripts, not run: starts a devnet of VALIDATORS (4)
# validators on this machine with 10,000 funded load-test accounts (`palisade testnet
# --bench-accounts`), validator i on ports BASE_P2P/BASE_RPC/BASE_METRICS + i,
# blocks every BLOCK_INTERVAL_MS, and waits (bounded) until every validator
# has committed height 2.
# Sets BIN, DIR, pids, rpc and metrics (comma-separated host:port lists);
# defines check_nodes (stop unless every validator still runs) and height
# PORT. Every node is stopped on exit and DIR removed (KEEP_DIR=1 keeps it,
# logs included). START_ARGS (an array, optional) goes to every `palisade
# start`. PALISADE_BIN runs that binary instead of building this checkout
# (to compare two builds in the same hour).
N=${VALIDATORS:-4}
if [ -z "${START_ARGS+x}" ]; then START_ARGS=(); fi
if [ -n "${PALISADE_BIN:-}" ]; then
    BIN="$PALISADE_BIN"
    [ -x "$BIN" ] || { echo "PALISADE_BIN=$BIN is not an executable" >&2; exit 1; }
else
    cargo build --release --locked --workspace --bins >&2
    BIN="$CARGO_TARGET_DIR/release/palisade"
fi
DIR="$(mktemp -d -t "${BENCH_NAME:-palisade-bench}.XXXXXX")"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${KEEP_DIR:-0}" = 1 ]; then echo "kept $DIR" >&2; else rm -rf "$DIR"; fi
}
trap cleanup EXIT INT TERM

# Refuse to run beside another network on these ports: its nodes would
# answer in place of ours and the numbers would be someone else's.
for ((i = 0; i < N; i++)); do
    for port in $((BASE_P2P + i)) $((BASE_RPC + i)) $((BASE_METRICS + i)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "port $port is in use (another devnet still running?); stop it first" >&2
            exit 1
        fi
    done
done

check_nodes() {
    for ((i = 0; i < N; i++)); do
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then
            echo "validator $i is not running; its log ends:" >&2
            tail -5 "$DIR/node$i.log" >&2
            exit 1
        fi
    done
}

# The height a node's RPC on port $1 reports, or nothing.
height() {
    "$BIN" status --rpc "http://127.0.0.1:$1" 2>/dev/null | sed -n 's/.*height \([0-9]*\).*/\1/p' | head -1
}

"$BIN" testnet --validators $N --output "$DIR/net" --bench-accounts 10000 \
    --block-interval-ms "$BLOCK_INTERVAL_MS" \
    --p2p-port "$BASE_P2P" --rpc-port "$BASE_RPC" --metrics-port "$BASE_METRICS" >/dev/null
for ((i = 0; i < N; i++)); do
    "$BIN" start --home "$DIR/net/node$i" "${START_ARGS[@]}" 2>"$DIR/node$i.log" &
    pids+=("$!")
done
# Every validator, not just the first, must have a block: one still
# catching up when the load starts misses its turn to propose, and the
# others wait out a propose timeout that the first rate's figures would
# carry (a 1-2 s stall at 500 tx/s, seen before this wait covered all).
ready=0
# 5 s per validator: ten starting at once on two cores take a while.
for _ in $(seq 1 $((25 * N))); do
    ready=0
    for ((i = 0; i < N; i++)); do
        h=$(height $((BASE_RPC + i)) || true)
        [ -n "$h" ] && [ "$h" -ge 2 ] && ready=$((ready + 1))
    done
    [ "$ready" = "$N" ] && break
    sleep 0.2
done
check_nodes
if [ "$ready" != "$N" ]; then
    echo "only $ready of $N validators reached height 2 in $((5 * N)) s; logs in $DIR" >&2
    KEEP_DIR=1
    exit 1
fi
rpc=$(for ((i = 0; i < N; i++)); do printf '127.0.0.1:%d,' $((BASE_RPC + i)); done)
metrics=$(for ((i = 0; i < N; i++)); do printf '127.0.0.1:%d,' $((BASE_METRICS + i)); done)
rpc=${rpc%,} metrics=${metrics%,}
