//! Validator processes on loopback: agreement, crash recovery, re-sync
//! and the permissioned network.

use std::process::Command;
use std::time::{Duration, Instant};

use palisade_consensus::proposer;
use palisade_genesis::Genesis;
use palisade_network::peer_id_of;
use palisade_tests::{
    acknowledged, audit, double_signs, http_get, metric, metric_in, palisade_bin, rpc_call,
    signed_in_log, signed_in_logs, wait_for_log, Devnet, FaultRng, Load,
};
use palisade_types::{Height, PublicKey, Round};

/// Every block's certificate verifies against the validator set of its
/// height, the chains of all nodes agree, and nothing is double-signed or
/// committed twice (see [`audit`]).
fn check_chains(net: &Devnet, min_height: usize) {
    let common = audit(net).common_height;
    assert!(common >= min_height, "only {common} common heights");
}

/// Node `i`'s metrics page, asked for until it answers (a busy machine
/// can keep one request waiting past its timeout).
fn scrape(net: &Devnet, i: usize) -> String {
    (0..10)
        .find_map(|try_| {
            if try_ > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            http_get(&net.metrics_addr(i), "/metrics")
        })
        .unwrap_or_else(|| panic!("node {i} never served its metrics"))
}

#[test]
fn four_validators_reach_height_20_with_identical_blocks() {
    let mut net = Devnet::generate(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 20, Duration::from_secs(120));
    // What each node had decided and synced by now: one that started late
    // under load fetched what it missed, however many blocks that was.
    // From here on all four are running, and each should decide at least
    // half of the heights itself.
    let mut top = 20;
    let before: Vec<(f64, f64)> = (0..4)
        .map(|i| {
            let body = scrape(&net, i);
            top = top.max(metric_in(&body, "palisade_height").unwrap_or(0.0) as u64);
            (
                metric_in(&body, "palisade_blocks_synced_total").unwrap_or(0.0),
                metric_in(&body, "palisade_block_step_seconds_count{step=\"decide\"}")
                    .unwrap_or(0.0),
            )
        })
        .collect();
    // Ten more heights for every node after its scrape.
    net.wait_height(&[0, 1, 2, 3], top + 10, Duration::from_secs(120));
    let mut proposed = 0.0;
    for (i, (synced_before, decided_before)) in before.into_iter().enumerate() {
        // Every committed height timed its commit and mempool update, and
        // its decision unless the block came by sync (a validator that
        // started late or fell one block behind fetches it); the proposals
        // were timed by whoever made them. One scrape, so the counters
        // below are from the same moment.
        let body = scrape(&net, i);
        let peers = metric_in(&body, "palisade_peers").unwrap_or(0.0);
        assert!(peers >= 3.0, "node {i}: {peers} peers");
        let step = |s: &str| {
            metric_in(
                &body,
                &format!("palisade_block_step_seconds_count{{step=\"{s}\"}}"),
            )
            .unwrap_or(0.0)
        };
        for s in ["commit", "mempool_update"] {
            assert!(step(s) >= 20.0, "node {i}: {s} timed {} times", step(s));
        }
        let synced = metric_in(&body, "palisade_blocks_synced_total").unwrap_or(0.0);
        let committed = metric_in(&body, "palisade_blocks_committed_total").unwrap_or(0.0);
        // A decision is timed before its block is counted as committed.
        assert!(
            step("decide") + synced >= committed && committed >= 20.0,
            "node {i}: {committed} committed, {} decided here, {synced} synced",
            step("decide")
        );
        let (synced_since, decided_since) =
            (synced - synced_before, step("decide") - decided_before);
        assert!(
            decided_since >= synced_since && decided_since + synced_since >= 10.0,
            "node {i}: of the heights since the first scrape, {decided_since} decided here and {synced_since} synced"
        );
        proposed += step("propose");
    }
    assert!(proposed >= 20.0, "{proposed} proposals timed");
    net.stop_all();
    check_chains(&net, 20);
}

#[test]
fn validator_killed_with_sigkill_restarts_and_catches_up() {
    let mut net = Devnet::generate(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 5, Duration::from_secs(60));
    net.kill9(3);
    // Three of four still have +2/3 and keep going.
    let h = net.height(0).unwrap();
    net.wait_height(&[0, 1, 2], h + 10, Duration::from_secs(60));
    net.start(3);
    let target = net.height(0).unwrap() + 3;
    net.wait_height(&[0, 1, 2, 3], target, Duration::from_secs(60));

    // Crash a voter over and over at arbitrary points of its rounds: after
    // each restart it must re-send what it signed, never sign anew, so no
    // honest peer ever records evidence against it.
    for (i, pause_ms) in [(1usize, 0u64), (1, 150), (2, 420), (1, 900)] {
        std::thread::sleep(Duration::from_millis(pause_ms));
        net.kill9(i);
        net.start(i);
        let h = net.height(0).unwrap_or(0);
        net.wait_height(&[0, 1, 2, 3], h + 2, Duration::from_secs(60));
    }
    for i in 0..4 {
        assert_eq!(
            net.metric(i, "palisade_evidence_total"),
            Some(0.0),
            "node {i} recorded equivocation evidence"
        );
    }
    let reached = (0..4).map(|i| net.height(i).unwrap()).min().unwrap();
    net.stop_all();
    check_chains(&net, reached as usize);
}

#[test]
fn wiped_validator_resyncs_from_height_zero() {
    let mut net = Devnet::generate(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 15, Duration::from_secs(90));
    net.stop(3);
    std::fs::remove_dir_all(net.home(3).join("data")).unwrap();
    let h = net.height(0).unwrap();
    net.wait_height(&[0, 1, 2], h + 5, Duration::from_secs(60));
    net.start(3);
    let target = net.height(0).unwrap() + 3;
    net.wait_height(&[0, 1, 2, 3], target, Duration::from_secs(90));
    assert!(
        net.log(3).contains("block sync started"),
        "node 3 did not sync"
    );
    // The wiped node had at least h blocks to fetch; they are counted as
    // synced, not as decided here.
    let synced = net.metric(3, "palisade_blocks_synced_total").unwrap_or(0.0);
    assert!(
        synced >= h as f64,
        "node 3 synced {synced} blocks, below {h}"
    );
    net.stop_all();
    check_chains(&net, target as usize);
}

/// Waits until nodes 0 and 1 hold the same height and it stays put for
/// three seconds (long past a propose timeout, so both have voted at the
/// next height); returns it.
fn wait_stuck(net: &Devnet) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    let mut since = Instant::now();
    loop {
        let now = (net.height(0), net.height(1));
        if last != Some(now) {
            last = Some(now);
            since = Instant::now();
        }
        if let (Some(a), Some(b)) = now {
            if a == b && since.elapsed() >= Duration::from_secs(3) {
                return a;
            }
        }
        assert!(
            Instant::now() < deadline,
            "nodes 0 and 1 never settled at one height: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The operator's "wipe data/ and re-sync" procedure, done at the worst
/// moment: the network is stuck at one height (two of four validators
/// down: no quorum, and no round ever completes) while the wiped validator
/// has signed there. It must come back knowing what it signed (the signer
/// state is kept beside the validator key, not in `data/`). One that forgot
/// would start the height afresh and sign again: a new block if it is the
/// height's proposer, a nil prevote where it had prevoted a block whose
/// proposer is down.
#[test]
fn wiping_data_while_the_network_is_stuck_never_double_signs() {
    let mut net = Devnet::generate(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(60));
    // Stop two validators until the stuck height is one where node 0 or 1
    // signed something a restart without its signer state would sign
    // differently. Killed together at a random moment: about every other
    // stuck height has a live proposer; one whose proposer is down and
    // whose proposal never arrived has only nil prevotes, and then the
    // network is let go and stopped again.
    let genesis = Genesis::from_file(&net.home(0).join("config/genesis.json")).unwrap();
    let validators = genesis.validator_set().unwrap();
    // `palisade testnet` names node i's validator `validator-i`.
    let node_of = |key: PublicKey| {
        (0..4).find(|i| {
            genesis
                .validators
                .iter()
                .any(|v| v.name == format!("validator-{i}") && v.consensus_key == key)
        })
    };
    let mut rng = FaultRng::from_env("wipe-stuck");
    let mut tries = 0;
    let (victim, stuck) = loop {
        tries += 1;
        assert!(tries <= 25, "never stuck at a height worth wiping at");
        std::thread::sleep(rng.millis(0, 1000));
        net.kill9(2);
        net.kill9(3);
        let stuck = wait_stuck(&net) + 1;
        let prevoted_a_block = |i: &usize| {
            signed_in_log(*i, &net.log(*i))
                .into_iter()
                .any(|s| s.height == stuck && s.step == "prevote" && s.block != "nil")
        };
        // A live proposer first (its peer then prevoted a proposal that
        // is sent again); else one that prevoted a block whose proposer is
        // down (after a wipe it would see no proposal and prevote nil).
        let first_proposer = node_of(proposer(&validators, Height(stuck), Round::ZERO));
        let pick = first_proposer
            .filter(|i| *i < 2)
            .or_else(|| [0, 1].into_iter().find(prevoted_a_block));
        if let Some(victim) = pick {
            break (victim, stuck);
        }
        net.start(2);
        net.start(3);
        net.wait_height(&[0, 1, 2, 3], stuck + 1, Duration::from_secs(60));
    };
    let other = 1 - victim;
    eprintln!("stuck at height {stuck} (try {tries}); wiping node {victim}");

    net.kill9(victim);
    std::fs::remove_dir_all(net.home(victim).join("data")).unwrap();
    net.start(victim);
    // It syncs back to the stuck height and stays there a while: long
    // enough to propose and to time out waiting for a proposal.
    net.wait_height(&[victim], stuck - 1, Duration::from_secs(60));
    let evidence = |net: &Devnet, i: usize| net.metric(i, "palisade_evidence_total").unwrap_or(0.0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && evidence(&net, other) == 0.0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        net.top_height(&[0, 1]),
        stuck - 1,
        "two of four validators committed a block"
    );

    // Quorum again: the network recovers and goes on.
    net.start(2);
    net.start(3);
    net.wait_height(&[0, 1, 2, 3], stuck + 3, Duration::from_secs(120));
    // What the validators logged signing, before and after the wipe, and
    // what their peers caught.
    let doubles = double_signs(&signed_in_logs(&net));
    assert!(doubles.is_empty(), "double signs: {doubles:#?}");
    for i in 0..4 {
        assert_eq!(
            net.metric(i, "palisade_evidence_total"),
            Some(0.0),
            "node {i} recorded equivocation evidence:\n{}",
            net.log_tail(i)
        );
    }
    net.stop_all();
    check_chains(&net, stuck as usize + 3);
}

#[test]
fn peer_with_a_key_outside_the_allowlist_cannot_join() {
    let mut net = Devnet::generate(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(60));

    // An outsider with the right genesis but a node key nobody allowed,
    // dialing every validator.
    let home = net.dir.path().join("outsider");
    let genesis_path = net.home(0).join("config/genesis.json");
    let out = Command::new(palisade_bin())
        .args(["init", "--observer", "--home"])
        .arg(&home)
        .arg("--genesis")
        .arg(&genesis_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let genesis = Genesis::from_file(&genesis_path).unwrap();
    // `palisade testnet` names node i's validator `validator-i`.
    let peers: Vec<String> = (0..4)
        .map(|i| {
            let v = genesis
                .validators
                .iter()
                .find(|v| v.name == format!("validator-{i}"))
                .unwrap();
            format!(
                "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                usize::from(net.p2p_base) + i,
                peer_id_of(&v.node_key).unwrap()
            )
        })
        .collect();
    let metrics_addr = net.metrics_addr(4);
    let log_path = net.dir.path().join("outsider.log");
    let mut child = net.spawn_extra(&home, 4, &peers, &log_path);
    let refused = wait_for_log(
        &net.log_path(0),
        "refused a connection from a peer not on the allowlist",
        Duration::from_secs(20),
    );
    let h = net.height(0).unwrap();
    net.wait_height(&[0, 1, 2, 3], h + 5, Duration::from_secs(60));
    let outsider_height = metric(&metrics_addr, "palisade_height");
    let running = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    let outsider_log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(running, "outsider exited: {outsider_log}");
    assert!(refused, "validator 0 never logged refusing the outsider");
    assert_eq!(
        outsider_height,
        Some(0.0),
        "outsider got blocks: {outsider_log}"
    );
    for i in 0..4 {
        assert!(
            net.metric(i, "palisade_peers").unwrap() <= 3.0,
            "node {i} admitted a fifth peer"
        );
    }
}

#[test]
fn validators_restarted_mid_load_never_double_sign() {
    let mut net = Devnet::generate(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(60));
    let rpc = net.rpc_addrs();
    let load = Load::start(rpc.clone(), net.chain_id(), net.admin_key(), 200);

    // Kill -9 and restart validators (the proposer of the moment among
    // them) while transactions flow, at varying points of their rounds.
    for (i, pause_ms) in [(0usize, 300u64), (2, 50), (0, 700), (3, 0), (1, 450)] {
        std::thread::sleep(Duration::from_millis(pause_ms));
        net.kill9(i);
        std::thread::sleep(Duration::from_millis(200));
        net.start(i);
        let h = net.top_height(&[0, 1, 2, 3]);
        net.wait_height(&[0, 1, 2, 3], h + 2, Duration::from_secs(60));
    }
    // Restarts can strand the sender's next nonce on a killed node; keep
    // the load on until enough has gone through to make the checks below
    // mean something.
    let enough = load.wait_committed(60, Duration::from_secs(60));
    let sent = load.stop();
    let h = net.top_height(&[0, 1, 2, 3]);
    net.wait_height(&[0, 1, 2, 3], h + 3, Duration::from_secs(60));
    for i in 0..4 {
        assert_eq!(
            net.metric(i, "palisade_evidence_total"),
            Some(0.0),
            "node {i} recorded equivocation evidence"
        );
    }
    let reached = (0..4).map(|i| net.height(i).unwrap()).min().unwrap();
    let acked = acknowledged(&rpc, &sent);
    net.stop_all();
    // Every certificate valid, chains equal, no double sign, no
    // transaction twice; what nodes acknowledged is in exactly once.
    let audit = audit(&net);
    assert!(audit.common_height >= reached as usize);
    audit.assert_exactly_once(&acked);
    eprintln!("{} admitted, {} acknowledged", sent.len(), acked.len());
    assert!(
        enough,
        "the chain committed fewer than 60 of the load's transactions in a minute"
    );
    assert!(
        acked.len() >= 50,
        "only {} txs acknowledged of {} sent",
        acked.len(),
        sent.len()
    );
}

#[test]
fn observer_follows_the_chain_and_serves_rpc() {
    let mut net = Devnet::generate(4);
    let (mut child, rpc_addr, log_path) = net.start_observer();
    net.wait_height(&[0, 1, 2, 3], 10, Duration::from_secs(60));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut observed = 0;
    while std::time::Instant::now() < deadline {
        if let Ok(h) = rpc_call(&rpc_addr, "chain_getHeight", serde_json::json!([])) {
            observed = h.as_u64().unwrap_or(0);
            if observed >= 10 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = rpc_call(&rpc_addr, "system_status", serde_json::json!([]));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        observed >= 10,
        "observer at height {observed}: {}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    let status = status.unwrap();
    assert!(
        status["validator"].is_null(),
        "observer claims to be a validator"
    );
    // Same chain as the validators.
    let block = rpc_call(&rpc_addr, "chain_getBlock", serde_json::json!([5]));
    let validator_block =
        rpc_call(&net.rpc_addr(0), "chain_getBlock", serde_json::json!([5])).unwrap();
    if let Ok(b) = block {
        assert_eq!(b["hash"], validator_block["hash"]);
    }
}

#[test]
fn bench_measures_a_running_network() {
    let mut net = Devnet::generate_with(4, &["--bench-accounts", "300"]);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(60));
    let rpc = net.rpc_addrs();
    let metrics: Vec<String> = (0..4).map(|i| net.metrics_addr(i)).collect();
    let out = Command::new(palisade_bin())
        .args([
            "bench",
            "--accounts",
            "300",
            "--rate",
            "300",
            "--duration-s",
            "3",
            // All 900 must be seen committed: allow a slow drain (it still
            // ends after 5 s without a commit).
            "--drain-s",
            "120",
            "--json",
        ])
        .arg("--rpc")
        .arg(rpc.join(","))
        .arg("--metrics")
        .arg(metrics.join(","))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["sent"], 900);
    assert_eq!(r["accepted"], 900, "{r}");
    assert_eq!(r["committed"], 900, "{r}");
    let p50 = r["latency_ms_p50"].as_f64().unwrap();
    let p99 = r["latency_ms_p99"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= p99, "{r}");
    assert!(
        r["cpu_s_per_1000_tx_per_node"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    assert!(r["max_rss_mib"].as_f64().unwrap() > 1.0, "{r}");
    // Submitting and watching 900 transactions takes the generator some CPU.
    assert!(r["generator_cpu_s"].as_f64().unwrap() > 0.0, "{r}");
    // The chain really holds them: 900 transfers moved 900 tokens in a ring.
    net.stop_all();
    assert_eq!(audit(&net).txs(), 900);
}
