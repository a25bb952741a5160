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
