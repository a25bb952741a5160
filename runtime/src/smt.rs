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

use crate::page::{Leaf, Page, Slot, MAX_SLOTS, PAGE_LEVELS};
pub use crate::tree_hash::{internal_hash, leaf_hash, EMPTY};
use crate::StoreError;

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
///
/// The new pages are built in place, slot by slot, on one walk down the
/// old tree: each rewritten page's slots go straight into the vector the
/// page is made from, and unchanged slots are copied across from the old
/// page, which the walk only borrows. Building an intermediate tree of
/// boxed nodes first (cloning leaves out of the old pages) and laying it
/// out afterwards moved every slot twice; the update was then about half
/// of a block's execution time
/// (docs/benchmarks/history/2026-12-04-r6-tree-update.md).
///
/// Every page of the old tree that the update rewrote goes into
/// `replaced` (the pages a pruned node may delete once no kept version
/// needs them; a rewritten page that comes out the same is in both).
pub fn update(
    source: &dyn PageSource,
    root: Hash,
    updates: &BTreeMap<Hash, Option<Leaf>>,
    new_pages: &mut BTreeMap<Hash, Arc<Page>>,
    replaced: &mut Vec<Hash>,
) -> Result<Hash, StoreError> {
    if updates.is_empty() {
        // Nothing changed: no page to write.
        return Ok(root);
    }
    let ups: Vec<(&Hash, Option<&Leaf>)> = updates.iter().map(|(k, v)| (k, v.as_ref())).collect();
    let at = if root == EMPTY {
        At::Empty
    } else {
        At::Unloaded(root)
    };
    let mut b = Builder {
        source,
        out: new_pages,
        replaced,
        spare: Vec::new(),
    };
    let mut slots = b.scratch();
    b.subtree(at, 0, 0, &ups, &mut slots)?;
    if matches!(slots.first(), None | Some(Slot::Empty)) {
        return Ok(EMPTY);
    }
    b.emit(slots)
}

/// A subtree of the tree before the update, borrowed from the page that
/// holds it.
#[derive(Clone, Copy)]
enum At<'p> {
    Empty,
    Leaf(&'p Leaf, Hash),
    /// An internal node inside a page that was read.
    Internal(&'p Page, u8),
    /// The root of a page not read yet.
    Unloaded(Hash),
}

impl<'p> At<'p> {
    fn of(page: &'p Page, i: u8) -> Result<At<'p>, StoreError> {
        Ok(match page.slot(i)? {
            Slot::Empty => At::Empty,
            Slot::Leaf { leaf, hash } => At::Leaf(leaf, *hash),
            Slot::Internal { .. } => At::Internal(page, i),
            Slot::Child(h) => At::Unloaded(*h),
        })
    }
}

struct Builder<'a> {
    source: &'a dyn PageSource,
    out: &'a mut BTreeMap<Hash, Arc<Page>>,
    /// Old pages read to be rewritten.
    replaced: &'a mut Vec<Hash>,
    /// Emptied page buffers, one per page level in use at most.
    spare: Vec<Vec<Slot>>,
}

impl Builder<'_> {
    /// Writes the updated subtree at `at` (`depth` in the tree, `level`
    /// below the root of the page being built) into `slots` in pre-order;
    /// returns the index of its root slot. `ups` is sorted by key hash and
    /// all share the path to this subtree.
    ///
    /// A subtree that comes out empty or a single leaf takes exactly one
    /// slot: that is what lets the parent collapse it upward (see
    /// [`Builder::join`]) by truncating.
    fn subtree(
        &mut self,
        at: At<'_>,
        depth: usize,
        level: usize,
        ups: &[(&Hash, Option<&Leaf>)],
        slots: &mut Vec<Slot>,
    ) -> Result<u8, StoreError> {
        if ups.is_empty() {
            return copy_at(at, level, slots);
        }
        if level == PAGE_LEVELS {
            // The bottom of this page: what is below lives in a page of
            // its own, unless it comes out empty or a single leaf (a leaf
            // never gets a page of its own, except as the whole tree's root).
            let mut child = self.scratch();
            self.subtree(at, depth, 0, ups, &mut child)?;
            let slot = match child.first() {
                Some(Slot::Internal { .. }) => Slot::Child(self.emit(child)?),
                _ => {
                    let leaf = child
                        .pop()
                        .ok_or_else(|| StoreError::Corrupt("empty page built".into()))?;
                    self.spare.push(child);
                    leaf
                }
            };
            return push(slots, slot);
        }
        match at {
            At::Empty => {
                let live: Vec<&Leaf> = ups.iter().filter_map(|(_, v)| *v).collect();
                self.build(&live, depth, level, slots)
            }
            At::Leaf(old, _) => {
                // Merge the existing entry with the updates (an update of the
                // same key wins) and rebuild this subtree from scratch.
                let mut live: Vec<&Leaf> = ups.iter().filter_map(|(_, v)| *v).collect();
                if !ups.iter().any(|(k, _)| **k == old.key_hash) {
                    live.push(old);
                    live.sort_by_key(|l| l.key_hash);
                }
                self.build(&live, depth, level, slots)
            }
            At::Unloaded(h) => {
                // Only pages on an update's path are read here (`ups` is
                // not empty), and each is rewritten.
                self.replaced.push(h);
                let page = load(self.source, &h)?;
                self.subtree(At::of(&page, 0)?, depth, level, ups, slots)
            }
            At::Internal(page, slot) => {
                if depth >= 256 {
                    return Err(StoreError::Corrupt("tree deeper than 256".into()));
                }
                let Slot::Internal { left, right, .. } = page.slot(slot)? else {
                    return Err(StoreError::Corrupt("state page slot kind changed".into()));
                };
                let split = ups.partition_point(|(k, _)| !bit(k, depth));
                let p = push(slots, Slot::Empty)?;
                let l = self.subtree(
                    At::of(page, *left)?,
                    depth + 1,
                    level + 1,
                    &ups[..split],
                    slots,
                )?;
                let r = self.subtree(
                    At::of(page, *right)?,
                    depth + 1,
                    level + 1,
                    &ups[split..],
                    slots,
                )?;
                join(slots, p, l, r)
            }
        }
    }

    /// Writes a subtree holding exactly `live` (sorted, distinct keys).
    fn build(
        &mut self,
        live: &[&Leaf],
        depth: usize,
        level: usize,
        slots: &mut Vec<Slot>,
    ) -> Result<u8, StoreError> {
        match live {
            [] => push(slots, Slot::Empty),
            [one] => push(
                slots,
                Slot::Leaf {
                    leaf: (*one).clone(),
                    hash: one.hash(),
                },
            ),
            _ if level == PAGE_LEVELS => {
                let mut child = self.scratch();
                self.build(live, depth, 0, &mut child)?;
                let h = self.emit(child)?;
                push(slots, Slot::Child(h))
            }
            _ => {
                if depth >= 256 {
                    return Err(StoreError::Corrupt("keys share all 256 bits".into()));
                }
                let split = live.partition_point(|l| !bit(&l.key_hash, depth));
                // Two or more entries need an internal node even when all
                // fall on one side (that side is itself internal); distinct
                // key hashes separate at some depth below 256.
                let p = push(slots, Slot::Empty)?;
                let l = self.build(&live[..split], depth + 1, level + 1, slots)?;
                let r = self.build(&live[split..], depth + 1, level + 1, slots)?;
                set_internal(slots, p, l, r)
            }
        }
    }

    /// A buffer to build a page in, with room for a full one.
    fn scratch(&mut self) -> Vec<Slot> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_SLOTS))
    }

    /// Stores a finished page; returns its hash. The page gets a vector
    /// of exactly its slots (caches hold thousands of pages and weigh
    /// them by slot count); the buffer goes back for the next page.
    fn emit(&mut self, mut slots: Vec<Slot>) -> Result<Hash, StoreError> {
        let mut exact = Vec::with_capacity(slots.len());
        exact.append(&mut slots);
        let page = Page::from_slots(exact)?;
        self.spare.push(slots);
        let hash = page.hash();
        self.out.insert(hash, Arc::new(page));
        Ok(hash)
    }
}

fn push(slots: &mut Vec<Slot>, slot: Slot) -> Result<u8, StoreError> {
    let i = slot_index(slots)?;
    slots.push(slot);
    Ok(i)
}

fn slot_index(slots: &[Slot]) -> Result<u8, StoreError> {
    u8::try_from(slots.len()).map_err(|_| StoreError::Corrupt("state page too large".into()))
}

fn slot_hash(slots: &[Slot], i: u8) -> Hash {
    slots.get(usize::from(i)).map_or(EMPTY, Slot::hash)
}

/// Makes slot `p` the internal node over slots `l` and `r`.
fn set_internal(slots: &mut [Slot], p: u8, l: u8, r: u8) -> Result<u8, StoreError> {
    let hash = internal_hash(&slot_hash(slots, l), &slot_hash(slots, r));
    let at = slots
        .get_mut(usize::from(p))
        .ok_or_else(|| StoreError::Corrupt("state page slot out of range".into()))?;
    *at = Slot::Internal {
        hash,
        left: l,
        right: r,
    };
    Ok(p)
}

/// Finishes the node at slot `p` over the updated subtrees at `l` and `r`:
/// collapsed to nothing when both are empty, or to the leaf when the
/// other side is empty (keeps the canonical shape on delete). Either
/// side is then a single slot, so the node's three slots are the last.
fn join(slots: &mut Vec<Slot>, p: u8, l: u8, r: u8) -> Result<u8, StoreError> {
    let kind = |i: u8| match slots.get(usize::from(i)) {
        Some(Slot::Empty) => Some(false),
        Some(Slot::Leaf { .. }) => Some(true),
        _ => None,
    };
    match (kind(l), kind(r)) {
        (Some(false), Some(_)) | (Some(_), Some(false)) => {
            let keep = if kind(l) == Some(true) { l } else { r };
            let slot = std::mem::replace(&mut slots[usize::from(keep)], Slot::Empty);
            slots.truncate(usize::from(p));
            push(slots, slot)
        }
        _ => set_internal(slots, p, l, r),
    }
}

/// Copies an unchanged subtree into the page being built, `level` levels
/// below its root.
fn copy_at(at: At<'_>, level: usize, slots: &mut Vec<Slot>) -> Result<u8, StoreError> {
    let i = slot_index(slots)?;
    match at {
        At::Empty => slots.push(Slot::Empty),
        At::Leaf(leaf, hash) => slots.push(Slot::Leaf {
            leaf: leaf.clone(),
            hash,
        }),
        // Internal nodes keep their depth across updates (only leaves move
        // up or down), so an unchanged page root lands at a page's bottom
        // level again.
        At::Unloaded(h) if level == PAGE_LEVELS => slots.push(Slot::Child(h)),
        At::Unloaded(_) => {
            return Err(StoreError::Corrupt(
                "stored page found above a page's bottom level".into(),
            ))
        }
        At::Internal(page, slot) => copy(page, slot, level, slots)?,
    }
    Ok(i)
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
        let r = update(mem, root, &ups, &mut new, &mut Vec::new()).unwrap();
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
            update(&m, root, &ups, &mut BTreeMap::new(), &mut Vec::new()),
            Err(StoreError::MissingPage(h)) if h == lost
        ));
    }

    /// Every page reachable from `root`.
    fn reachable(mem: &Mem, root: Hash) -> std::collections::BTreeSet<Hash> {
        let mut out = std::collections::BTreeSet::new();
        let mut stack = if root == EMPTY { vec![] } else { vec![root] };
        while let Some(h) = stack.pop() {
            out.insert(h);
            for s in mem.0[&h].slots() {
                if let Slot::Child(c) = s {
                    stack.push(*c);
                }
            }
        }
        out
    }

    #[test]
    fn replaced_pages_are_exactly_those_the_new_tree_no_longer_has() {
        // Inserts, overwrites (some with the same value), deletions that
        // collapse subtrees, and a value set back to what it was.
        let mut mem = Mem::default();
        let mut root = EMPTY;
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for round in 0..60 {
            let n = 1 + next() % 300;
            let ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..n)
                .map(|_| {
                    let k = format!("k{}", next() % 2_000).into_bytes();
                    let v = match next() % 4 {
                        0 => None,
                        1 => Some(b"same".to_vec()),
                        _ => Some(format!("v{round}").into_bytes()),
                    };
                    (k, v)
                })
                .collect();
            let ups: BTreeMap<Hash, Option<Leaf>> = ops
                .iter()
                .map(|(k, v)| (sha256(k), v.as_ref().map(|v| Leaf::new(sha256(k), v))))
                .collect();
            let before = reachable(&mem, root);
            let mut new = BTreeMap::new();
            let mut replaced = Vec::new();
            let r = update(&mem, root, &ups, &mut new, &mut replaced).unwrap();
            replaced.retain(|h| !new.contains_key(h));
            mem.0.extend(new);
            let after = reachable(&mem, r);
            let gone: std::collections::BTreeSet<Hash> =
                before.difference(&after).copied().collect();
            let got: std::collections::BTreeSet<Hash> = replaced.iter().copied().collect();
            assert_eq!(got.len(), replaced.len(), "a page reported twice");
            assert_eq!(got, gone, "round {round}");
            root = r;
        }
    }
}
