//! Faults and adversaries on real processes: stopped and frozen nodes, a
//! removed validator, a flooded mempool, and a negative control that must
//! make the checker see a double sign.

use std::process::Command;
use std::time::{Duration, Instant};

use palisade_genesis::Genesis;
use palisade_node::config::NodeConfig;
use palisade_tests::{
    acknowledged, audit, double_signs, fault_hold, palisade_bin, raw_post, rpc_call,
    signed_in_logs, Audit, CheckReport, Checker, Devnet, FaultRng, Load,
};
use palisade_types::{Height, PublicKey, Round};
use serde_json::json;

fn evidence(net: &Devnet, i: usize) -> f64 {
    net.metric(i, "palisade_evidence_total").unwrap_or(0.0)
}

fn checker(net: &Devnet) -> Checker {
    Checker::start(
        net.rpc_addrs(),
        (0..net.n).map(|i| net.metrics_addr(i)).collect(),
    )
}

/// What the live checker saw holds every invariant, with no double sign.
fn assert_clean(r: &CheckReport) {
    assert!(r.forks.is_empty(), "nodes disagreed: {:?}", r.forks);
    assert!(r.heights_checked > 0, "checker compared nothing");
    assert_eq!(
        r.double_signs(),
        0.0,
        "an honest run reported double signs: {:?}",
        r.evidence
    );
    assert!(
        r.max_mempool_txs <= 50_000.0,
        "mempool over its bound: {}",
        r.max_mempool_txs
    );
    assert!(
        r.max_rss_bytes < 2.0 * 1024.0 * 1024.0 * 1024.0,
        "RSS {} bytes",
        r.max_rss_bytes
    );
}

/// No node panicked, and the stopped ledgers pass every chain invariant
/// (see [`audit`]).
fn agree(net: &Devnet) -> Audit {
    for i in 0..net.n {
        let log = net.log(i);
        assert!(
            !log.contains("panicked"),
            "node {i} panicked:\n{}",
            net.log_tail(i)
        );
    }
    audit(net)
}

/// The nodes other than `out`.
fn others(n: usize, out: &[usize]) -> Vec<usize> {
    (0..n).filter(|i| !out.contains(i)).collect()
}

/// Consensus keys of the testnet's validators, by node index.
fn consensus_keys(net: &Devnet) -> Vec<PublicKey> {
    let genesis = Genesis::from_file(&net.home(0).join("config/genesis.json")).unwrap();
    (0..net.n)
        .map(|i| {
            genesis
                .validators
                .iter()
                .find(|v| v.name == format!("validator-{i}"))
                .unwrap_or_else(|| panic!("validator-{i} not in genesis"))
                .consensus_key
        })
        .collect()
}

/// After a fault heals: every node reaches the heal height + 10 within
/// 60 s (the issue's recovery bound).
fn recovers(net: &mut Devnet) {
    let all: Vec<usize> = (0..net.n).collect();
    let target = net.top_height(&all) + 10;
    net.wait_height(&all, target, Duration::from_secs(60));
}

#[test]
fn negative_control_two_nodes_sharing_a_key_are_caught_double_signing() {
    let mut net = Devnet::generate(4);
    // Node 3 runs with node 0's validator key: two signers, one identity.
    std::fs::copy(
        net.home(0).join("config/validator_key.json"),
        net.home(3).join("config/validator_key.json"),
    )
    .unwrap();
    net.start_all();
    let check = checker(&net);
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline && evidence(&net, 1) == 0.0 && evidence(&net, 2) == 0.0 {
        std::thread::sleep(Duration::from_millis(200));
    }
    // Until the checker has scraped what the nodes recorded.
    check.wait_for(Duration::from_secs(60), |r| r.double_signs() > 0.0);
    let report = check.stop();
    assert!(
        report.double_signs() > 0.0,
        "the checker did not report the shared key's double sign: {:?}",
        report.evidence
    );
    let log = net.log(1) + &net.log(2);
    assert!(log.contains("equivocation evidence"), "no evidence logged");
    // The signing logs show it too: the audit the double-sign tests rely
    // on can fail.
    net.stop_all();
    assert!(
        !double_signs(&signed_in_logs(&net)).is_empty(),
        "the signing logs show no double sign of the shared key"
    );
}

#[test]
fn a_node_frozen_with_sigstop_catches_up_after_sigcont() {
    let mut rng = FaultRng::from_env("sigstop");
    let victim = rng.below(4) as usize;
    let rest = others(4, &[victim]);
    let mut net = Devnet::generate(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(60));
    let check = checker(&net);
    let pid = net.pid(victim).unwrap().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    let h = net.top_height(&rest);
    // The other three keep committing while it is frozen.
    net.wait_height(&rest, h + 15, Duration::from_secs(60));
    std::thread::sleep(fault_hold(rng.millis(0, 2000), Duration::from_secs(30)));
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    recovers(&mut net);
    for i in 0..4 {
        assert_eq!(evidence(&net, i), 0.0, "node {i} recorded evidence");
    }
    assert_clean(&check.stop());
    net.stop_all();
    agree(&net);
}

#[test]
fn all_validators_killed_and_restarted_in_another_order_resume() {
    let mut rng = FaultRng::from_env("kill-all");
    let mut net = Devnet::generate(4);
    net.start_all();
    let load = Load::start(net.rpc_addrs(), net.chain_id(), net.admin_key(), 100);
    net.wait_height(&[0, 1, 2, 3], 8, Duration::from_secs(60));
    let sent_before = load.stop();
    // What the nodes acknowledged before the crash must survive it.
    let acked = acknowledged(&net.rpc_addrs(), &sent_before);
    for i in 0..4 {
        net.kill9(i);
    }
    let before = (0..4)
        .map(|i| net.ledger(i).latest_height().unwrap().get())
        .min()
        .unwrap();
    // Restart order and gaps from the seed.
    let mut order = vec![0usize, 1, 2, 3];
    rng.shuffle(&mut order);
    for i in order {
        net.start(i);
        std::thread::sleep(rng.millis(0, 800));
    }
    net.wait_height(&[0, 1, 2, 3], before + 10, Duration::from_secs(90));
    for i in 0..4 {
        assert_eq!(evidence(&net, i), 0.0, "node {i} recorded evidence");
    }
    net.stop_all();
    let audit = agree(&net);
    assert!(!acked.is_empty(), "no transaction was acknowledged");
    audit.assert_exactly_once(&acked);
}

#[test]
fn a_validator_removed_by_the_admin_is_disconnected_and_the_chain_goes_on() {
    let mut rng = FaultRng::from_env("validator-removed");
    // Node 0 takes the admin's transaction; any other one is removed.
    let victim = 1 + rng.below(3) as usize;
    let rest = others(4, &[victim]);
    let mut net = Devnet::generate(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(60));
    let removed = consensus_keys(&net)[victim];
    let out = Command::new(palisade_bin())
        .args(["tx", "validator-remove", "--wait", "--consensus-key"])
        .arg(removed.to_string())
        .arg("--key-file")
        .arg(net.dir.path().join("net/admin_key.json"))
        .arg("--rpc")
        .arg(format!("http://{}", net.rpc_addr(0)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // After the update delay, the set no longer has it and its peers drop it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let set = rpc_call(&net.rpc_addr(0), "validator_getSet", json!([])).unwrap();
        let gone = !set["validators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["publicKey"] == removed.to_string());
        let peers0 = net.metric(0, "palisade_peers").unwrap_or(9.0);
        if gone && peers0 <= 2.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "validator {victim} still in the set or connected (peers {peers0})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let h = net.height(0).unwrap();
    net.wait_height(&rest, h + 5, Duration::from_secs(60));
    let latest = net.height(0).unwrap();
    net.stop_all();
    let audit = agree(&net);
    assert!(audit.longest_height as u64 >= latest);
    // Later blocks neither count nor carry a signature of the removed
    // validator (every certificate was verified against its height's set).
    let ledger = net.ledger(0);
    for h in latest.saturating_sub(3)..=latest {
        let set = ledger.validators(Height(h)).unwrap().unwrap();
        assert!(set.get(&removed).is_none(), "height {h} still counts it");
        let commit = ledger.commit(Height(h)).unwrap().unwrap();
        assert!(
            commit.signatures().iter().all(|s| s.validator != removed),
            "height {h} carries its signature"
        );
    }
}

#[test]
fn a_flooded_mempool_stays_bounded_and_valid_transactions_still_land() {
    let mut rng = FaultRng::from_env("mempool-flood");
    let mut net = Devnet::generate_with(4, &["--bench-accounts", "2000"]);
    // A small pool, so the flood fills it.
    for i in 0..4 {
        let path = net.home(i).join("config/config.toml");
        let mut cfg = NodeConfig::load(&path).unwrap();
        cfg.mempool.max_txs = 500;
        std::fs::write(&path, cfg.to_toml()).unwrap();
    }
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(60));
    let rpc = net.rpc_addrs();
    let check = checker(&net);
    // Flood: 2,000 accounts, far more than the pool holds, as fast as the
    // generator goes.
    let flood = Command::new(palisade_bin())
        .args([
            "bench",
            "--accounts",
            "2000",
            "--rate",
            "4000",
            "--duration-s",
            "3",
            "--drain-s",
            "1",
            "--json",
            // One tx_submitBatch call per group (bench_measures_a_running_network
            // covers JSON-RPC batches of tx_submit).
            "--submit-batch",
        ])
        .arg("--rpc")
        .arg(rpc.join(","))
        .output()
        .unwrap();
    assert!(
        flood.status.success(),
        "{}",
        String::from_utf8_lossy(&flood.stderr)
    );
    for i in 0..4 {
        let size = net.metric(i, "palisade_mempool_txs").unwrap();
        assert!(size <= 500.0, "node {i} mempool {size} over its bound");
    }
    let during = check.stop();
    assert_clean(&during);
    assert!(
        during.max_mempool_txs <= 500.0,
        "a mempool went over its bound during the flood: {}",
        during.max_mempool_txs
    );
    // A valid transfer from the admin lands within 5 blocks of its first
    // submission; a full pool answers -32004 and the client retries, as
    // docs/rpc.md tells clients to.
    let key = net.admin_key();
    let tx = palisade_types::Transaction {
        chain_id: net.chain_id(),
        nonce: 0,
        signer: key.address(),
        action: palisade_types::Action::Transfer {
            to: palisade_types::Address([0x11; 32]),
            amount: 1,
        },
    }
    .sign(&key);
    let hex = format!("0x{}", hex::encode(palisade_types::encode(&tx)));
    let via = net.rpc_addr(rng.below(4) as usize);
    let h0 = net.top_height(&[0, 1, 2, 3]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let hash = loop {
        match rpc_call(&via, "tx_submit", json!([hex])) {
            Ok(r) => break r["hash"].clone(),
            Err(e) if e["code"] == -32004 => {}
            Err(e) => panic!("valid transaction refused: {e}"),
        }
        assert!(Instant::now() < deadline, "pool never had room");
        std::thread::sleep(Duration::from_millis(50));
    };
    let landed = loop {
        if let Ok(r) = rpc_call(&via, "tx_getReceipt", json!([hash])) {
            if !r.is_null() {
                assert_eq!(r["success"], true, "{r}");
                break r["height"].as_u64().unwrap();
            }
        }
        assert!(Instant::now() < deadline, "transaction never committed");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        landed <= h0 + 5,
        "landed at {landed}, first submitted at {h0}"
    );
    net.stop_all();
    agree(&net);
}

/// A devnet in network namespaces, or a clear skip where they cannot be
/// made: outside CI only. In CI (`CI=true`) a missing prerequisite fails
/// the test (`.ci/run` installs iproute2 and runs as root).
fn isolated() -> Option<Devnet> {
    if !palisade_tests::netns_prerequisites() {
        return None;
    }
    // As root with iproute2 a failure is a real failure, never a skip.
    Some(Devnet::generate_isolated(4).expect("create the namespaces"))
}

#[test]
fn an_isolated_validator_rejoins_and_catches_up() {
    let Some(mut net) = isolated() else { return };
    let mut rng = FaultRng::from_env("isolate");
    let victim = rng.below(4) as usize;
    let rest = others(4, &[victim]);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(60));
    let check = checker(&net);
    net.netns.as_ref().unwrap().isolate(victim).unwrap();
    let h = net.top_height(&rest);
    // Three of four keep the chain going without it.
    net.wait_height(&rest, h + 10, Duration::from_secs(60));
    std::thread::sleep(fault_hold(rng.millis(0, 2000), Duration::from_secs(60)));
    net.netns.as_ref().unwrap().reconnect(victim).unwrap();
    recovers(&mut net);
    assert_clean(&check.stop());
    net.stop_all();
    agree(&net);
}

#[test]
fn a_two_two_split_halts_then_recovers() {
    let Some(mut net) = isolated() else { return };
    let mut rng = FaultRng::from_env("split");
    let mut nodes = vec![0usize, 1, 2, 3];
    rng.shuffle(&mut nodes);
    let (near, far) = nodes.split_at(2);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(60));
    let check = checker(&net);
    net.netns.as_ref().unwrap().split(far).unwrap();
    // Let in-flight rounds finish (until no height moves for three
    // seconds: a busy machine can hold a decided block's commit that
    // long), then no half has two thirds: no commits. (The test still
    // reaches the nodes on the first bridge.)
    let during = net.settled_height(near, Duration::from_secs(3), Duration::from_secs(30));
    std::thread::sleep(fault_hold(rng.millis(5000, 7000), Duration::from_secs(30)));
    for i in near {
        assert_eq!(
            net.height(*i).unwrap(),
            during,
            "node {i}'s half committed without a quorum"
        );
    }
    net.netns.as_ref().unwrap().heal().unwrap();
    net.wait_height(&[0, 1, 2, 3], during + 10, Duration::from_secs(60));
    assert_clean(&check.stop());
    net.stop_all();
    agree(&net);
}

/// Four validators, one of them (drawn from the seed) run by the test-only
/// `palisade-byzantine MODE` binary; waits until the honest three reach height
/// 10. Returns the network and the honest nodes.
fn with_one_byzantine(mode: &str) -> (Devnet, Vec<usize>) {
    let mut rng = FaultRng::from_env(&format!("byzantine-{mode}"));
    let byzantine = rng.below(4) as usize;
    let honest = others(4, &[byzantine]);
    let mut net = Devnet::generate(4);
    for i in &honest {
        net.start(*i);
    }
    net.start_byzantine(byzantine, mode);
    net.wait_height(&honest, 10, Duration::from_secs(60));
    (net, honest)
}

#[test]
fn an_equivocating_validator_is_recorded_and_honest_nodes_agree() {
    let (mut net, honest) = with_one_byzantine("equivocate");
    let deadline = Instant::now() + Duration::from_secs(30);
    while honest.iter().all(|i| evidence(&net, *i) == 0.0) {
        assert!(
            Instant::now() < deadline,
            "no honest node recorded the equivocation"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let h = net.top_height(&honest);
    net.wait_height(&honest, h + 5, Duration::from_secs(60));
    net.stop_all();
    agree(&net);
}

#[test]
fn a_validator_sending_bad_signatures_is_cut_off_and_the_chain_goes_on() {
    let (mut net, honest) = with_one_byzantine("bad-signatures");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !honest.iter().any(|i| {
        net.log(*i)
            .contains("peer misbehaved: vote with a bad signature")
    }) {
        assert!(Instant::now() < deadline, "nobody noticed the forged votes");
        std::thread::sleep(Duration::from_millis(200));
    }
    let h = net.top_height(&honest);
    net.wait_height(&honest, h + 10, Duration::from_secs(60));
    net.stop_all();
    agree(&net);
}

/// A proposer that puts a forbidden Ethereum transaction (a contract
/// creation by an address without `member` or `deployer`) in each block it
/// proposes. Validators vote on a block before executing it, so its blocks
/// are decided; execution refuses the transaction on every node alike: it
/// is not committed (no receipt, its sender's nonce unused, no contract),
/// and every node ends with the same state.
#[test]
fn a_forbidden_ethereum_transaction_a_proposer_includes_is_refused_at_execution() {
    let (mut net, honest) = with_one_byzantine("forbidden-eth-tx");
    let raw = palisade_tests::forbidden_creation();
    let raw_hex = format!("0x{}", hex::encode(&raw));
    let hash = format!("0x{}", hex::encode(palisade_types::keccak256(&raw)));
    let sender = palisade_ethtx::EthSigner::from_secret([0x5a; 32])
        .unwrap()
        .address();
    let carries_it = |net: &Devnet, h: u64| {
        let b = palisade_tests::rpc_call(
            &net.rpc_addr(honest[0]),
            "chain_getBlock",
            serde_json::json!([h]),
        )
        .unwrap();
        b["block"]["eth_txs"]
            .as_array()
            .is_some_and(|txs| txs.iter().any(|t| t.as_str() == Some(raw_hex.as_str())))
    };
    // A block of the Byzantine proposer's, with the creation, is decided.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut h = 1;
    loop {
        let top = net.top_height(&honest);
        while h <= top && !carries_it(&net, h) {
            h += 1;
        }
        if h <= top {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no block carrying the forbidden creation was decided"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The block says which of its transactions were refused.
    let hashes = palisade_tests::rpc_call(
        &net.rpc_addr(honest[0]),
        "chain_getBlockTxHashes",
        serde_json::json!([h]),
    )
    .unwrap();
    let at = hashes["txHashes"]
        .as_array()
        .and_then(|all| all.iter().position(|t| t.as_str() == Some(hash.as_str())))
        .expect("the block lists the creation");
    assert!(
        hashes["refused"]
            .as_array()
            .is_some_and(|r| r.iter().any(|i| i.as_u64() == Some(at as u64))),
        "{hashes}"
    );
    let top = net.top_height(&honest);
    net.wait_height(&honest, top + 3, Duration::from_secs(60));
    for i in &honest {
        let call = |method: &str, params| {
            palisade_tests::rpc_call(&net.rpc_addr(*i), method, params).unwrap()
        };
        let r = call("eth_getTransactionReceipt", serde_json::json!([hash]));
        assert!(r.is_null(), "node {i} committed it: {r}");
        let nonce = call(
            "eth_getTransactionCount",
            serde_json::json!([sender.to_string(), "latest"]),
        );
        assert_eq!(nonce, "0x0", "node {i}");
    }
    net.stop_all();
    agree(&net);
}

#[test]
fn each_validator_killed_in_turn_under_load_the_proposer_too() {
    let mut rng = FaultRng::from_env("kill-each-in-turn");
    let mut net = Devnet::generate(4);
    let keys = consensus_keys(&net);
    let set = Genesis::from_file(&net.home(0).join("config/genesis.json"))
        .unwrap()
        .validator_set()
        .unwrap();
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(60));
    let rpc = net.rpc_addrs();
    let load = Load::start(rpc.clone(), net.chain_id(), net.admin_key(), 100);
    let check = checker(&net);
    let mut order = vec![0usize, 1, 2, 3];
    rng.shuffle(&mut order);
    for victim in order {
        let rest = others(4, &[victim]);
        // Kill it when it is the proposer of the next height, so that
        // height's first round must time out and another validator take
        // over (the set is fixed in this scenario, so the schedule is known).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let next = Height(net.top_height(&rest) + 1);
            if palisade_consensus::proposer(&set, next, Round(0)) == keys[victim] {
                eprintln!("killing validator {victim}, proposer of height {next}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "validator {victim} never came up as proposer"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        net.kill9(victim);
        let h = net.top_height(&rest);
        net.wait_height(&rest, h + 3, Duration::from_secs(60));
        std::thread::sleep(rng.millis(0, 1000));
        net.start(victim);
        recovers(&mut net);
    }
    let sent = load.stop();
    // Let the last admitted transactions reach a block.
    let h = net.top_height(&[0, 1, 2, 3]);
    net.wait_height(&[0, 1, 2, 3], h + 3, Duration::from_secs(60));
    let acked = acknowledged(&rpc, &sent);
    assert!(!acked.is_empty(), "no transaction was acknowledged");
    assert_clean(&check.stop());
    net.stop_all();
    let audit = agree(&net);
    audit.assert_exactly_once(&acked);
    eprintln!(
        "{} admitted, {} acknowledged, {} in {} blocks",
        sent.len(),
        acked.len(),
        audit.txs(),
        audit.longest_height
    );
}

#[test]
fn rpc_abuse_is_refused_while_blocks_keep_coming() {
    let mut rng = FaultRng::from_env("rpc-abuse");
    let target = rng.below(4) as usize;
    let mut net = Devnet::generate(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(60));
    let check = checker(&net);
    let addr = net.rpc_addr(target);
    let before = net.top_height(&[0, 1, 2, 3]);

    // Garbage, an oversized body, a huge batch and deeply nested JSON, in
    // a seeded order, each answered with an error.
    type Abuse = (&'static str, Vec<u8>, fn(&str) -> bool);
    let mut abuses: Vec<Abuse> = vec![
        ("garbage", b"\x00\xffnot json{{{{".to_vec(), |r| {
            r.contains("-32700")
        }),
        ("oversized body", vec![b'x'; 2 * 1024 * 1024], |r| {
            r.starts_with("HTTP/1.1 413") || r.contains("-32007") || r.is_empty()
        }),
        (
            "huge batch",
            serde_json::to_vec(
                &(0..5_000)
                    .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "chain_getHeight"}))
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
            |r| r.contains("-32010"),
        ),
        (
            "deep JSON",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
            |r| r.contains("error"),
        ),
    ];
    rng.shuffle(&mut abuses);
    for (what, body, refused) in &abuses {
        let resp = raw_post(&addr, body);
        assert!(
            refused(&resp),
            "{what} not refused: {}",
            &resp[..resp.len().min(300)]
        );
    }

    // Many connections: more than the server's limit (256), held open.
    let sock: std::net::SocketAddr = addr.parse().unwrap();
    let held: Vec<std::net::TcpStream> = (0..400)
        .filter_map(|_| std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(1)).ok())
        .collect();
    eprintln!("holding {} connections to node {target}", held.len());
    // One more is told so, and closed, instead of waiting.
    let refused = raw_post(
        &addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"chain_getHeight"}"#,
    );
    assert!(
        refused.starts_with("HTTP/1.1 503") && refused.contains("too many open connections"),
        "a connection over the limit was not refused: {}",
        &refused[..refused.len().min(300)]
    );
    // Blocks keep coming on every node, the abused one included.
    let h = net.top_height(&[0, 1, 2, 3]);
    net.wait_height(&[0, 1, 2, 3], h + 5, Duration::from_secs(60));
    drop(held);

    // The abused node serves well-formed requests again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if rpc_call(&addr, "chain_getHeight", json!([]))
            .is_ok_and(|v| v.as_u64().unwrap_or(0) > before)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {target} stopped serving after the abuse"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    recovers(&mut net);
    assert_clean(&check.stop());
    net.stop_all();
    agree(&net);
}
