//! Supervision and health of a whole node, in process: healthy while it
//! commits alone, and a background task that dies stops the node with an
//! error naming it, its health saying why.

use std::time::Duration;

use palisade_genesis::{ConsensusParams, Genesis, GenesisAccount, GenesisValidator};
use palisade_node::config::NodeConfig;
use palisade_node::home::{write_key, Home};
use palisade_node::node::{Node, NodeError};
use palisade_node::supervisor::parse_fault;
use palisade_types::{ChainId, Keypair, Role};

/// A one-validator home like `palisade dev`'s, on free ports.
fn dev_home(dir: &std::path::Path) -> (Home, NodeConfig) {
    dev_home_with(dir, Vec::new())
}

/// [`dev_home`] with these EVM accounts in its genesis.
pub(crate) fn dev_home_with(
    dir: &std::path::Path,
    evm_accounts: Vec<palisade_genesis::GenesisEvmAccount>,
) -> (Home, NodeConfig) {
    let home = Home::new(dir);
    let node_key = Keypair::from_seed([1; 32]);
    let validator = Keypair::from_seed([2; 32]);
    write_key(&home.node_key_file(), &node_key).unwrap();
    write_key(&home.validator_key_file(), &validator).unwrap();
    let genesis = Genesis {
        evm_accounts,
        chain_id: ChainId::new("health-test").unwrap(),
        genesis_time_ms: palisade_node::app::now_ms(),
        consensus: ConsensusParams {
            block_interval_ms: 50,
            ..ConsensusParams::default()
        },
        params: Default::default(),
        validators: vec![GenesisValidator {
            name: "v".into(),
            consensus_key: validator.public_key(),
            node_key: node_key.public_key(),
            power: 10,
        }],
        accounts: vec![GenesisAccount {
            address: validator.address(),
            balance: 1_000,
            roles: vec![Role::Admin, Role::Member],
        }],
    };
    std::fs::create_dir_all(home.genesis_file().parent().unwrap()).unwrap();
    std::fs::write(home.genesis_file(), genesis.to_json()).unwrap();
    let mut cfg = NodeConfig::default();
    cfg.p2p.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    cfg.rpc.listen = "127.0.0.1:0".parse().unwrap();
    cfg.metrics.enabled = false;
    (home, cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dying_task_makes_the_node_unhealthy_and_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let (home, cfg) = dev_home(dir.path());
    let node = Node::open(home, cfg)
        .unwrap()
        .with_task_fault(Some(parse_fault("sync:8000").unwrap()));
    let ctx = node.ctx.clone();
    let run = tokio::spawn(node.run(std::future::pending()));

    // Alone, without peers, but committing by itself: healthy.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(7);
    loop {
        let h = ctx.health();
        if h.height >= 2 {
            assert!(h.ok, "{h:?}");
            assert_eq!(h.peers, 0);
            assert!(h.last_block_age_ms < 1_000, "{h:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no blocks: {h:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The sync task panics at 8 s: the node stops, saying which and why.
    let ended = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the node kept running without its sync task")
        .unwrap();
    match ended {
        Err(NodeError::TaskStopped { task, why }) => {
            assert_eq!(task, "sync");
            assert!(why.contains("panicked"), "{why}");
        }
        other => panic!("unexpected end: {other:?}"),
    }
    let h = ctx.health();
    assert!(!h.ok);
    assert!(
        h.reasons
            .iter()
            .any(|r| r.starts_with("sync stopped: panicked")),
        "{h:?}"
    );
}

/// Gossiped Ethereum transactions, several messages admitted at once: a
/// message with a transaction that does not decode is invalid and none of
/// it is pooled, not even what follows the bad one; the messages beside it
/// are valid and pooled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_gossip_message_among_several_is_the_only_one_refused() {
    use palisade_ethtx::{Eip1559, EthSigner};
    use palisade_types::{EthTransaction, EvmAddress};
    let signer = EthSigner::from_secret([9; 32]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (home, cfg) = dev_home_with(
        dir.path(),
        vec![palisade_genesis::GenesisEvmAccount {
            address: EvmAddress(signer.address().0 .0),
            balance: 0,
            roles: vec![Role::Member],
        }],
    );
    let node = Node::open(home, cfg).unwrap();
    let ctx = node.ctx.clone();
    let chain_id = ctx.app.params().unwrap().evm_chain_id;
    let tx = |nonce: u64| {
        let raw = signer.sign_eip1559(&Eip1559::transfer(
            chain_id,
            nonce,
            palisade_ethtx::Address::repeat_byte(7),
            0,
        ));
        EthTransaction(palisade_types::BoundedBytes::new(raw).unwrap())
    };
    let garbage = EthTransaction(palisade_types::BoundedBytes::new(vec![0x02, 0xc0]).unwrap());
    let (a, b, c) = (tx(0), tx(1), tx(2));
    let verdicts = ctx.admit_gossiped_eth(vec![
        vec![a.clone()],
        vec![garbage, b.clone()],
        vec![c.clone()],
    ]);
    use palisade_network::Verdict;
    assert!(
        matches!(
            verdicts[..],
            [Verdict::Valid, Verdict::Invalid, Verdict::Valid]
        ),
        "{verdicts:?}"
    );
    let pool = ctx.mempool.lock().unwrap();
    assert!(pool.eth.contains(&a.hash()));
    assert!(!pool.eth.contains(&b.hash()));
    assert!(pool.eth.contains(&c.hash()));
}
