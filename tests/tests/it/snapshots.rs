//! Snapshots end to end: a running validator writes them by itself; one is
//! exported, checked, and imported into a wiped validator, which then
//! block-syncs from the snapshot's height and takes part in consensus again.

use std::process::Command;
use std::time::Duration;

use palisade_tests::{palisade_bin, Devnet};

fn palisade(args: &[&str]) -> std::process::Output {
    Command::new(palisade_bin())
        .args(args)
        .output()
        .expect("run palisade")
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Stops node 0 and waits for three more blocks: nodes 1, 2 and 3 have
/// more than two thirds only with node 3's vote, so it must hold the same
/// state as the rest (and its log shows no block it could not execute).
fn node_3_votes_with_the_rest(net: &mut Devnet) {
    net.stop(0);
    let now = net.top_height(&[1, 2, 3]);
    net.wait_height(&[1, 2, 3], now + 3, Duration::from_secs(120));
    assert!(
        !net.log(3).contains("could not be executed"),
        "{}",
        net.log_tail(3)
    );
}

#[test]
fn a_wiped_validator_comes_back_from_another_nodes_snapshot() {
    // 50,000 funded accounts (and as many Ethereum ones): a state of some
    // 100,000 entries, so the snapshot has many chunks.
    let mut net = Devnet::generate_with(4, &["--bench-accounts", "50000"]);
    net.start_with(0, &["--set", "statesync.snapshot_interval=10"]);
    for i in 1..4 {
        net.start(i);
    }
    net.wait_height(&[0, 1, 2, 3], 12, Duration::from_secs(120));
    let home0 = net.home(0);
    let home0 = home0.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.snap");
    let file = file.to_str().unwrap();
    // Exported from the running node: its snapshots are whole files.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = palisade(&["snapshot", "export", file, "--home", home0]);
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let home3 = net.home(3);
    let home3s = home3.to_str().unwrap();
    let checked: serde_json::Value = serde_json::from_str(&ok(&palisade(&[
        "snapshot", "verify", file, "--home", home3s, "--output", "json",
    ])))
    .unwrap();
    let height = checked["height"].as_u64().unwrap();
    assert!(height >= 10 && height.is_multiple_of(10), "{checked}");
    assert!(checked["chunks"].as_u64().unwrap() > 1, "{checked}");

    // A damaged copy is refused, naming the chunk.
    let bad = dir.path().join("bad.snap");
    let mut bytes = std::fs::read(file).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&bad, bytes).unwrap();
    let out = palisade(&[
        "snapshot",
        "verify",
        bad.to_str().unwrap(),
        "--home",
        home3s,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chunk 0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Node 3 loses its data directory (its signer state lives with its
    // keys, so it cannot sign twice).
    net.stop(3);
    std::fs::remove_dir_all(home3.join("data")).unwrap();
    let imported: serde_json::Value = serde_json::from_str(&ok(&palisade(&[
        "snapshot", "import", file, "--home", home3s, "--output", "json",
    ])))
    .unwrap();
    assert_eq!(imported["stateRoot"], checked["stateRoot"]);
    {
        let ledger = net.ledger(3);
        assert_eq!(ledger.latest_height().unwrap().get(), height);
        assert_eq!(
            ledger.state_root(palisade_types::Height(height)).unwrap(),
            Some(serde_json::from_value(checked["stateRoot"].clone()).unwrap())
        );
        assert_eq!(ledger.earliest_block().unwrap().get(), height + 1);
    }
    // A second import into the now non-empty node is refused.
    let again = palisade(&["snapshot", "import", file, "--home", home3s]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds blocks"));

    net.start(3);
    let top = net.top_height(&[0, 1, 2]);
    net.wait_height(&[3], top + 2, Duration::from_secs(120));
    node_3_votes_with_the_rest(&mut net);
}

#[test]
fn a_pruning_node_keeps_committing_and_says_clearly_what_it_pruned() {
    use palisade_tests::rpc_call;
    use serde_json::json;
    let mut net = Devnet::generate(1);
    let prune = [
        "--set",
        "pruning.keep_blocks=100",
        "--set",
        "pruning.keep_state_versions=10",
    ];
    net.start_with(0, &prune);
    net.wait_height(&[0], 160, Duration::from_secs(120));
    let rpc = net.rpc_addr(0);
    // Where `method` says history starts (-32045 "pruned"), or None
    // while it still serves `params`.
    let pruned_from = |method: &str, params: serde_json::Value| -> Option<u64> {
        match rpc_call(&rpc, method, params.clone()) {
            Ok(_) => None,
            Err(e) => {
                assert_eq!(e["code"], -32045, "{method} {params}: {e}");
                assert!(e["message"].as_str().unwrap().contains("pruned"), "{e}");
                Some(e["data"].as_u64().unwrap())
            }
        }
    };
    let height = || {
        rpc_call(&rpc, "chain_getHeight", json!([]))
            .unwrap()
            .as_u64()
            .unwrap()
    };
    // Kept: the last 100 blocks and 10 state versions, behind by at most a
    // batch (a quarter of 100) once the pruning pass, which runs in the
    // background, catches up; a busy machine can delay it by a batch or
    // two. Each bound is read on the side that cannot make it fail
    // spuriously: where history starts before the height, for "pruned too
    // much"; after it, for "kept too much".
    let settled = |below: u64| -> (u64, u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let latest_before = height();
            let earliest = pruned_from("chain_getBlock", json!([below]));
            let state_from = pruned_from(
                "eth_getBalance",
                json!([
                    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                    format!("{below:#x}")
                ]),
            );
            let latest_after = height();
            if let Some(earliest) = earliest {
                assert!(
                    earliest + 100 <= latest_after + 1,
                    "earliest {earliest}, latest {latest_after}: pruned too much"
                );
            }
            if let (Some(earliest), Some(state_from)) = (earliest, state_from) {
                if earliest + 125 >= latest_before && state_from + 10 >= latest_before {
                    return (earliest, latest_after);
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "blocks from {earliest:?}, state from {state_from:?}, latest {latest_before}: pruning fell behind"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let (earliest, latest) = settled(5);
    // The same boundary for commits (read between two readings of the
    // blocks' one, which only moves on), and the first kept block is
    // served unless a later pass has moved the boundary on meanwhile.
    let commits_from = pruned_from("chain_getCommit", json!([earliest - 1])).unwrap();
    let blocks_from = pruned_from("chain_getBlock", json!([5])).unwrap();
    assert!(
        (earliest..=blocks_from).contains(&commits_from),
        "commits from {commits_from}, blocks from {earliest} then {blocks_from}"
    );
    match rpc_call(&rpc, "chain_getBlock", json!([earliest])) {
        Ok(b) => assert!(b["block"].is_object(), "{b}"),
        Err(e) => assert!(
            e["code"] == -32045 && e["data"].as_u64() > Some(earliest),
            "{e}"
        ),
    }
    assert!(pruned_from("eth_getBlockByNumber", json!(["0x5", false])).is_some());
    rpc_call(
        &rpc,
        "eth_getBalance",
        json!(["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"]),
    )
    .unwrap();
    // Across a restart it goes on pruning from where it was.
    net.stop(0);
    net.start_with(0, &prune);
    net.wait_height(&[0], latest + 150, Duration::from_secs(120));
    let (again, _) = settled(earliest);
    assert!(again > earliest + 100, "{again} after {earliest}");
    assert!(
        !net.log(0).contains("pruning failed"),
        "{}",
        net.log_tail(0)
    );
}

const SNAPSHOTS_EVERY_10: [&str; 2] = ["--set", "statesync.snapshot_interval=10"];

/// Waits (bounded) until node `i`'s log holds `what`.
fn wait_log(net: &Devnet, i: usize, what: &str, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    while !net.log(i).contains(what) {
        assert!(
            std::time::Instant::now() < deadline,
            "node {i} never logged {what:?}: {}",
            net.log_tail(i)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_new_node_state_syncs_past_a_corrupting_peer_and_a_crash_then_follows_consensus() {
    let mut net = Devnet::generate_with(4, &["--bench-accounts", "50000"]);
    net.start_with(0, &SNAPSHOTS_EVERY_10);
    net.start_with(2, &SNAPSHOTS_EVERY_10);
    // Offers the same snapshots, but every chunk it serves is damaged.
    net.start_byzantine_with(1, "corrupt-chunks", &SNAPSHOTS_EVERY_10);
    net.wait_height(&[0, 1, 2], 22, Duration::from_secs(120));
    // Node 3 has never run: no blocks, so it joins by state sync. Killed
    // once it has started fetching, it starts over when restarted.
    net.start_with(3, &["--state-sync"]);
    wait_log(
        &net,
        3,
        "state sync: fetching the snapshot",
        Duration::from_secs(60),
    );
    net.kill9(3);
    net.start_with(3, &["--state-sync"]);
    wait_log(
        &net,
        3,
        "state sync: state restored",
        Duration::from_secs(60),
    );
    let log = net.log(3);
    assert!(
        log.contains("bad chunk") || log.contains("bad_snapshot_chunk"),
        "the corrupting peer was not noticed: {}",
        net.log_tail(3)
    );
    let top = net.top_height(&[0, 2]);
    net.wait_height(&[3], top + 2, Duration::from_secs(120));
    let earliest =
        palisade_tests::rpc_call(&net.rpc_addr(3), "chain_getBlock", serde_json::json!([1]))
            .expect_err("blocks before the snapshot are not on node 3")["data"]
            .as_u64()
            .unwrap();
    assert!(
        earliest > 10 && (earliest - 1).is_multiple_of(10),
        "earliest {earliest}"
    );
    node_3_votes_with_the_rest(&mut net);
}

#[test]
fn with_no_snapshot_on_offer_a_new_node_block_syncs_from_genesis() {
    let mut net = Devnet::generate(4);
    for i in 0..3 {
        net.start(i);
    }
    net.wait_height(&[0, 1, 2], 5, Duration::from_secs(60));
    net.start_with(3, &["--state-sync", "--set", "statesync.discovery_ms=2000"]);
    wait_log(
        &net,
        3,
        "no peer offered a snapshot",
        Duration::from_secs(30),
    );
    let top = net.top_height(&[0, 1, 2]);
    net.wait_height(&[3], top + 2, Duration::from_secs(60));
    // From genesis: it has every block.
    palisade_tests::rpc_call(&net.rpc_addr(3), "chain_getBlock", serde_json::json!([1])).unwrap();
}

#[test]
fn a_validator_left_behind_what_every_peer_keeps_catches_up_by_state_sync_by_itself() {
    use palisade_tests::rpc_call;
    use serde_json::json;
    let settings = [
        "--set",
        "pruning.keep_blocks=100",
        "--set",
        "pruning.keep_state_versions=10",
        "--set",
        "statesync.snapshot_interval=20",
        "--set",
        "statesync.discovery_ms=5000",
    ];
    let mut net = Devnet::generate(4);
    for i in 0..4 {
        net.start_with(i, &settings);
    }
    net.wait_height(&[0, 1, 2, 3], 5, Duration::from_secs(60));
    net.stop(3);
    let left_at = net.ledger(3).latest_height().unwrap().get();

    // While node 3 is away the state changes, and the others prune past it.
    let admin = net.dir.path().join("net").join("admin_key.json");
    let rpc0 = format!("http://{}", net.rpc_addr(0));
    let key = tempfile::tempdir().unwrap();
    let bob = key.path().join("bob.json");
    ok(&palisade(&[
        "keys",
        "generate",
        "--output",
        bob.to_str().unwrap(),
    ]));
    let bob_address = palisade_node::home::read_key(&bob)
        .unwrap()
        .address()
        .to_string();
    ok(&palisade(&[
        "tx",
        "transfer",
        "--to",
        &bob_address,
        "--amount",
        "777",
        "--wait",
        "--rpc",
        &rpc0,
        "--key-file",
        admin.to_str().unwrap(),
    ]));
    net.wait_height(&[0, 1, 2], left_at + 160, Duration::from_secs(180));
    let earliest = rpc_call(&net.rpc_addr(0), "chain_getBlock", json!([left_at + 1]))
        .expect_err("the others have pruned the blocks node 3 needs")["data"]
        .as_u64()
        .unwrap();
    assert!(earliest > left_at + 1, "earliest {earliest}");

    // Restarted as it was: block sync finds every peer has pruned what it
    // needs, so it restores a snapshot and reopens on it, in one process.
    net.start_with(3, &settings);
    wait_log(&net, 3, "caught up by state sync", Duration::from_secs(120));
    let top = net.top_height(&[0, 1, 2]);
    net.wait_height(&[3], top + 2, Duration::from_secs(120));
    assert!(net.is_running(3), "{}", net.log_tail(3));
    let rpc3 = net.rpc_addr(3);
    let account = rpc_call(&rpc3, "state_getAccount", json!([bob_address])).unwrap();
    assert_eq!(
        account["balance"].to_string().trim_matches('"'),
        "777",
        "{account}"
    );
    // Its old blocks went with its old ledger.
    rpc_call(&rpc3, "chain_getBlock", json!([left_at]))
        .expect_err("node 3's blocks before the snapshot are gone");
    node_3_votes_with_the_rest(&mut net);
    assert!(!net.log(3).contains("catch-up"), "{}", net.log_tail(3));
}

#[test]
fn a_new_node_trusts_a_snapshot_of_changed_validators_by_walking_the_changes_from_genesis() {
    use palisade_tests::rpc_call;
    use serde_json::json;
    let mut net = Devnet::generate(4);
    for i in 0..3 {
        net.start_with(i, &SNAPSHOTS_EVERY_10);
    }
    net.wait_height(&[0, 1, 2], 3, Duration::from_secs(60));
    // Node 1's power doubles: the set differs from genesis's from then on.
    let genesis =
        palisade_genesis::Genesis::from_file(&net.home(0).join("config/genesis.json")).unwrap();
    let node1 = genesis
        .validators
        .iter()
        .find(|v| v.name == "validator-1")
        .unwrap();
    let power = (node1.power * 2).to_string();
    ok(&palisade(&[
        "tx",
        "validator-power",
        "--wait",
        "--consensus-key",
        &node1.consensus_key.to_string(),
        "--power",
        &power,
        "--rpc",
        &format!("http://{}", net.rpc_addr(0)),
        "--key-file",
        net.dir.path().join("net/admin_key.json").to_str().unwrap(),
    ]));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let changed_at = loop {
        let set = rpc_call(&net.rpc_addr(0), "validator_getSet", json!([])).unwrap();
        let key = node1.consensus_key.to_string();
        let doubled = set["validators"].as_array().unwrap().iter().any(|v| {
            v["publicKey"] == json!(key) && v["power"].to_string().trim_matches('"') == power
        });
        if doubled {
            break net.height(0).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the set never changed: {set}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // A snapshot after the change, decided by the new set.
    net.wait_height(&[0, 1, 2], changed_at + 12, Duration::from_secs(60));

    // Node 3 knows only genesis: it walks the change to trust the snapshot.
    net.start_with(3, &["--state-sync"]);
    wait_log(
        &net,
        3,
        "state sync: state restored",
        Duration::from_secs(60),
    );
    assert!(
        net.log(3).contains("validator-set change verified"),
        "{}",
        net.log_tail(3)
    );
    let top = net.top_height(&[0, 1, 2]);
    net.wait_height(&[3], top + 2, Duration::from_secs(120));
    rpc_call(&net.rpc_addr(3), "chain_getBlock", json!([1]))
        .expect_err("node 3 started from a snapshot, not from genesis");
    // On the new set: node 3's vote is needed.
    node_3_votes_with_the_rest(&mut net);
    // And it passes the change on: a node state-syncing from it alone
    // could walk it too.
    let ledger_changes = {
        net.stop(3);
        net.ledger(3)
            .set_changes_after(palisade_types::Height(0), 16, 1 << 20)
            .unwrap()
    };
    assert_eq!(ledger_changes.len(), 1, "{ledger_changes:?}");
}
