//! Consensus drivers wired by an in-memory hub: real state machines, real
//! ledgers and signer files, real timers; only the transport is a channel.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_consensus::{Config, Message, TimeoutConfig, Verified};
use palisade_ledger::signer_store::SignerStore;
use palisade_ledger::Ledger;
use palisade_network::wire::CommittedBlock;
use palisade_node::app::App;
use palisade_node::driver::{Committed, Driver, DriverConfig, Rejected, SyncLink};
use palisade_node::mempool::{Mempool, MempoolConfig};
use palisade_runtime::{initial_state, ChainParams, InitialState, Runtime, ValidatorInfo};
use palisade_types::{Action, ChainId, Hash, Height, Keypair, Role, Transaction};
use tokio::sync::{broadcast, mpsc, watch};

fn k(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn chain() -> ChainId {
    ChainId::new("driver-test").unwrap()
}

fn init(n: usize) -> InitialState {
    InitialState {
        evm_accounts: Vec::new(),
        params: ChainParams::default(),
        accounts: vec![(k(1).address(), 1_000_000, vec![Role::Admin, Role::Member])],
        validators: (0..n)
            .map(|i| ValidatorInfo {
                consensus_key: k(100 + i as u8).public_key(),
                node_key: k(150 + i as u8).public_key(),
                power: 1,
            })
            .collect(),
    }
}

struct Running {
    app: Arc<App>,
    mempool: Arc<Mutex<Mempool>>,
    committed: broadcast::Receiver<Committed>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), palisade_node::driver::DriverError>>,
}

fn start(
    dir: &Path,
    n: usize,
    index: usize,
    inbound: mpsc::Receiver<Verified<Message>>,
    outbound: mpsc::Sender<Message>,
) -> Running {
    start_with_sync(
        dir,
        n,
        index,
        inbound,
        outbound,
        Duration::from_millis(5),
        None,
    )
}

fn start_with_sync(
    dir: &Path,
    n: usize,
    index: usize,
    inbound: mpsc::Receiver<Verified<Message>>,
    outbound: mpsc::Sender<Message>,
    block_interval: Duration,
    sync: Option<SyncLink>,
) -> Running {
    start_paced(dir, n, index, inbound, outbound, block_interval, sync, None)
}

#[allow(clippy::too_many_arguments)]
fn start_paced(
    dir: &Path,
    n: usize,
    index: usize,
    inbound: mpsc::Receiver<Verified<Message>>,
    outbound: mpsc::Sender<Message>,
    block_interval: Duration,
    sync: Option<SyncLink>,
    idle_gap: Option<Duration>,
) -> Running {
    let init = init(n);
    let ledger = Ledger::open(&dir.join("data")).unwrap();
    let set = palisade_runtime::to_set(&init.validators).unwrap();
    ledger
        .init_genesis(
            &chain(),
            Hash([5; 32]),
            &initial_state(&init).unwrap(),
            &set,
        )
        .unwrap();
    let app = Arc::new(App::new(
        Runtime::new(chain()),
        Arc::new(ledger),
        Hash([5; 32]),
    ));
    let mempool = Arc::new(Mutex::new(Mempool::new(MempoolConfig::default())));
    let (ctx, crx) = broadcast::channel(1024);
    let (stop, stop_rx) = watch::channel(false);
    let cfg = DriverConfig {
        consensus: Config {
            chain_id: chain(),
            timeouts: TimeoutConfig {
                propose_ms: 400,
                propose_delta_ms: 100,
                prevote_ms: 200,
                prevote_delta_ms: 50,
                precommit_ms: 200,
                precommit_delta_ms: 50,
                rebroadcast_ms: 300,
                max_ms: 3_000,
            },
        },
        block_interval,
        idle_gap,
    };
    let driver = Driver::new(
        cfg,
        app.clone(),
        mempool.clone(),
        SignerStore::new(dir.join("data").join("signer_state")),
        Some(k(100 + index as u8)),
        outbound,
        ctx,
    );
    let driver = match sync {
        Some(link) => driver.with_sync(link),
        None => driver,
    };
    let task = tokio::spawn(driver.run(inbound, stop_rx));
    Running {
        app,
        mempool,
        committed: crx,
        stop,
        task,
    }
}

/// Connects n drivers: what one sends, all others receive.
struct Hub {
    inboxes: Vec<mpsc::Sender<Verified<Message>>>,
}

fn network(dirs: &[tempfile::TempDir]) -> Vec<Running> {
    network_paced(dirs, None)
}

/// [`network`] whose validators make no empty blocks but one every
/// `idle_gap` (when `Some`).
fn network_paced(dirs: &[tempfile::TempDir], idle_gap: Option<Duration>) -> Vec<Running> {
    let n = dirs.len();
    let (out_tx, mut out_rx) = mpsc::channel::<(usize, Message)>(10_000);
    let mut inboxes = Vec::new();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let (in_tx, in_rx) = mpsc::channel(10_000);
        inboxes.push(in_tx);
        let (node_out, mut node_out_rx) = mpsc::channel::<Message>(10_000);
        let fwd = out_tx.clone();
        tokio::spawn(async move {
            while let Some(m) = node_out_rx.recv().await {
                if fwd.send((i, m)).await.is_err() {
                    break;
                }
            }
        });
        nodes.push(start_paced(
            dir.path(),
            n,
            i,
            in_rx,
            node_out,
            Duration::from_millis(5),
            None,
            idle_gap,
        ));
    }
    let hub = Hub { inboxes };
    tokio::spawn(async move {
        while let Some((from, m)) = out_rx.recv().await {
            // The network edge: checked once, as a node's network does.
            let Ok(m) = Verified::check(&chain(), m) else {
                continue;
            };
            for (to, inbox) in hub.inboxes.iter().enumerate() {
                if to != from {
                    let _ = inbox.try_send(m.clone());
                }
            }
        }
    });
    nodes
}

async fn wait_for_height(node: &mut Running, h: u64) {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if node.app.ledger().latest_height().unwrap() >= Height(h) {
                return;
            }
            let _ = node.committed.recv().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("height {h} not reached in 60 s"));
}

async fn stop_all(nodes: Vec<Running>) {
    for n in &nodes {
        let _ = n.stop.send(true);
    }
    for n in nodes {
        n.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_validator_commits_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let (_in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, mut out_rx) = mpsc::channel(1024);
    tokio::spawn(async move { while out_rx.recv().await.is_some() {} });
    let mut node = start(dir.path(), 1, 0, in_rx, out_tx);
    for nonce in 0..5 {
        transfer(&node, nonce);
    }
    wait_for_height(&mut node, 3).await;
    let total: usize = (1..=3)
        .map(|h| {
            node.app
                .ledger()
                .block(Height(h))
                .unwrap()
                .unwrap()
                .txs
                .len()
        })
        .sum();
    assert_eq!(total, 5, "all five transfers committed");
    assert!(node.mempool.lock().unwrap().is_empty());
    stop_all(vec![node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heights_start_a_block_interval_apart() {
    // A lone validator decides an empty height in a few milliseconds, so
    // without the interval its blocks would follow each other at once.
    let interval = Duration::from_millis(120);
    let dir = tempfile::tempdir().unwrap();
    let (_in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, mut out_rx) = mpsc::channel(1024);
    tokio::spawn(async move { while out_rx.recv().await.is_some() {} });
    let mut node = start_with_sync(dir.path(), 1, 0, in_rx, out_tx, interval, None);
    wait_for_height(&mut node, 7).await;
    let t = |h: u64| block_time_ms(&node, h);
    // A block is stamped when its proposal is built, at or after its
    // height's start, which comes an interval after the last one's start.
    // Height 2 starts after block 1 was built, so six blocks on, at least
    // five intervals have passed however late any proposal was.
    let span = t(7) - t(1);
    let least = 5 * interval.as_millis() as u64;
    assert!(span >= least, "blocks 1 to 7 in {span} ms");
    stop_all(vec![node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_agree_and_survive_a_full_restart() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = network(&dirs);
    for n in nodes.iter_mut() {
        wait_for_height(n, 5).await;
    }
    let reached = nodes
        .iter()
        .map(|n| n.app.ledger().latest_height().unwrap())
        .min()
        .unwrap();
    for h in 1..=reached.get() {
        let hashes: Vec<_> = nodes
            .iter()
            .map(|n| n.app.ledger().block(Height(h)).unwrap().unwrap().hash())
            .collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "fork at height {h}: {hashes:?}"
        );
    }
    stop_all(nodes).await;

    // Everyone restarts from disk (ledger and signer state) and goes on.
    let mut nodes = network(&dirs);
    let target = reached.get() + 3;
    for n in nodes.iter_mut() {
        wait_for_height(n, target).await;
    }
    for h in 1..=target {
        let hashes: Vec<_> = nodes
            .iter()
            .filter_map(|n| n.app.ledger().block(Height(h)).unwrap())
            .map(|b| b.hash())
            .collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "fork at height {h}"
        );
    }
    // Every committed block carries a commit of > 2/3 of the power.
    let l = nodes[0].app.ledger();
    for h in 1..=target {
        let c = l.commit(Height(h)).unwrap().unwrap();
        let set = l.validators(Height(h)).unwrap().unwrap();
        c.verify(&chain(), &set).unwrap();
    }
    stop_all(nodes).await;
}

/// A block from sync whose certificate does not verify changes nothing:
/// the node goes on proposing and committing, and the block is handed back
/// as rejected (so the syncer penalizes whoever served it). Before, the
/// driver marked the height as decided by sync first, then consensus
/// dropped the bad certificate, and the node never proposed that height.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_block_with_a_bad_certificate_changes_nothing() {
    let interval = Duration::from_millis(400);
    let dir = tempfile::tempdir().unwrap();
    let (_in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, mut out_rx) = mpsc::channel(1024);
    tokio::spawn(async move { while out_rx.recv().await.is_some() {} });
    let (blocks_tx, blocks_rx) = mpsc::channel(16);
    let (rejected_tx, mut rejected_rx) = mpsc::channel(16);
    let link = SyncLink {
        blocks: blocks_rx,
        wake: Arc::new(tokio::sync::Notify::new()),
        rejected: rejected_tx,
    };
    let mut node = start_with_sync(dir.path(), 1, 0, in_rx, out_tx, interval, Some(link));
    wait_for_height(&mut node, 1).await;

    // Height 2 "committed" by an outsider, sent while the node waits out
    // its block interval.
    let mut block = node.app.ledger().block(Height(1)).unwrap().unwrap();
    block.header.height = Height(2);
    let outsider = k(42);
    let hash = block.hash();
    let commit = crate::precommitted(&chain(), &[outsider], &block);
    blocks_tx
        .send(CommittedBlock { block, commit })
        .await
        .unwrap();

    let rejected: Rejected = tokio::time::timeout(Duration::from_secs(10), rejected_rx.recv())
        .await
        .expect("the bad block was not handed back")
        .unwrap();
    assert_eq!(rejected.height, Height(2));
    wait_for_height(&mut node, 3).await;
    assert_ne!(
        node.app.ledger().block(Height(2)).unwrap().unwrap().hash(),
        hash
    );
    stop_all(vec![node]).await;
}

fn transfer(node: &Running, nonce: u64) {
    let tx = Transaction {
        chain_id: chain(),
        nonce,
        signer: k(1).address(),
        action: Action::Transfer {
            to: k(2).address(),
            amount: 1,
        },
    }
    .sign(&k(1));
    let next = node.app.ledger().latest_height().unwrap().next().unwrap();
    node.mempool
        .lock()
        .unwrap()
        .add(tx, node.app.runtime(), node.app.ledger().as_ref(), next)
        .unwrap();
}

fn height(node: &Running) -> u64 {
    node.app.ledger().latest_height().unwrap().get()
}

/// The time in block `h`'s header, in ms since the Unix epoch.
fn block_time_ms(node: &Running, h: u64) -> u64 {
    let block = node.app.ledger().block(Height(h)).unwrap().unwrap();
    block.header.time.as_millis()
}

/// The five blocks after block `h` (one with transactions) came at the
/// doubling gaps of a 5 ms interval, 10, 20, 40, 80 and 160 ms, not at
/// the interval and not at the idle gap. Read from the blocks' times, not
/// the test's clock, which a busy machine stretches. A block is stamped
/// when its proposer builds it, at or after its height starts; the first
/// node to start a height does so a gap after its own start of the height
/// before, which came after the block before that was built. So two
/// blocks on, at least the later gap has passed, however late anyone was:
/// over 40 + 160 ms for the five, over 160 ms for the last two. The idle
/// gap (600 s in these tests) would be far over the upper bound.
fn assert_follow_ups(node: &Running, h: u64) {
    let t = |k: u64| block_time_ms(node, h + k);
    let (all, last_two) = (t(5) - t(0), t(5) - t(3));
    assert!(
        (200..=30_000).contains(&all) && last_two >= 160,
        "blocks after {h}: five gaps in {all} ms, the last two in {last_two} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_network_holds_heights_until_a_transaction_arrives() {
    // Blocks 5 ms apart when they may be empty: a second of idling would
    // make some hundred of them.
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = network_paced(&dirs, Some(Duration::from_secs(600)));
    // Every node proposes the first height it starts (nothing to wait
    // for after a start).
    wait_for_height(&mut nodes[0], 1).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let idle = height(&nodes[0]);
    assert!(idle <= 2, "an idle network made blocks: height {idle}");
    for round in 0..3u64 {
        // Into every pool, as gossip would have it: whoever proposes next
        // has it.
        let before = height(&nodes[0]);
        for node in &nodes {
            transfer(node, round);
        }
        wait_for_height(&mut nodes[0], before + 1).await;
        let b = nodes[0]
            .app
            .ledger()
            .block(Height(before + 1))
            .unwrap()
            .unwrap();
        assert_eq!(b.txs.len(), 1, "the block holds the transfer");
        // Then blocks at doubling gaps from 10 ms (the least step; 5 ms
        // interval here): 10, 20, 40, 80, 160 ms, then 320 ms...
        wait_for_height(&mut nodes[0], before + 6).await;
        assert_follow_ups(&nodes[0], before + 1);
    }
    // Only one node has the next one (its gossip lost): the others start
    // the height on its messages, and it is committed once that node
    // proposes, within a round of proposers.
    let before = height(&nodes[2]);
    transfer(&nodes[2], 3);
    tokio::time::timeout(Duration::from_secs(30), async {
        while !nodes[2].mempool.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the transfer known to one node is committed");
    let with_it = (before + 1..=height(&nodes[2]))
        .find(|h| {
            let b = nodes[2].app.ledger().block(Height(*h)).unwrap().unwrap();
            !b.txs.is_empty()
        })
        .expect("a block holds the transfer");
    assert!(with_it <= before + 12, "{before} -> {with_it}");
    // And quieter once committed.
    wait_for_height(&mut nodes[2], with_it + 5).await;
    assert_follow_ups(&nodes[2], with_it);
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_network_still_makes_a_block_every_empty_block_interval() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = network_paced(&dirs, Some(Duration::from_millis(400)));
    wait_for_height(&mut nodes[0], 1).await;
    let start = height(&nodes[0]);
    // Never none: they keep coming.
    wait_for_height(&mut nodes[0], start + 4).await;
    // Never at the 5 ms interval: 400 ms apart, read from the blocks'
    // times as `assert_follow_ups` does (two blocks on, at least one idle
    // gap has passed). Nor much slower.
    let span = block_time_ms(&nodes[0], start + 4) - block_time_ms(&nodes[0], start);
    assert!(
        (800..=10_000).contains(&span),
        "4 empty blocks in {span} ms"
    );
    stop_all(nodes).await;
}
