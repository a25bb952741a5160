//! Binary Merkle tree over a list, as in RFC 6962 / RFC 9162 (Certificate
//! Transparency): leaves are hashed as `SHA-256(0x00 || data)`, inner nodes as
//! `SHA-256(0x01 || left || right)`, and a list of n > 1 items splits at the
//! largest power of two below n. The distinct prefixes stop a leaf from being
//! passed off as an inner node (second-preimage attacks). The empty list's
//! root is `SHA-256("")`.

use sha2::{Digest, Sha256};

use crate::Hash;

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    Hash(h.finalize().into())
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Largest power of two strictly below `n` (n >= 2).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Root of the tree over `items`.
pub fn root<T: AsRef<[u8]>>(items: &[T]) -> Hash {
    if items.is_empty() {
        return crate::sha256(&[]);
    }
    let leaves: Vec<Hash> = items.iter().map(|d| leaf_hash(d.as_ref())).collect();
    root_of_leaf_hashes(&leaves)
}

fn root_of_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => crate::sha256(&[]),
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(
                &root_of_leaf_hashes(&leaves[..k]),
                &root_of_leaf_hashes(&leaves[k..]),
            )
        }
    }
}

/// Inclusion proof (audit path) of item `index` among `items`, sibling
/// hashes from the leaf upward. `None` when `index` is out of range.
pub fn prove<T: AsRef<[u8]>>(items: &[T], index: usize) -> Option<Vec<Hash>> {
    if index >= items.len() {
        return None;
    }
    let leaves: Vec<Hash> = items.iter().map(|d| leaf_hash(d.as_ref())).collect();
    let mut path = Vec::new();
    audit_path(&leaves, index, &mut path);
    Some(path)
}

fn audit_path(leaves: &[Hash], index: usize, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if index < k {
        audit_path(&leaves[..k], index, out);
        out.push(root_of_leaf_hashes(&leaves[k..]));
    } else {
        audit_path(&leaves[k..], index - k, out);
        out.push(root_of_leaf_hashes(&leaves[..k]));
    }
}

/// Checks that `data` is item `index` of a list of `size` items whose root is
/// `root` (RFC 9162 section 2.1.3.2).
pub fn verify(root: &Hash, index: usize, size: usize, data: &[u8], proof: &[Hash]) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf_hash(data);
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_roots() {
        let empty: [&[u8]; 0] = [];
        assert_eq!(
            root(&empty).to_string(),
            "0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 6962 test vector: a single empty leaf.
        assert_eq!(
            root(&[b""]).to_string(),
            "0x6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let three = [b"a".as_slice(), b"b", b"c"];
        let expect = node_hash(
            &node_hash(&leaf_hash(b"a"), &leaf_hash(b"b")),
            &leaf_hash(b"c"),
        );
        assert_eq!(root(&three), expect);
    }

    #[test]
    fn every_proof_verifies_and_wrong_ones_fail() {
        for n in 1..=33usize {
            let items: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 3]).collect();
            let r = root(&items);
            for i in 0..n {
                let p = prove(&items, i).unwrap();
                assert!(verify(&r, i, n, &items[i], &p), "n={n} i={i}");
                assert!(!verify(&r, i, n, b"other", &p), "n={n} i={i}");
                if n > 1 {
                    assert!(!verify(&r, (i + 1) % n, n, &items[i], &p), "n={n} i={i}");
                }
                assert!(
                    !verify(&r, i, n, &items[i], &p[..p.len().saturating_sub(1)]) || p.is_empty()
                );
                assert!(!verify(&r, n, n, &items[i], &p));
            }
            assert!(prove(&items, n).is_none());
        }
    }
}
