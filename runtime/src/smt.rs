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
//! Written here rather than taken from `jmt`: the node needs the tree's
//! records in its own RocksDB batch and proofs a client can check with
//! nothing but SHA-256. The nodes are stored [`PAGE_LEVELS`] levels to a
//! record ([`crate::page`]); that is storage only, invisible in roots and
//! proofs. Pages are immutable and addressed by hash, so every past root
//! stays readable (historical state and proofs) until pruned.

use std::collections::BTreeMap;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::{sha256, Hash};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::page::{Leaf, Page, Slot, PAGE_LEVELS};
use crate::StoreError;

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

/// Bit `depth` (0 = most significant) of a key hash: 0 = left, 1 = right.
fn bit(h: &Hash, depth: usize) -> bool {
    (h.0[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

/// Where tree pages are read from.
pub trait PageSource {
    fn page(&self, hash: &Hash) -> Result<Option<Arc<Page>>, StoreError>;
}

fn load(source: &dyn PageSource, hash: &Hash) -> Result<Arc<Page>, StoreError> {
    source.page(hash)?.ok_or(StoreError::MissingPage(*hash))
}

/// Applies `updates` (key hash → new leaf, `None` = delete) to the tree
/// with root `root`. The pages it writes go into `new_pages`; returns the
/// new root.
pub fn update(
    source: &dyn PageSource,
    root: Hash,
    updates: &BTreeMap<Hash, Option<Leaf>>,
    new_pages: &mut BTreeMap<Hash, Arc<Page>>,
) -> Result<Hash, StoreError> {
    let ups: Vec<(&Hash, Option<&Leaf>)> = updates.iter().map(|(k, v)| (k, v.as_ref())).collect();
    let at = if root == EMPTY {
        At::Empty
    } else {
        At::Unloaded(root)
    };
    let tree = Updater { source }.subtree(at, 0, &ups)?;
    match tree {
        Sub::Empty => Ok(EMPTY),
        // Nothing changed (no updates): no page to write.
        Sub::Unloaded(h) | Sub::Old { hash: h, .. } => Ok(h),
        sub => emit_page(sub, new_pages),
    }
}

/// A subtree of the tree before the update.
enum At {
    Empty,
    /// With its hash, as the page holds it.
    Leaf(Leaf, Hash),
    /// An internal node inside a page that was read.
    Internal {
        page: Arc<Page>,
        slot: u8,
    },
    /// The root of a page not read yet.
    Unloaded(Hash),
}

impl At {
    fn of(page: &Arc<Page>, i: u8) -> Result<At, StoreError> {
        Ok(match page.slot(i)? {
            Slot::Empty => At::Empty,
            Slot::Leaf { leaf, hash } => At::Leaf(leaf.clone(), *hash),
            Slot::Internal { .. } => At::Internal {
                page: page.clone(),
                slot: i,
            },
            Slot::Child(h) => At::Unloaded(*h),
        })
    }
}

/// A subtree of the updated tree: built by the update, or left as it was.
enum Sub {
    Empty,
    Leaf(Leaf, Hash),
    New {
        hash: Hash,
        left: Box<Sub>,
        right: Box<Sub>,
    },
    /// Unchanged, inside a page that was read.
    Old {
        page: Arc<Page>,
        slot: u8,
        hash: Hash,
    },
    /// Unchanged, the root of a stored page.
    Unloaded(Hash),
}

impl Sub {
    fn hash(&self) -> Hash {
        match self {
            Sub::Empty => EMPTY,
            Sub::Leaf(_, h) | Sub::New { hash: h, .. } | Sub::Old { hash: h, .. } => *h,
            Sub::Unloaded(h) => *h,
        }
    }

    fn leaf(leaf: Leaf) -> Sub {
        let h = leaf.hash();
        Sub::Leaf(leaf, h)
    }

    fn unchanged(at: At) -> Result<Sub, StoreError> {
        Ok(match at {
            At::Empty => Sub::Empty,
            // Its hash is known: no need to hash it again.
            At::Leaf(l, h) => Sub::Leaf(l, h),
            At::Internal { page, slot } => {
                let hash = page.slot(slot)?.hash();
                Sub::Old { page, slot, hash }
            }
            At::Unloaded(h) => Sub::Unloaded(h),
        })
    }
}

struct Updater<'a> {
    source: &'a dyn PageSource,
}

impl Updater<'_> {
    /// `ups` is sorted by key hash and all share the path to this subtree.
    fn subtree(
        &self,
        at: At,
        depth: usize,
        ups: &[(&Hash, Option<&Leaf>)],
    ) -> Result<Sub, StoreError> {
        if ups.is_empty() {
            return Sub::unchanged(at);
        }
        match at {
            At::Empty => {
                let live: Vec<&Leaf> = ups.iter().filter_map(|(_, v)| *v).collect();
                Ok(build(&live, depth))
            }
            At::Leaf(old, _) => {
                // Merge the existing entry with the updates (an update of the
                // same key wins) and rebuild this subtree from scratch.
                let mut live: Vec<&Leaf> = ups.iter().filter_map(|(_, v)| *v).collect();
                if !ups.iter().any(|(k, _)| **k == old.key_hash) {
                    live.push(&old);
                    live.sort_by_key(|l| l.key_hash);
                }
                Ok(build(&live, depth))
            }
            At::Unloaded(h) => {
                let page = load(self.source, &h)?;
                self.subtree(At::of(&page, 0)?, depth, ups)
            }
            At::Internal { page, slot } => {
                if depth >= 256 {
                    return Err(StoreError::Corrupt("tree deeper than 256".into()));
                }
                let Slot::Internal { left, right, .. } = page.slot(slot)? else {
                    return Err(StoreError::Corrupt("state page slot kind changed".into()));
                };
                let split = ups.partition_point(|(k, _)| !bit(k, depth));
                let l = self.subtree(At::of(&page, *left)?, depth + 1, &ups[..split])?;
                let r = self.subtree(At::of(&page, *right)?, depth + 1, &ups[split..])?;
                Ok(join(l, r))
            }
        }
    }
}

/// A subtree holding exactly `live` (sorted, distinct keys).
fn build(live: &[&Leaf], depth: usize) -> Sub {
    match live {
        [] => Sub::Empty,
        [one] => Sub::leaf((*one).clone()),
        _ => {
            let split = live.partition_point(|l| !bit(&l.key_hash, depth));
            let l = build(&live[..split], depth + 1);
            let r = build(&live[split..], depth + 1);
            // Two or more entries need an internal node even when all fall
            // on one side (that side is itself internal); distinct key
            // hashes separate at some depth below 256.
            new_internal(l, r)
        }
    }
}

fn new_internal(l: Sub, r: Sub) -> Sub {
    Sub::New {
        hash: internal_hash(&l.hash(), &r.hash()),
        left: Box::new(l),
        right: Box::new(r),
    }
}

/// Parent of `l` and `r`, collapsed to the child when the other side is
/// empty and the child is a leaf (keeps the canonical shape on delete).
fn join(l: Sub, r: Sub) -> Sub {
    match (l, r) {
        (Sub::Empty, Sub::Empty) => Sub::Empty,
        (Sub::Empty, leaf @ Sub::Leaf(..)) | (leaf @ Sub::Leaf(..), Sub::Empty) => leaf,
        (l, r) => new_internal(l, r),
    }
}

/// Stores `sub` (a new subtree whose root is at a depth that is a
/// multiple of [`PAGE_LEVELS`]) as a page, and the new pages below it.
fn emit_page(sub: Sub, out: &mut BTreeMap<Hash, Arc<Page>>) -> Result<Hash, StoreError> {
    let mut slots = Vec::new();
    fill(sub, 0, &mut slots, out)?;
    let page = Page::from_slots(slots)?;
    let hash = page.hash();
    out.insert(hash, Arc::new(page));
    Ok(hash)
}

fn slot_index(slots: &[Slot]) -> Result<u8, StoreError> {
    u8::try_from(slots.len()).map_err(|_| StoreError::Corrupt("state page too large".into()))
}

/// Appends `sub`, `level` levels below its page's root, to the page's
/// slots in pre-order.
fn fill(
    sub: Sub,
    level: usize,
    slots: &mut Vec<Slot>,
    out: &mut BTreeMap<Hash, Arc<Page>>,
) -> Result<(), StoreError> {
    match sub {
        Sub::Empty => slots.push(Slot::Empty),
        Sub::Leaf(leaf, hash) => slots.push(Slot::Leaf { leaf, hash }),
        // Internal nodes keep their depth across updates (only leaves move
        // up or down), so an unchanged one at the bottom level was a page
        // root before and is stored already.
        Sub::Unloaded(h)
        | Sub::Old {
            slot: 0, hash: h, ..
        } if level == PAGE_LEVELS => slots.push(Slot::Child(h)),
        Sub::Unloaded(_) => {
            return Err(StoreError::Corrupt(
                "stored page found above a page's bottom level".into(),
            ))
        }
        Sub::Old { page, slot, .. } => copy(&page, slot, level, slots)?,
        sub @ Sub::New { .. } if level == PAGE_LEVELS => {
            let h = emit_page(sub, out)?;
            slots.push(Slot::Child(h));
        }
        Sub::New { hash, left, right } => {
            let at = slots.len();
            slots.push(Slot::Empty);
            let l = slot_index(slots)?;
            fill(*left, level + 1, slots, out)?;
            let r = slot_index(slots)?;
            fill(*right, level + 1, slots, out)?;
            slots[at] = Slot::Internal {
                hash,
                left: l,
                right: r,
            };
        }
    }
    Ok(())
}

/// Appends an unchanged subtree of `page` (from `slot`, `level` levels
/// below the new page's root: the same level it had in `page`).
fn copy(page: &Page, slot: u8, level: usize, slots: &mut Vec<Slot>) -> Result<(), StoreError> {
    match page.slot(slot)? {
        Slot::Internal { hash, left, right } => {
            if level >= PAGE_LEVELS {
                return Err(StoreError::Corrupt(
                    "internal node copied below a page's bottom level".into(),
                ));
            }
            let at = slots.len();
            slots.push(Slot::Empty);
            let l = slot_index(slots)?;
            copy(page, *left, level + 1, slots)?;
            let r = slot_index(slots)?;
            copy(page, *right, level + 1, slots)?;
            slots[at] = Slot::Internal {
                hash: *hash,
                left: l,
                right: r,
            };
        }
        other => slots.push(other.clone()),
    }
    Ok(())
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

/// Walks from `root` toward `key_hash`, returning the proof and the leaf
/// stored for the key, if any.
pub fn prove(
    source: &dyn PageSource,
    root: Hash,
    key_hash: Hash,
) -> Result<(Proof, Option<Leaf>), StoreError> {
    let mut siblings = Vec::new();
    let end = walk(source, root, &key_hash, Some(&mut siblings))?;
    let proof = Proof {
        siblings,
        leaf: end.as_ref().map(|l| (l.key_hash, l.value_hash)),
    };
    let found = end.filter(|l| l.key_hash == key_hash);
    Ok((proof, found))
}

/// The leaf stored for `key_hash` under `root`, if any: the walk of
/// [`prove`] without collecting the proof.
pub fn lookup(
    source: &dyn PageSource,
    root: Hash,
    key_hash: &Hash,
) -> Result<Option<Leaf>, StoreError> {
    Ok(walk(source, root, key_hash, None)?.filter(|l| l.key_hash == *key_hash))
}

/// Walks from `root` along `key_hash`'s path to where it ends: the leaf
/// there (the key's own or another sharing the path), or `None` at an
/// empty subtree. Pushes each sibling's hash, from the root down, onto
/// `siblings` if given.
fn walk(
    source: &dyn PageSource,
    root: Hash,
    key_hash: &Hash,
    mut siblings: Option<&mut Vec<Hash>>,
) -> Result<Option<Leaf>, StoreError> {
    if root == EMPTY {
        return Ok(None);
    }
    let mut page = load(source, &root)?;
    let mut slot = 0u8;
    let mut depth = 0usize;
    loop {
        let (next, sibling) = match page.slot(slot)? {
            Slot::Empty => return Ok(None),
            Slot::Leaf { leaf, .. } => return Ok(Some(leaf.clone())),
            Slot::Internal { left, right, .. } => {
                if depth >= 256 {
                    return Err(StoreError::Corrupt("tree deeper than 256".into()));
                }
                if bit(key_hash, depth) {
                    (*right, *left)
                } else {
                    (*left, *right)
                }
            }
            Slot::Child(h) => {
                // Only the bottom level holds page references, and the walk
                // moves to that page before reading the slot itself.
                return Err(StoreError::Corrupt(format!(
                    "walk stopped at page reference {h}"
                )));
            }
        };
        if let Some(s) = siblings.as_deref_mut() {
            s.push(page.slot(sibling)?.hash());
        }
        depth += 1;
        if let Slot::Child(h) = page.slot(next)? {
            page = load(source, h)?;
            slot = 0;
        } else {
            slot = next;
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
    struct Mem(BTreeMap<Hash, Arc<Page>>);
    impl PageSource for Mem {
        fn page(&self, h: &Hash) -> Result<Option<Arc<Page>>, StoreError> {
            Ok(self.0.get(h).cloned())
        }
    }

    fn apply(mem: &mut Mem, root: Hash, kv: &[(&[u8], Option<&[u8]>)]) -> Hash {
        let ups: BTreeMap<Hash, Option<Leaf>> = kv
            .iter()
            .map(|(k, v)| (sha256(k), v.map(|v| Leaf::new(sha256(k), v))))
            .collect();
        let mut new = BTreeMap::new();
        let r = update(mem, root, &ups, &mut new).unwrap();
        for (h, p) in &new {
            // Every page written survives its own encoding.
            assert_eq!(Page::decode(&p.encode(), h).unwrap(), **p);
        }
        mem.0.extend(new);
        r
    }

    /// The tree's definition, straight from its contents (sorted by key
    /// hash), with no pages: what the paged update must agree with.
    fn reference_root(entries: &[(Hash, Hash)], depth: usize) -> Hash {
        match entries {
            [] => EMPTY,
            [(k, v)] => leaf_hash(k, v),
            _ => {
                let split = entries.partition_point(|(k, _)| !bit(k, depth));
                internal_hash(
                    &reference_root(&entries[..split], depth + 1),
                    &reference_root(&entries[split..], depth + 1),
                )
            }
        }
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

    /// Seeded rounds of inserts, changes and deletes (small and large
    /// values, batches of 1 to 400 keys, trees deep enough for several page
    /// levels): after each, the root is the reference root, and every key
    /// proves present or absent from the stored pages alone.
    #[test]
    fn paged_updates_match_the_reference_tree() {
        let mut mem = Mem::default();
        let mut root = EMPTY;
        let mut contents: BTreeMap<Hash, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
        let mut deepest = 0;
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..60u64 {
            let batch = [1, 2, 7, 50, 400][(next() % 5) as usize];
            let mut kv: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
            for _ in 0..batch {
                let key = format!("k{}", next() % 3_000).into_bytes();
                let value = match next() % 10 {
                    0..=2 => None,
                    3 => Some(vec![round as u8; 300 + (next() % 200) as usize]),
                    _ => Some(format!("v{round}-{}", next() % 5).into_bytes()),
                };
                kv.retain(|(k, _)| *k != key);
                kv.push((key, value));
            }
            let refs: Vec<(&[u8], Option<&[u8]>)> = kv
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_deref()))
                .collect();
            root = apply(&mut mem, root, &refs);
            for (k, v) in &kv {
                match v {
                    Some(v) => contents.insert(sha256(k), (k.clone(), v.clone())),
                    None => contents.remove(&sha256(k)),
                };
            }
            let entries: Vec<(Hash, Hash)> = contents
                .iter()
                .map(|(kh, (_, v))| (*kh, sha256(v)))
                .collect();
            assert_eq!(root, reference_root(&entries, 0), "round {round}");
            for (k, _) in kv.iter().take(20) {
                let (p, leaf) = prove(&mem, root, sha256(k)).unwrap();
                assert_eq!(lookup(&mem, root, &sha256(k)).unwrap(), leaf);
                deepest = deepest.max(p.siblings.len());
                match contents.get(&sha256(k)) {
                    Some((_, v)) => {
                        let leaf = leaf.expect("present");
                        assert_eq!(leaf.value_hash, sha256(v));
                        assert_eq!(
                            leaf.value.is_some(),
                            v.len() <= crate::page::INLINE_VALUE_MAX
                        );
                        assert!(verify(&root, k, Some(v), &p));
                    }
                    None => {
                        assert!(leaf.is_none());
                        assert!(verify(&root, k, None, &p));
                    }
                }
            }
        }
        assert!(contents.len() > 500);
        assert!(
            deepest > 2 * PAGE_LEVELS,
            "paths cross at least three pages"
        );
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
            let (p, leaf) = prove(&m, root, sha256(k)).unwrap();
            assert_eq!(leaf.map(|l| l.value_hash), Some(sha256(k)));
            assert!(verify(&root, k, Some(k), &p));
            assert!(!verify(&root, k, Some(b"wrong"), &p));
            assert!(
                !verify(&root, k, None, &p),
                "presence proof passed as absence"
            );
        }
        for i in 0..40 {
            let k = format!("absent{i}").into_bytes();
            let (p, leaf) = prove(&m, root, sha256(&k)).unwrap();
            assert_eq!(leaf, None);
            assert!(verify(&root, &k, None, &p));
            assert!(!verify(&root, &k, Some(b"x"), &p));
            assert!(!verify(&Hash([1; 32]), &k, None, &p));
        }
        // Empty tree: absence with an empty proof.
        let (p, _) = prove(&m, EMPTY, sha256(b"k")).unwrap();
        assert!(verify(&EMPTY, b"k", None, &p));
    }

    #[test]
    fn a_missing_page_is_an_error_not_an_absence() {
        let mut m = Mem::default();
        let keys: Vec<Vec<u8>> = (0u32..200)
            .map(|i| format!("key{i}").into_bytes())
            .collect();
        let kv: Vec<(&[u8], Option<&[u8]>)> = keys
            .iter()
            .map(|k| (k.as_slice(), Some(b"v".as_slice())))
            .collect();
        let root = apply(&mut m, EMPTY, &kv);
        assert!(m.0.len() > 1);
        // Drop one page below the root: reads through it must fail.
        let lost = *m.0.keys().find(|h| **h != root).unwrap();
        m.0.remove(&lost);
        let failed = keys
            .iter()
            .filter(|k| matches!(prove(&m, root, sha256(k)), Err(StoreError::MissingPage(h)) if h == lost))
            .count();
        assert!(failed > 0);
        let ups = keys
            .iter()
            .map(|k| (sha256(k), Some(Leaf::new(sha256(k), b"w"))))
            .collect();
        assert!(matches!(
            update(&m, root, &ups, &mut BTreeMap::new()),
            Err(StoreError::MissingPage(h)) if h == lost
        ));
    }
}
