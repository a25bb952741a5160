//! Sparse Merkle tree over the whole state, with inclusion and exclusion
//! proofs.
//!
//! Keys are placed by `SHA-256(key)` in a binary tree of depth 256. Empty
//! subtrees hash to 32 zero bytes; a subtree holding exactly one entry is
//! that entry's leaf, placed as high as it can go, so a tree of n entries
//! has O(log n) depth and its shape (and root) depends only on its
//! contents, never on the order of updates:
//!
//! ```text
//! empty            = 0^32
//! leaf(kh, vh)     = SHA-256(0x00 || kh || vh)   kh = SHA-256(key), vh = SHA-256(value)
//! internal(l, r)   = SHA-256(0x01 || l || r)
//! ```
//!
//! Written here rather than taken from `jmt`: the node needs
//! content-addressed nodes in its own RocksDB batch and proofs a client can
//! check with nothing but SHA-256; this is about 300 lines with both.
//! Nodes are immutable and addressed by hash, so every past root stays
//! readable (historical state and proofs) until pruned.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::{sha256, Hash};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// Root of the empty tree, and the hash of every empty subtree.
pub const EMPTY: Hash = Hash::ZERO;

/// A stored tree node.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Node {
    Leaf { key_hash: Hash, value_hash: Hash },
    Internal { left: Hash, right: Hash },
}

impl Node {
    pub fn hash(&self) -> Hash {
        match self {
            Node::Leaf {
                key_hash,
                value_hash,
            } => leaf_hash(key_hash, value_hash),
            Node::Internal { left, right } => internal_hash(left, right),
        }
    }
}

pub fn leaf_hash(key_hash: &Hash, value_hash: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(key_hash.0);
    h.update(value_hash.0);
    Hash(h.finalize().into())
}

pub fn internal_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Bit `depth` (0 = most significant) of a key hash: 0 = left, 1 = right.
fn bit(h: &Hash, depth: usize) -> bool {
    (h.0[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

/// Where tree nodes are read from.
pub trait NodeSource {
    fn node(&self, hash: &Hash) -> Result<Option<Node>, StoreError>;
}

/// Applies `updates` (key hash → new value hash, `None` = delete) to the
/// tree with root `root`. New nodes go into `new_nodes`; returns the new root.
pub fn update(
    source: &dyn NodeSource,
    root: Hash,
    updates: &BTreeMap<Hash, Option<Hash>>,
    new_nodes: &mut BTreeMap<Hash, Node>,
) -> Result<Hash, StoreError> {
    let ups: Vec<(Hash, Option<Hash>)> = updates.iter().map(|(k, v)| (*k, *v)).collect();
    let mut t = Updater { source, new_nodes };
    t.subtree(root, 0, &ups)
}

struct Updater<'a> {
    source: &'a dyn NodeSource,
    new_nodes: &'a mut BTreeMap<Hash, Node>,
}

impl Updater<'_> {
    fn load(&self, hash: &Hash) -> Result<Node, StoreError> {
        if let Some(n) = self.new_nodes.get(hash) {
            return Ok(n.clone());
        }
        self.source
            .node(hash)?
            .ok_or(StoreError::MissingNode(*hash))
    }

    fn put(&mut self, node: Node) -> Hash {
        let h = node.hash();
        self.new_nodes.insert(h, node);
        h
    }

    /// `ups` is sorted by key hash and all share the path to this subtree.
    fn subtree(
        &mut self,
        node: Hash,
        depth: usize,
        ups: &[(Hash, Option<Hash>)],
    ) -> Result<Hash, StoreError> {
        if ups.is_empty() {
            return Ok(node);
        }
        if node == EMPTY {
            let live: Vec<(Hash, Hash)> =
                ups.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
            return Ok(self.build(&live, depth));
        }
        match self.load(&node)? {
            Node::Leaf {
                key_hash,
                value_hash,
            } => {
                // Merge the existing entry with the updates (an update of the
                // same key wins) and rebuild this subtree from scratch.
                let mut live: Vec<(Hash, Hash)> =
                    ups.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
                if !ups.iter().any(|(k, _)| *k == key_hash) {
                    live.push((key_hash, value_hash));
                    live.sort_by_key(|(k, _)| *k);
                }
                Ok(self.build(&live, depth))
            }
            Node::Internal { left, right } => {
                let split = ups.partition_point(|(k, _)| !bit(k, depth));
                let l = self.subtree(left, depth + 1, &ups[..split])?;
                let r = self.subtree(right, depth + 1, &ups[split..])?;
                self.join(l, r)
            }
        }
    }

    /// A subtree holding exactly `live` (sorted, distinct keys).
    fn build(&mut self, live: &[(Hash, Hash)], depth: usize) -> Hash {
        match live {
            [] => EMPTY,
            [(k, v)] => self.put(Node::Leaf {
                key_hash: *k,
                value_hash: *v,
            }),
            _ => {
                let split = live.partition_point(|(k, _)| !bit(k, depth));
                let l = self.build(&live[..split], depth + 1);
                let r = self.build(&live[split..], depth + 1);
                // Two or more entries need an internal node even when all
                // fall on one side (that side is itself internal); distinct
                // key hashes separate at some depth below 256.
                self.put(Node::Internal { left: l, right: r })
            }
        }
    }

    /// Parent of `l` and `r`, collapsed to the child when the other side is
    /// empty and the child is a leaf (keeps the canonical shape on delete).
    fn join(&mut self, l: Hash, r: Hash) -> Result<Hash, StoreError> {
        match (l == EMPTY, r == EMPTY) {
            (true, true) => Ok(EMPTY),
            (true, false) if matches!(self.load(&r)?, Node::Leaf { .. }) => Ok(r),
            (false, true) if matches!(self.load(&l)?, Node::Leaf { .. }) => Ok(l),
            _ => Ok(self.put(Node::Internal { left: l, right: r })),
        }
    }
}

/// Proof that a key has a given value, or no value, under a root.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Proof {
    /// Sibling hashes from the root downward.
    pub siblings: Vec<Hash>,
    /// The leaf the path ends at, if any: the key itself (inclusion) or
    /// another key sharing the path (exclusion).
    pub leaf: Option<(Hash, Hash)>,
}

/// Walks from `root` toward `key_hash`, returning the proof and the value
/// hash stored for the key, if any.
pub fn prove(
    source: &dyn NodeSource,
    root: Hash,
    key_hash: Hash,
) -> Result<(Proof, Option<Hash>), StoreError> {
    let mut siblings = Vec::new();
    let mut node = root;
    let mut depth = 0;
    loop {
        if node == EMPTY {
            return Ok((
                Proof {
                    siblings,
                    leaf: None,
                },
                None,
            ));
        }
        let n = source.node(&node)?.ok_or(StoreError::MissingNode(node))?;
        match n {
            Node::Leaf {
                key_hash: k,
                value_hash: v,
            } => {
                let found = (k == key_hash).then_some(v);
                return Ok((
                    Proof {
                        siblings,
                        leaf: Some((k, v)),
                    },
                    found,
                ));
            }
            Node::Internal { left, right } => {
                if depth >= 256 {
                    return Err(StoreError::Corrupt("tree deeper than 256".into()));
                }
                if bit(&key_hash, depth) {
                    siblings.push(left);
                    node = right;
                } else {
                    siblings.push(right);
                    node = left;
                }
                depth += 1;
            }
        }
    }
}

/// Checks `proof` that `key` maps to `value` (`None`: is absent) under
/// `root`. Needs only SHA-256: this is the function a light client runs.
pub fn verify(root: &Hash, key: &[u8], value: Option<&[u8]>, proof: &Proof) -> bool {
    let key_hash = sha256(key);
    let depth = proof.siblings.len();
    if depth > 256 {
        return false;
    }
    let bottom = match (value, proof.leaf) {
        (Some(v), Some((k, vh))) => {
            if k != key_hash || vh != sha256(v) {
                return false;
            }
            leaf_hash(&k, &vh)
        }
        (Some(_), None) => return false,
        (None, None) => EMPTY,
        (None, Some((k, vh))) => {
            // Another key's leaf sits where ours would be: it must share our
            // path so far, and must not be our key.
            if k == key_hash || (0..depth).any(|d| bit(&k, d) != bit(&key_hash, d)) {
                return false;
            }
            leaf_hash(&k, &vh)
        }
    };
    let mut acc = bottom;
    for (d, sib) in proof.siblings.iter().enumerate().rev() {
        acc = if bit(&key_hash, d) {
            internal_hash(sib, &acc)
        } else {
            internal_hash(&acc, sib)
        };
    }
    acc == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Mem(BTreeMap<Hash, Node>);
    impl NodeSource for Mem {
        fn node(&self, h: &Hash) -> Result<Option<Node>, StoreError> {
            Ok(self.0.get(h).cloned())
        }
    }

    fn apply(mem: &mut Mem, root: Hash, kv: &[(&[u8], Option<&[u8]>)]) -> Hash {
        let ups: BTreeMap<Hash, Option<Hash>> =
            kv.iter().map(|(k, v)| (sha256(k), v.map(sha256))).collect();
        let mut new = BTreeMap::new();
        let r = update(mem, root, &ups, &mut new).unwrap();
        mem.0.extend(new);
        r
    }

    #[test]
    fn root_depends_only_on_contents() {
        let mut a = Mem::default();
        let mut r1 = EMPTY;
        for i in 0u32..50 {
            let k = i.to_le_bytes();
            r1 = apply(&mut a, r1, &[(&k, Some(b"v"))]);
        }
        // Same contents in one batch, in another tree.
        let mut b = Mem::default();
        let keys: Vec<[u8; 4]> = (0u32..50).map(|i| i.to_le_bytes()).collect();
        let kv: Vec<(&[u8], Option<&[u8]>)> = keys
            .iter()
            .map(|k| (k.as_slice(), Some(b"v".as_slice())))
            .collect();
        let r2 = apply(&mut b, EMPTY, &kv);
        assert_eq!(r1, r2);
        // Insert then delete returns to the previous root.
        let r3 = apply(&mut a, r1, &[(b"extra", Some(b"x"))]);
        assert_ne!(r3, r1);
        let r4 = apply(&mut a, r3, &[(b"extra", None)]);
        assert_eq!(r4, r1);
        // Delete everything: the empty root.
        let del: Vec<(&[u8], Option<&[u8]>)> = keys.iter().map(|k| (k.as_slice(), None)).collect();
        assert_eq!(apply(&mut a, r1, &del), EMPTY);
    }

    #[test]
    fn proofs_of_presence_and_absence() {
        let mut m = Mem::default();
        let keys: Vec<Vec<u8>> = (0u32..40).map(|i| format!("key{i}").into_bytes()).collect();
        let kv: Vec<(&[u8], Option<&[u8]>)> = keys
            .iter()
            .map(|k| (k.as_slice(), Some(k.as_slice())))
            .collect();
        let root = apply(&mut m, EMPTY, &kv);
        for k in &keys {
            let (p, vh) = prove(&m, root, sha256(k)).unwrap();
            assert_eq!(vh, Some(sha256(k)));
            assert!(verify(&root, k, Some(k), &p));
            assert!(!verify(&root, k, Some(b"wrong"), &p));
            assert!(
                !verify(&root, k, None, &p),
                "presence proof passed as absence"
            );
        }
        for i in 0..40 {
            let k = format!("absent{i}").into_bytes();
            let (p, vh) = prove(&m, root, sha256(&k)).unwrap();
            assert_eq!(vh, None);
            assert!(verify(&root, &k, None, &p));
            assert!(!verify(&root, &k, Some(b"x"), &p));
            assert!(!verify(&Hash([1; 32]), &k, None, &p));
        }
        // Empty tree: absence with an empty proof.
        let (p, _) = prove(&m, EMPTY, sha256(b"k")).unwrap();
        assert!(verify(&EMPTY, b"k", None, &p));
    }
}
