//! Hashes of transactions whose signatures this node verified outside the
//! mempool, so that it does not verify the same bytes twice.
//!
//! A proposal often brings a client's transactions to the other validators
//! before the proposer's gossip does: each validator verifies them while
//! validating the block, and the gossip arrives while the height is still
//! being voted on, when the transactions are neither pooled nor committed.
//! A transaction's hash covers its signature, so a hash seen here means
//! those exact bytes were verified. The set is bounded (two generations, the
//! older dropped when the newer fills); forgetting an entry only costs a
//! verification.

use std::sync::Mutex;

use palisade_types::Hash;

use palisade_ledger::cache::{DigestHasher, Generations};

/// Entries per generation: several full blocks.
const GENERATION: usize = 1 << 15;

#[derive(Debug)]
pub struct RecentlyVerified {
    /// Each hash weighs one entry against the generation's budget.
    hashes: Mutex<Generations<Hash, (), DigestHasher>>,
}

impl Default for RecentlyVerified {
    fn default() -> Self {
        RecentlyVerified::new()
    }
}

impl RecentlyVerified {
    pub fn new() -> RecentlyVerified {
        RecentlyVerified {
            hashes: Mutex::new(Generations::with_hasher(
                GENERATION,
                GENERATION,
                DigestHasher::new(),
            )),
        }
    }

    /// Records that the signatures of the transactions hashing to `hashes`
    /// verified.
    pub fn extend<'h>(&self, hashes: impl IntoIterator<Item = &'h Hash>) {
        // A poisoned lock only loses the shortcut.
        let Ok(mut set) = self.hashes.lock() else {
            return;
        };
        for h in hashes {
            set.insert(*h, (), 1);
        }
    }

    /// For each of `hashes`, whether its signature verified here recently.
    pub fn contains_each(&self, hashes: impl IntoIterator<Item = Hash>) -> Vec<bool> {
        match self.hashes.lock() {
            Ok(mut set) => hashes.into_iter().map(|h| set.get(&h).is_some()).collect(),
            Err(_) => hashes.into_iter().map(|_| false).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_types::sha256;

    #[test]
    fn remembers_recent_hashes_and_forgets_old_ones() {
        let v = RecentlyVerified::new();
        let first: Vec<Hash> = (0u32..10).map(|i| sha256(&i.to_le_bytes())).collect();
        v.extend(&first);
        assert_eq!(v.contains_each(first.iter().copied()), vec![true; 10]);
        assert_eq!(v.contains_each([sha256(b"never")]), vec![false]);
        // Two more generations push the first ones out.
        let more: Vec<Hash> = (10u32..10 + 2 * GENERATION as u32)
            .map(|i| sha256(&i.to_le_bytes()))
            .collect();
        v.extend(&more);
        assert_eq!(v.contains_each(first.iter().copied()), vec![false; 10]);
        // Bounded: at most two generations.
        assert!(v.hashes.lock().unwrap().len() <= 2 * GENERATION);
        assert_eq!(v.contains_each([*more.last().unwrap()]), vec![true]);
    }
}
