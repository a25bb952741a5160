//! The p2p layer: wire formats against `docs/p2p.md`, bounded decoding,
//! and real libp2p nodes on loopback (gossip, allowlist, penalties, sync).

use std::collections::{BTreeMap, HashSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use palisade_consensus::Message;
use palisade_network::rate::PeerLimits;
use palisade_network::wire::{
    ConsensusGossip, SyncRequest, SyncResponse, TxBatch, MAX_SYNC_BLOCKS, MAX_TX_BATCH_BYTES,
};
use palisade_network::{
    self as network, identity_from_seed, NetEvent, NetworkConfig, NetworkHandle, NetworkMetrics,
    SyncSource,
};
use palisade_types::test_vectors::compare_doc;
use palisade_types::{
    encode, ChainId, Hash, Height, Keypair, Round, Signature, Transaction, Vote, VoteType,
};
use tokio::sync::mpsc;

const DOC: &str = include_str!("../../../../docs/p2p.md");

#[test]
fn p2p_document_matches_the_code() {
    if let Err(e) = compare_doc(DOC, &network::vectors::all()) {
        panic!("docs/p2p.md: {e}");
    }
}

fn chain() -> ChainId {
    ChainId::new("p2p-test").unwrap()
}

fn vote(key: &Keypair, h: u64) -> palisade_types::SignedVote {
    Vote {
        vote_type: VoteType::Prevote,
        height: Height(h),
        round: Round(0),
        block_hash: Some(Hash([1; 32])),
        validator: key.public_key(),
    }
    .sign(&chain(), key)
}

#[test]
fn gossip_decoding_is_bounded_and_canonical() {
    let g = ConsensusGossip::new(1, &Message::Vote(vote(&Keypair::from_seed([3; 32]), 1)));
    let bytes = g.encode();
    assert_eq!(ConsensusGossip::decode(&bytes).unwrap(), g);
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(ConsensusGossip::decode(&trailing).is_err());
    assert!(ConsensusGossip::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut bad_tag = bytes.clone();
    bad_tag[8] = 7;
    assert!(ConsensusGossip::decode(&bad_tag).is_err());

    assert!(TxBatch::decode(&vec![0u8; MAX_TX_BATCH_BYTES + 1]).is_err());
    // A length prefix claiming a billion transactions in a few bytes.
    assert!(TxBatch::decode(&[0xff, 0xff, 0xff, 0x3f, 1, 2, 3]).is_err());
}

#[test]
fn sync_requests_out_of_bounds_are_refused() {
    for count in [0, MAX_SYNC_BLOCKS + 1, u32::MAX] {
        let bytes = encode(&SyncRequest::Blocks {
            from: Height(1),
            count,
        });
        assert!(SyncRequest::decode(&bytes).is_err(), "count {count}");
    }
    let ok = encode(&SyncRequest::Blocks {
        from: Height(1),
        count: MAX_SYNC_BLOCKS,
    });
    assert!(SyncRequest::decode(&ok).is_ok());
    let mut trailing = encode(&SyncResponse::Status { height: Height(3) });
    trailing.push(1);
    assert!(SyncResponse::decode(&trailing).is_err());
}

#[test]
fn a_set_changes_answer_of_more_than_its_bound_is_refused() {
    use palisade_network::wire::MAX_SET_CHANGES;
    use palisade_types::{
        BlockHeader, CommitCertificate, CommitSig, SetChange, Timestamp, Validator, ValidatorSet,
    };
    let key = Keypair::from_seed([4; 32]);
    let set = ValidatorSet::new(vec![Validator {
        public_key: key.public_key(),
        power: 1,
    }])
    .unwrap();
    let change = |h: u64| SetChange {
        header: BlockHeader {
            chain_id: chain(),
            height: Height(h),
            time: Timestamp(h),
            last_block_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            receipts_root: Hash::ZERO,
            validators_hash: set.hash(),
            next_validators_hash: Hash([h as u8; 32]),
            proposer: key.public_key(),
            last_commit_hash: Hash::ZERO,
        },
        commit: CommitCertificate::new(
            Height(h),
            Round(0),
            Hash::ZERO,
            vec![CommitSig {
                validator: key.public_key(),
                signature: vote(&key, h).signature,
            }],
        )
        .unwrap(),
        next_validators: set.clone(),
    };
    let answer = |n: usize| SyncResponse::SetChanges {
        changes: (1..=n as u64).map(change).collect(),
    };
    let most = answer(MAX_SET_CHANGES);
    assert_eq!(SyncResponse::decode(&encode(&most)).unwrap(), most);
    assert!(SyncResponse::decode(&encode(&answer(MAX_SET_CHANGES + 1))).is_err());
}

struct FixedHeight(u64);

impl SyncSource for FixedHeight {
    fn serve(&self, request: SyncRequest) -> SyncResponse {
        match request {
            SyncRequest::Status => SyncResponse::Status {
                height: Height(self.0),
            },
            SyncRequest::Blocks { .. } => SyncResponse::Blocks {
                latest: Height(self.0),
                blocks: Vec::new(),
            },
            SyncRequest::Snapshots => SyncResponse::Snapshots {
                manifests: Vec::new(),
            },
            SyncRequest::Chunk { .. } => SyncResponse::Chunk { chunk: None },
            SyncRequest::SetChanges { .. } => SyncResponse::SetChanges {
                changes: Vec::new(),
            },
        }
    }
}

/// Drops and penalties by reason, as the node's metrics count them.
#[derive(Debug, Default)]
struct Counts {
    drops: Mutex<BTreeMap<String, u64>>,
    penalties: Mutex<BTreeMap<String, u64>>,
}

impl Counts {
    fn drops(&self, reason: &str) -> u64 {
        self.drops.lock().unwrap().get(reason).copied().unwrap_or(0)
    }
    fn penalties(&self, reason: &str) -> u64 {
        self.penalties
            .lock()
            .unwrap()
            .get(reason)
            .copied()
            .unwrap_or(0)
    }
}

impl NetworkMetrics for Counts {
    fn count_drop(&self, reason: &str) {
        *self
            .drops
            .lock()
            .unwrap()
            .entry(reason.to_string())
            .or_default() += 1;
    }
    fn count_penalty(&self, reason: &str) {
        *self
            .penalties
            .lock()
            .unwrap()
            .entry(reason.to_string())
            .or_default() += 1;
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct TestNode {
    net: NetworkHandle,
    metrics: Arc<Counts>,
    events: mpsc::Receiver<NetEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn peer(seed: u8) -> PeerId {
    identity_from_seed([seed; 32])
        .unwrap()
        .public()
        .to_peer_id()
}

/// Holds no files.
struct NoFiles;

impl network::BlobServer for NoFiles {
    fn serve(
        &self,
        _: PeerId,
        _: palisade_files::wire::BlobRequest,
    ) -> futures::future::BoxFuture<'static, palisade_files::wire::BlobResponse> {
        Box::pin(async {
            palisade_files::wire::BlobResponse::Have {
                holding: palisade_files::wire::Holding::Nothing,
            }
        })
    }
}

fn node(seed: u8, port: u16, dial: &[(u8, u16)], allowed: &[u8], height: u64) -> TestNode {
    node_with(seed, port, dial, allowed, height, PeerLimits::default())
}

fn node_with(
    seed: u8,
    port: u16,
    dial: &[(u8, u16)],
    allowed: &[u8],
    height: u64,
    limits: PeerLimits,
) -> TestNode {
    let metrics = Arc::new(Counts::default());
    let cfg = NetworkConfig {
        chain_id: chain(),
        listen: vec![format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()],
        peers: dial
            .iter()
            .map(|(s, p)| {
                format!("/ip4/127.0.0.1/tcp/{p}/p2p/{}", peer(*s))
                    .parse()
                    .unwrap()
            })
            .collect(),
        allowed: allowed.iter().map(|s| peer(*s)).collect::<HashSet<_>>(),
        max_peers: 8,
        sync_timeout: Duration::from_secs(5),
        limits,
        metrics: metrics.clone(),
        blob_timeout: Duration::from_secs(5),
    };
    let (net, events, task) = network::start(
        cfg,
        identity_from_seed([seed; 32]).unwrap(),
        Arc::new(FixedHeight(height)),
        Arc::new(NoFiles),
    )
    .unwrap();
    TestNode {
        net,
        metrics,
        events,
        task,
    }
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn next_consensus(events: &mut mpsc::Receiver<NetEvent>) -> Option<Message> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(NetEvent::Consensus(m))) => return Some(m.into_inner()),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_peers_gossip_sync_and_outsiders_are_refused() {
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = node(1, pa, &[], &[2], 11);
    let mut b = node(2, pb, &[(1, pa)], &[1], 0);
    // C is not on A's allowlist; it allows A and dials it.
    let c = node(3, pc, &[(1, pa)], &[1], 0);

    wait_until("a and b connected", Duration::from_secs(10), || {
        a.net.peer_count() == 1 && b.net.peer_count() == 1
    })
    .await;

    // Block sync: B asks A for its height.
    let resp = b
        .net
        .request(a.net.local_peer_id(), SyncRequest::Status)
        .await
        .unwrap();
    assert_eq!(resp, SyncResponse::Status { height: Height(11) });

    // Gossip: a vote published by A reaches B (after the mesh forms).
    let key = Keypair::from_seed([9; 32]);
    let v = vote(&key, 5);
    let mut got = None;
    for _ in 0..20 {
        a.net.broadcast(Message::Vote(v.clone())).await.unwrap();
        if let Ok(Some(m)) =
            tokio::time::timeout(Duration::from_millis(500), next_consensus(&mut b.events)).await
        {
            got = Some(m);
            break;
        }
    }
    assert_eq!(got, Some(Message::Vote(v)));

    // C never holds a connection to A.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(a.net.peer_count(), 1, "outsider admitted");
    let a_peers = a.net.peers().await.unwrap();
    assert!(!a_peers.contains(&c.net.local_peer_id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_gossiping_a_forged_vote_is_disconnected() {
    let (pa, pb) = (free_port(), free_port());
    let a = node(4, pa, &[], &[5], 0);
    let b = node(5, pb, &[(4, pa)], &[4], 0);
    wait_until("connected", Duration::from_secs(10), || {
        a.net.peer_count() == 1 && b.net.peer_count() == 1
    })
    .await;
    // Sent again until A acts on it: a publish before gossipsub has
    // exchanged subscriptions reaches nobody, and says so only in a trace.
    let mut forged = vote(&Keypair::from_seed([9; 32]), 5);
    forged.signature = Signature([7; 64]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        b.net
            .broadcast(Message::Vote(forged.clone()))
            .await
            .unwrap();
        let tried = Instant::now() + Duration::from_millis(500);
        while a.net.peer_count() != 0 && Instant::now() < tried {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if a.net.peer_count() == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "a never dropped b");
    }
    // For the forgery, not for anything else that cuts a connection.
    assert!(a.metrics.penalties("bad_signature") >= 1, "{:?}", a.metrics);
    // Kept out for a while (the first ban is 5 s; B redials every 2 s).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(a.net.peer_count(), 0, "banned peer came back at once");
}

/// A proposal with a block of `txs` transfers, signed by `key`.
fn proposal(key: &Keypair, txs: u64) -> Message {
    use palisade_types::{
        Action, Block, BlockHeader, BoundedVec, Proposal, Timestamp, Transaction,
    };
    let sender = Keypair::from_seed([7; 32]);
    let txs = (0..txs)
        .map(|nonce| {
            Transaction {
                chain_id: chain(),
                nonce,
                signer: sender.address(),
                action: Action::Transfer {
                    to: key.address(),
                    amount: 1,
                },
            }
            .sign(&sender)
        })
        .collect();
    let block = Block {
        eth_txs: Default::default(),
        header: BlockHeader {
            chain_id: chain(),
            height: Height(3),
            time: Timestamp(1),
            last_block_hash: Hash([1; 32]),
            tx_root: Hash([2; 32]),
            state_root: Hash([3; 32]),
            receipts_root: Hash([4; 32]),
            validators_hash: Hash([5; 32]),
            next_validators_hash: Hash([5; 32]),
            proposer: key.public_key(),
            last_commit_hash: Hash::ZERO,
        },
        txs: BoundedVec::new(txs).unwrap(),
        last_commit: None,
    };
    let proposal = Proposal {
        height: Height(3),
        round: Round(0),
        block_hash: block.hash(),
        pol_round: None,
        proposer: key.public_key(),
    }
    .sign(&chain(), key);
    Message::Proposal {
        proposal,
        block: Arc::new(block),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_and_votes_are_relayed_to_peers_of_peers() {
    // A line: A - B - C. What A publishes reaches C only through B, which
    // relays a big message (a proposal with its block) a little later than
    // a small one, so that peers holding it already can say so first.
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = node(1, pa, &[], &[2], 0);
    let _b = node(2, pb, &[(1, pa), (3, pc)], &[1, 3], 0);
    let mut c = node(3, pc, &[], &[2], 0);
    wait_until("the line is connected", Duration::from_secs(10), || {
        a.net.peer_count() == 1 && c.net.peer_count() == 1
    })
    .await;

    let key = Keypair::from_seed([9; 32]);
    let big = proposal(&key, 20);
    assert!(
        ConsensusGossip::new(0, &big).encode().len() > 2_000,
        "the proposal must be above gossipsub's IDONTWANT cutoff"
    );
    for msg in [Message::Vote(vote(&key, 5)), big] {
        let mut relayed = false;
        // Re-published until the meshes have formed (a heartbeat or two);
        // copies of the earlier message may still be on their way.
        'publish: for _ in 0..20 {
            a.net.broadcast(msg.clone()).await.unwrap();
            let until = Instant::now() + Duration::from_millis(500);
            while let Ok(Some(m)) = tokio::time::timeout(
                until.saturating_duration_since(Instant::now()),
                next_consensus(&mut c.events),
            )
            .await
            {
                if m == msg {
                    relayed = true;
                    break 'publish;
                }
            }
        }
        assert!(relayed, "C never got {msg:?}");
    }
}

/// A peer that sends more sync requests than its limit gets the excess
/// refused at once (the request fails), counted by reason in the metrics;
/// the connection stays (an honest node catching up can be bursty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_requests_over_a_peers_rate_are_refused_and_counted() {
    let (pa, pb) = (free_port(), free_port());
    let limits = PeerLimits {
        sync_requests_per_s: 2,
        ..PeerLimits::default()
    };
    let a = node_with(6, pa, &[], &[7], 11, limits);
    let b = node(7, pb, &[(6, pa)], &[6], 0);
    wait_until("connected", Duration::from_secs(10), || {
        a.net.peer_count() == 1 && b.net.peer_count() == 1
    })
    .await;
    // All at once, so that a slow machine's round trips do not let the
    // bucket refill between them.
    let started = Instant::now();
    let peer = a.net.local_peer_id();
    let results =
        futures::future::join_all((0..12).map(|_| b.net.request(peer, SyncRequest::Status))).await;
    let answered = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.len() - answered;
    // The burst is two seconds' worth (4), plus what refilled meanwhile
    // (a busy machine can take a while over the twelve).
    let secs = started.elapsed().as_secs_f64();
    let most = 4 + (2.0 * secs).ceil() as usize;
    assert!(
        answered >= 4 && answered <= most,
        "{answered} answered in {secs:.2} s"
    );
    assert!(refused >= 1, "none refused in {secs:.2} s");
    assert!(
        a.metrics.drops("sync_rate") >= refused as u64,
        "{refused} refused: {:?}",
        a.metrics
    );
    assert_eq!(a.net.peer_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_published_before_any_peer_subscribes_still_arrive() {
    // A alone: nobody takes its transaction gossip yet.
    let (pa, pb) = (free_port(), free_port());
    let a = node(1, pa, &[], &[2], 0);
    let tx = Transaction {
        chain_id: chain(),
        nonce: 0,
        signer: Keypair::from_seed([4; 32]).address(),
        action: palisade_types::Action::Transfer {
            to: Keypair::from_seed([5; 32]).address(),
            amount: 1,
        },
    }
    .sign(&Keypair::from_seed([4; 32]));
    a.net.publish_txs(vec![Arc::new(tx.clone())]).await.unwrap();
    // B comes later: the batch reaches it once it has subscribed.
    let mut b = node(2, pb, &[(1, pa)], &[1], 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, b.events.recv()).await {
            Ok(Some(NetEvent::Txs { txs, .. })) => break txs,
            Ok(Some(_)) => continue,
            _ => panic!("the transaction published before B came never arrived"),
        }
    };
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].hash(), tx.hash());
}
