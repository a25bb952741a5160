//! Bounded in-memory caches in front of RocksDB.
//!
//! [`Generations`] is a two-generation cache: lookups check both
//! generations, hits in the older one move to the newer, and when the newer
//! one reaches its budget it becomes the older (the old older is dropped).
//! So at most about twice the budget is held and what is used stays. It has
//! no lock of its own; the ledger wraps each cache in the lock that also
//! guards whatever must change together with it.
//!
//! The ledger's two caches use it (and, outside the ledger, the node's set
//! of recently verified transaction hashes, `palisade_node::verified`):
//! - state-tree pages, which are addressed by their hash and never change,
//!   so a cached page can never be stale (each block's tree update walks the
//!   paths the previous blocks wrote);
//! - the latest committed state values (accounts above all), which every
//!   mempool admission, proposal and block execution reads. These do change:
//!   the ledger updates them when it commits a block, and a value read from
//!   RocksDB is only inserted when no commit ran meanwhile (see
//!   [`super::Ledger`]).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash as StdHash, Hasher};

/// Keys are weighed by the caller: one per entry, or its bytes.
#[derive(Debug)]
pub struct Generations<K, V, S = std::collections::hash_map::RandomState> {
    budget: usize,
    expected: usize,
    young: HashMap<K, (V, usize), S>,
    young_weight: usize,
    old: HashMap<K, (V, usize), S>,
}

impl<K: Eq + StdHash, V: Clone, S: BuildHasher + Clone> Generations<K, V, S> {
    /// `expected` is the capacity every generation's table starts with. A
    /// cache that fills its generations should pass about how many entries
    /// a full one holds, so that no generation rehashes its way up to it
    /// (which showed up as a tenth of a busy node's CPU); after a rotation
    /// the reused table keeps whatever it grew to.
    pub fn with_hasher(budget: usize, expected: usize, hasher: S) -> Self {
        Generations {
            budget: budget.max(1),
            expected,
            young: HashMap::with_capacity_and_hasher(expected, hasher.clone()),
            young_weight: 0,
            old: HashMap::with_hasher(hasher),
        }
    }

    pub fn get<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: StdHash + Eq + ?Sized,
    {
        if let Some((v, _)) = self.young.get(key) {
            return Some(v.clone());
        }
        let (k, (v, w)) = self.old.remove_entry(key)?;
        self.insert(k, v.clone(), w);
        Some(v)
    }

    pub fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: StdHash + Eq + ?Sized,
    {
        self.old.remove(key);
        if let Some((_, w)) = self.young.remove(key) {
            self.young_weight = self.young_weight.saturating_sub(w);
        }
    }

    /// Inserts or replaces `key`, weighing `weight` against the budget.
    pub fn insert(&mut self, key: K, value: V, weight: usize) {
        if self.young_weight >= self.budget && !self.young.contains_key(&key) {
            // The dropped generation's table, emptied, becomes the new one:
            // it is already grown to what a generation holds, and its
            // memory is already in place (a fresh table of that size took a
            // page fault per 4 KiB as it filled).
            self.old.clear();
            self.old.reserve(self.expected);
            std::mem::swap(&mut self.old, &mut self.young);
            self.young_weight = 0;
        }
        // A newer value must win over one left in the older generation.
        self.old.remove(&key);
        if let Some((_, w)) = self.young.insert(key, (value, weight)) {
            self.young_weight = self.young_weight.saturating_sub(w);
        }
        self.young_weight = self.young_weight.saturating_add(weight);
    }

    /// Forgets everything (the state under the cache was replaced).
    pub fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
        self.young_weight = 0;
    }

    /// Entries held now (both generations).
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.young.is_empty() && self.old.is_empty()
    }
}

/// Hasher for keys that are already uniformly random (SHA-256 digests):
/// mixes their first eight bytes with a per-process secret instead of
/// running SipHash over all 32. The secret keeps anyone who can choose
/// state keys from steering many nodes into one bucket.
#[derive(Debug, Clone, Copy)]
pub struct DigestHasher {
    secret: u64,
}

impl DigestHasher {
    pub fn new() -> DigestHasher {
        DigestHasher {
            secret: rand::random::<u64>() | 1,
        }
    }
}

impl Default for DigestHasher {
    fn default() -> Self {
        DigestHasher::new()
    }
}

impl BuildHasher for DigestHasher {
    type Hasher = DigestState;
    fn build_hasher(&self) -> DigestState {
        DigestState {
            secret: self.secret,
            state: 0,
        }
    }
}

#[derive(Debug)]
pub struct DigestState {
    secret: u64,
    state: u64,
}

impl Hasher for DigestState {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.state ^= u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, _: usize) {
        // The length prefix of a fixed-size digest carries nothing.
    }

    fn finish(&self) -> u64 {
        // A multiply-xorshift mix: every output bit depends on every input
        // bit and on the secret, so equal low bits of two keys do not mean
        // equal buckets.
        let mut x = (self.state ^ self.secret).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        x = x.wrapping_mul(self.secret);
        x ^ (x >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_types::{sha256, Hash};

    /// Stands in for a page: the cache only needs a key and a value.
    fn node(i: u8) -> (Hash, Vec<u8>) {
        (sha256(&[i]), vec![i; 8])
    }

    #[test]
    fn bounded_and_keeps_what_is_used() {
        let mut c = Generations::with_hasher(4, 4, DigestHasher::new());
        for i in 0..4 {
            let (h, n) = node(i);
            c.insert(h, n, 1);
        }
        // Node 0 is used again, then more arrive: two generations of at
        // most four each.
        let (h0, n0) = node(0);
        for i in 4..12 {
            assert_eq!(c.get(&h0), Some(n0.clone()));
            let (h, n) = node(i);
            c.insert(h, n, 1);
            assert!(c.len() <= 8, "{} nodes held", c.len());
        }
        assert_eq!(c.get(&h0), Some(n0));
        // Nodes never used again fall out.
        assert_eq!(c.get(&node(1).0), None);
        assert!(c.get(&node(11).0).is_some());
    }

    #[test]
    fn a_newer_value_replaces_the_older_generations() {
        let mut c: Generations<Vec<u8>, Option<Vec<u8>>> =
            Generations::with_hasher(2, 2, Default::default());
        c.insert(b"k".to_vec(), Some(b"1".to_vec()), 1);
        c.insert(b"a".to_vec(), None, 1);
        // "k" is now in the older generation; the update must win.
        c.insert(b"b".to_vec(), None, 1);
        c.insert(b"k".to_vec(), Some(b"2".to_vec()), 1);
        assert_eq!(c.get(&b"k".to_vec()), Some(Some(b"2".to_vec())));
        // Rotating again keeps the newest.
        c.insert(b"c".to_vec(), None, 1);
        c.insert(b"d".to_vec(), None, 1);
        assert_eq!(c.get(&b"k".to_vec()), Some(Some(b"2".to_vec())));
    }

    #[test]
    fn weight_bounds_bytes() {
        let mut c: Generations<u32, Vec<u8>> =
            Generations::with_hasher(1000, 10, Default::default());
        for i in 0..100u32 {
            c.insert(i, vec![0; 100], 100);
        }
        // 1,000 bytes per generation: at most about 20 entries of 100.
        assert!(c.len() <= 22, "{} entries", c.len());
    }

    #[test]
    fn digest_hasher_spreads_keys_with_equal_prefixes() {
        let h = DigestHasher::new();
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000u32 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_be_bytes());
            seen.insert(h.hash_one(Hash(k)) & 0xfff);
        }
        // 1,000 keys differing only in their top bytes still land in many
        // of 4,096 buckets.
        assert!(seen.len() > 700, "{} distinct buckets", seen.len());
    }
}
