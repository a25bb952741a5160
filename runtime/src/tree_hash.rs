//! The state tree's node hashes ([`crate::smt`] gives the rules): what
//! both the tree and its storage pages ([`crate::page`]) compute.

use palisade_types::Hash;
use sha2::{Digest, Sha256};

/// Root of the empty tree, and the hash of every empty subtree.
pub const EMPTY: Hash = Hash::ZERO;

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
