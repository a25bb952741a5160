//! Invariants checked on the ledgers of a scenario's nodes once they are
//! stopped, and the accounting of client-acknowledged transactions.
//!
//! What the checker watches live (see [`crate::Checker`]) is a sample; this
//! reads every height every node stored.

use std::collections::{BTreeMap, HashMap};

use palisade_types::{Hash, Height, PublicKey, Round};

use crate::{assert_chains_agree, chain_of, rpc_call, Devnet};

/// What [`audit`] found on a stopped network.
#[derive(Debug, Default)]
pub struct Audit {
    /// Heights every node holds (and agrees on).
    pub common_height: usize,
    /// The longest chain any node holds.
    pub longest_height: usize,
    /// How often each transaction hash occurs in the longest chain.
    pub tx_occurrences: HashMap<Hash, usize>,
}

impl Audit {
    /// Transactions in the longest chain.
    pub fn txs(&self) -> usize {
        self.tx_occurrences.values().sum()
    }

    /// Every transaction a node acknowledged as committed (it served a
    /// receipt) is in the chain exactly once.
    pub fn assert_exactly_once(&self, acknowledged: &[Hash]) {
        for h in acknowledged {
            let n = self.tx_occurrences.get(h).copied().unwrap_or(0);
            assert_eq!(
                n, 1,
                "acknowledged transaction {h} is in the chain {n} times"
            );
        }
    }
}

/// Opens every node's ledger (all nodes must be stopped) and checks:
/// - every block's commit certificate verifies against the validator set
///   of its height (valid signatures, more than two thirds of the power);
/// - every node holds the same block (hence the same state root) at every
///   height the nodes share;
/// - no validator's precommit in any certificate on any node names two
///   different blocks at one (height, round) — a double sign;
/// - no transaction occurs twice in any chain.
pub fn audit(net: &Devnet) -> Audit {
    let chain_id = net.chain_id();
    let mut chains = Vec::with_capacity(net.n);
    let mut precommits: BTreeMap<(Height, Round, PublicKey), Hash> = BTreeMap::new();
    for i in 0..net.n {
        let ledger = net.ledger(i);
        let chain = chain_of(&ledger);
        let mut seen: HashMap<Hash, Height> = HashMap::new();
        for (h, block, commit) in &chain {
            let set = ledger
                .validators(*h)
                .expect("read validator set")
                .unwrap_or_else(|| panic!("node {i}: no validator set for height {h}"));
            commit
                .verify(&chain_id, &set)
                .unwrap_or_else(|e| panic!("node {i} height {h}: bad certificate: {e}"));
            for sig in commit.signatures() {
                let prev = precommits
                    .entry((*h, commit.round, sig.validator))
                    .or_insert(commit.block_hash);
                assert_eq!(
                    *prev, commit.block_hash,
                    "double sign: validator {} precommitted two blocks at height {h} round {}",
                    sig.validator, commit.round
                );
            }
            for tx in block.txs.iter() {
                if let Some(first) = seen.insert(tx.hash(), *h) {
                    panic!(
                        "node {i}: transaction {} committed twice (heights {first} and {h})",
                        tx.hash()
                    );
                }
            }
        }
        chains.push(chain);
    }
    let common_height = assert_chains_agree(&chains);
    let longest = chains.iter().max_by_key(|c| c.len());
    let mut tx_occurrences = HashMap::new();
    for (_, block, _) in longest.into_iter().flatten() {
        for tx in block.txs.iter() {
            *tx_occurrences.entry(tx.hash()).or_insert(0) += 1;
        }
    }
    Audit {
        common_height,
        longest_height: longest.map_or(0, Vec::len),
        tx_occurrences,
    }
}

/// One message a node logged signing (its `signed` debug line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The node whose log holds it.
    pub node: usize,
    /// The signing key, `0x`-hex.
    pub key: String,
    pub height: u64,
    pub round: u32,
    /// `propose`, `prevote` or `precommit`.
    pub step: String,
    /// The block it names, or `nil`.
    pub block: String,
}

/// The `signed` lines of one log (nodes log one per message they sign, at
/// debug level, as the harness runs them). A log spans every run of the
/// node, so signatures from before and after a restart are all here.
pub fn signed_in_log(node: usize, log: &str) -> Vec<Signed> {
    let mut out = Vec::new();
    for line in log.lines() {
        if !line.contains("palisade_node::driver")
            || !line.split_whitespace().any(|w| w == "signed")
        {
            continue;
        }
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_string)
        };
        let (Some(key), Some(height), Some(round), Some(step), Some(block)) = (
            field("key"),
            field("height"),
            field("round"),
            field("step"),
            field("block"),
        ) else {
            continue;
        };
        let (Ok(height), Ok(round)) = (height.parse(), round.parse()) else {
            continue;
        };
        out.push(Signed {
            node,
            key,
            height,
            round,
            step,
            block,
        });
    }
    out
}

/// Everything every node of `net` logged signing (see [`signed_in_log`]).
pub fn signed_in_logs(net: &Devnet) -> Vec<Signed> {
    (0..net.n)
        .flat_map(|i| signed_in_log(i, &net.log(i)))
        .collect()
}

/// Double signs among `signed`: pairs in which one key signed two
/// different messages (another block, or nil and a block) for the same
/// height, round and step — across restarts and nodes, whether or not a
/// peer was there to catch it.
pub fn double_signs(signed: &[Signed]) -> Vec<(Signed, Signed)> {
    let mut first: HashMap<(&str, u64, u32, &str), &Signed> = HashMap::new();
    let mut out = Vec::new();
    for s in signed {
        let prev = first
            .entry((s.key.as_str(), s.height, s.round, s.step.as_str()))
            .or_insert(s);
        if prev.block != s.block {
            out.push(((*prev).clone(), s.clone()));
        }
    }
    out
}

/// Of the transactions a client had admitted (`sent`), those a running
/// node acknowledges as committed: `tx_getReceipt` returns a receipt. Asks
/// the nodes in `rpc` in turn, so one that is down does not matter.
pub fn acknowledged(rpc: &[String], sent: &[Hash]) -> Vec<Hash> {
    let mut unique = sent.to_vec();
    unique.sort();
    unique.dedup();
    unique
        .into_iter()
        .filter(|h| {
            rpc.iter().any(|addr| {
                rpc_call(addr, "tx_getReceipt", serde_json::json!([h.to_string()]))
                    .is_ok_and(|r| !r.is_null())
            })
        })
        .collect()
}
