//! Storage pages of the state tree: the binary tree's nodes kept
//! [`PAGE_LEVELS`] levels at a time, one stored record per page.
//!
//! Pages change how the tree is stored, not what it is: every hash, root
//! and proof is the binary tree of [`crate::smt`]. A page is the subtree
//! under one node at a depth that is a multiple of [`PAGE_LEVELS`], cut off
//! [`PAGE_LEVELS`] levels below it; it is stored under that node's hash. Why
//! pages: each stored record costs about a microsecond in RocksDB's
//! memtable whatever its size, and a transfer rewrote some 16 binary nodes;
//! with pages it rewrites about three records, of similar total bytes.
//!
//! Inside a page, in pre-order from its root:
//!
//! ```text
//! 0x00                                  empty subtree
//! 0x01 key_hash(32) len(u16 LE) value   leaf holding its value (len <= INLINE_VALUE_MAX)
//! 0x02 key_hash(32) value_hash(32)      leaf whose value is stored apart, by hash
//! 0x03 left right                       internal node, above the page's bottom level
//! 0x04 hash(32)                         at the bottom level: the root of another page
//! ```
//!
//! A page's root is a leaf (only the whole tree's root, when it holds one
//! entry) or an internal node. Leaves sit where the tree puts them, at any
//! level of the page including the bottom one (a leaf never gets a page of
//! its own, except as the root). Decoding recomputes every hash, so a page
//! that does not hash to the key it was read under is reported corrupt.

use std::sync::Arc;

use palisade_types::{sha256, Hash};

use crate::tree_hash::{internal_hash, leaf_hash, EMPTY};
use crate::StoreError;

/// Binary levels per page: 16 subtrees hang below a full page.
pub const PAGE_LEVELS: usize = 4;

/// Values up to this many bytes live in their leaf (accounts are some 25
/// bytes); larger ones are stored once, by hash, so a page stays small when
/// its neighbours change.
pub const INLINE_VALUE_MAX: usize = 256;

/// Slots of a full page: a complete binary tree of `PAGE_LEVELS + 1` levels.
pub(crate) const MAX_SLOTS: usize = (1 << (PAGE_LEVELS + 1)) - 1;

const TAG_EMPTY: u8 = 0x00;
const TAG_LEAF_INLINE: u8 = 0x01;
const TAG_LEAF_HASHED: u8 = 0x02;
const TAG_INTERNAL: u8 = 0x03;
const TAG_CHILD: u8 = 0x04;

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub key_hash: Hash,
    pub value_hash: Hash,
    /// The value itself when it is at most [`INLINE_VALUE_MAX`] bytes;
    /// `None` when it is stored apart under `value_hash`. Shared: a tree
    /// update copies every unchanged leaf of each page it rewrites, and a
    /// copy then costs a reference count, not an allocation.
    pub value: Option<Arc<[u8]>>,
}

impl Leaf {
    /// The leaf for `value` under `key_hash`, inline when small enough.
    pub fn new(key_hash: Hash, value: &[u8]) -> Leaf {
        Leaf {
            key_hash,
            value_hash: sha256(value),
            value: (value.len() <= INLINE_VALUE_MAX).then(|| value.into()),
        }
    }

    pub fn hash(&self) -> Hash {
        leaf_hash(&self.key_hash, &self.value_hash)
    }
}

/// A node of a page, with its hash where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Empty,
    Leaf {
        leaf: Leaf,
        hash: Hash,
    },
    /// `left` and `right` index the page's slots.
    Internal {
        hash: Hash,
        left: u8,
        right: u8,
    },
    /// The root of another page (only at the bottom level).
    Child(Hash),
}

impl Slot {
    pub fn hash(&self) -> Hash {
        match self {
            Slot::Empty => EMPTY,
            Slot::Leaf { hash, .. } | Slot::Internal { hash, .. } | Slot::Child(hash) => *hash,
        }
    }
}

/// A decoded page. `slots[0]` is its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    slots: Vec<Slot>,
    /// [`Page::weight`], worked out once: caches weigh every page they
    /// take, thousands per block.
    weight: usize,
}

impl Page {
    /// Builds a page from slots laid out in pre-order with slot 0 the root;
    /// checks the layout as [`Page::decode`] does.
    pub(crate) fn from_slots(slots: Vec<Slot>) -> Result<Page, StoreError> {
        let mut page = Page { slots, weight: 0 };
        let inline_bytes = page.check()?;
        page.weight = 64 + page.slots.len() * std::mem::size_of::<Slot>() + inline_bytes;
        Ok(page)
    }

    /// Checks the layout; returns the bytes of the values held inline.
    fn check(&self) -> Result<usize, StoreError> {
        let bad = |why: &str| Err(StoreError::Corrupt(format!("state page: {why}")));
        if self.slots.is_empty() || self.slots.len() > MAX_SLOTS {
            return bad("slot count out of range");
        }
        if matches!(self.slots[0], Slot::Empty | Slot::Child(_)) {
            return bad("root is not a leaf or an internal node");
        }
        // Every slot but the root is the child of exactly one internal slot
        // at the right level.
        let mut seen = vec![false; self.slots.len()];
        let mut stack = vec![(0usize, 0usize)];
        let mut visited = 0;
        let mut inline_bytes = 0;
        while let Some((i, level)) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                return bad("slot reached twice");
            }
            visited += 1;
            match &self.slots[i] {
                Slot::Internal { left, right, .. } => {
                    if level >= PAGE_LEVELS {
                        return bad("internal node at the bottom level");
                    }
                    for c in [*left, *right] {
                        let c = usize::from(c);
                        if c <= i || c >= self.slots.len() {
                            return bad("child index out of order");
                        }
                        stack.push((c, level + 1));
                    }
                }
                Slot::Child(_) if level != PAGE_LEVELS => {
                    return bad("page reference above the bottom level");
                }
                Slot::Leaf {
                    leaf: Leaf { value: Some(v), .. },
                    ..
                } => {
                    if v.len() > INLINE_VALUE_MAX {
                        return bad("inline value too large");
                    }
                    inline_bytes += v.len();
                }
                _ => {}
            }
        }
        if visited != self.slots.len() {
            return bad("unreachable slot");
        }
        Ok(inline_bytes)
    }

    /// The page's root hash: the key it is stored under.
    pub fn hash(&self) -> Hash {
        self.slots[0].hash()
    }

    /// Every slot, in pre-order from the root: children and leaves come
    /// left to right.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub fn slot(&self, i: u8) -> Result<&Slot, StoreError> {
        self.slots
            .get(usize::from(i))
            .ok_or_else(|| StoreError::Corrupt(format!("state page: no slot {i}")))
    }

    /// About how many bytes the decoded page holds (cache accounting).
    pub fn weight(&self) -> usize {
        self.weight
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.slots.len() * 40);
        self.encode_into(&mut out);
        out
    }

    /// [`Page::encode`] appended to `out` (a record that starts with
    /// something else need not copy the encoding in).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.encode_slot(0, out);
    }

    fn encode_slot(&self, i: usize, out: &mut Vec<u8>) {
        let Some(slot) = self.slots.get(i) else {
            return;
        };
        match slot {
            Slot::Empty => out.push(TAG_EMPTY),
            Slot::Leaf { leaf, .. } => match &leaf.value {
                Some(v) => {
                    out.push(TAG_LEAF_INLINE);
                    out.extend_from_slice(&leaf.key_hash.0);
                    // At most INLINE_VALUE_MAX (checked when the page was
                    // made): fits a u16.
                    let len = u16::try_from(v.len()).unwrap_or(u16::MAX);
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(v);
                }
                None => {
                    out.push(TAG_LEAF_HASHED);
                    out.extend_from_slice(&leaf.key_hash.0);
                    out.extend_from_slice(&leaf.value_hash.0);
                }
            },
            Slot::Internal { left, right, .. } => {
                out.push(TAG_INTERNAL);
                self.encode_slot(usize::from(*left), out);
                self.encode_slot(usize::from(*right), out);
            }
            Slot::Child(h) => {
                out.push(TAG_CHILD);
                out.extend_from_slice(&h.0);
            }
        }
    }

    /// Decodes a page read under `expected` (its root hash), recomputing
    /// every hash. Rejects anything but the canonical encoding of a page
    /// that hashes to `expected`.
    pub fn decode(bytes: &[u8], expected: &Hash) -> Result<Page, StoreError> {
        let mut r = Reader { bytes, pos: 0 };
        let mut slots = Vec::new();
        r.slot(0, &mut slots)?;
        if r.pos != bytes.len() {
            return Err(StoreError::Corrupt(format!(
                "state page {expected}: trailing bytes"
            )));
        }
        let page = Page::from_slots(slots)?;
        if page.hash() != *expected {
            return Err(StoreError::Corrupt(format!(
                "state page {expected} hashes to {}",
                page.hash()
            )));
        }
        Ok(page)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], StoreError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(StoreError::Corrupt("state page: truncated".into()));
        };
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn hash(&mut self) -> Result<Hash, StoreError> {
        let b = self.take(32)?;
        Hash::from_slice(b).ok_or_else(|| StoreError::Corrupt("state page: truncated".into()))
    }

    /// Reads the subtree at `level` of the page into `slots`, returning its
    /// slot index.
    fn slot(&mut self, level: usize, slots: &mut Vec<Slot>) -> Result<u8, StoreError> {
        let bad = |why: &str| StoreError::Corrupt(format!("state page: {why}"));
        if slots.len() >= MAX_SLOTS {
            return Err(bad("too many slots"));
        }
        let index = u8::try_from(slots.len()).map_err(|_| bad("too many slots"))?;
        let tag = self.take(1)?[0];
        match tag {
            TAG_EMPTY => slots.push(Slot::Empty),
            TAG_LEAF_INLINE => {
                let key_hash = self.hash()?;
                let len_bytes = self.take(2)?;
                let len = usize::from(u16::from_le_bytes([len_bytes[0], len_bytes[1]]));
                if len > INLINE_VALUE_MAX {
                    return Err(bad("inline value too large"));
                }
                let leaf = Leaf::new(key_hash, self.take(len)?);
                slots.push(Slot::Leaf {
                    hash: leaf.hash(),
                    leaf,
                });
            }
            TAG_LEAF_HASHED => {
                let leaf = Leaf {
                    key_hash: self.hash()?,
                    value_hash: self.hash()?,
                    value: None,
                };
                slots.push(Slot::Leaf {
                    hash: leaf.hash(),
                    leaf,
                });
            }
            TAG_INTERNAL => {
                if level >= PAGE_LEVELS {
                    return Err(bad("internal node at the bottom level"));
                }
                slots.push(Slot::Empty);
                let left = self.slot(level + 1, slots)?;
                let right = self.slot(level + 1, slots)?;
                let hash = internal_hash(
                    &slots[usize::from(left)].hash(),
                    &slots[usize::from(right)].hash(),
                );
                slots[usize::from(index)] = Slot::Internal { hash, left, right };
            }
            TAG_CHILD => {
                if level != PAGE_LEVELS {
                    return Err(bad("page reference above the bottom level"));
                }
                slots.push(Slot::Child(self.hash()?));
            }
            other => return Err(bad(&format!("unknown tag {other:#04x}"))),
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8, value: &[u8]) -> Slot {
        let leaf = Leaf::new(Hash([i; 32]), value);
        Slot::Leaf {
            hash: leaf.hash(),
            leaf,
        }
    }

    /// Root internal node over a small leaf and a large (hashed) one.
    fn sample() -> Page {
        let (l, r) = (leaf(1, b"small"), leaf(0x80, &[7; 300]));
        let hash = internal_hash(&l.hash(), &r.hash());
        Page::from_slots(vec![
            Slot::Internal {
                hash,
                left: 1,
                right: 2,
            },
            l,
            r,
        ])
        .unwrap()
    }

    #[test]
    fn encoding_round_trips_and_is_checked_against_its_hash() {
        let p = sample();
        let bytes = p.encode();
        assert_eq!(bytes[0], TAG_INTERNAL);
        assert_eq!(bytes[1], TAG_LEAF_INLINE);
        assert_eq!(Page::decode(&bytes, &p.hash()).unwrap(), p);
        assert!(Page::decode(&bytes, &Hash([9; 32])).is_err());
        let mut flipped = bytes.clone();
        flipped[5] ^= 1;
        assert!(Page::decode(&flipped, &p.hash()).is_err());
    }

    /// Each is refused for its own reason (checked by message), not just
    /// because it fails to hash to the key.
    #[test]
    fn malformed_pages_are_rejected() {
        let p = sample();
        let bytes = p.encode();
        let h = p.hash();
        let reject = |b: &[u8], why: &str| match Page::decode(b, &h) {
            Err(StoreError::Corrupt(msg)) => assert!(msg.contains(why), "{why}: got {msg}"),
            other => panic!("{why}: got {other:?}"),
        };
        reject(&[bytes.as_slice(), &[0]].concat(), "trailing bytes");
        reject(&bytes[..bytes.len() - 1], "truncated");
        reject(&[], "truncated");
        reject(&[0x07], "unknown tag");
        reject(&[TAG_EMPTY], "root is not");
        reject(&[&[TAG_CHILD][..], &[3; 32]].concat(), "reference above");
        // An internal node at the bottom level (five levels of them).
        let mut deep = vec![TAG_INTERNAL; PAGE_LEVELS + 1];
        deep.extend([TAG_EMPTY; PAGE_LEVELS + 2]);
        reject(&deep, "internal node at the bottom");
        // A page reference one level below the root.
        let shallow = [&[TAG_INTERNAL, TAG_CHILD][..], &[3; 32], &[TAG_EMPTY]].concat();
        reject(&shallow, "reference above the bottom");
        // An inline value longer than allowed.
        let mut big = vec![TAG_LEAF_INLINE];
        big.extend([1; 32]);
        big.extend(((INLINE_VALUE_MAX + 1) as u16).to_le_bytes());
        big.extend(vec![0; INLINE_VALUE_MAX + 1]);
        reject(&big, "inline value too large");
        // Well formed, but another page.
        reject(&sample_other().encode(), "hashes to");
    }

    fn sample_other() -> Page {
        Page::from_slots(vec![leaf(5, b"other")]).unwrap()
    }

    #[test]
    fn slot_layouts_that_are_not_a_tree_are_refused() {
        let l = leaf(1, b"x");
        let h = internal_hash(&l.hash(), &l.hash());
        // Both children the same slot.
        let shared = vec![
            Slot::Internal {
                hash: h,
                left: 1,
                right: 1,
            },
            l.clone(),
        ];
        assert!(Page::from_slots(shared).is_err());
        // A child pointing back at its parent.
        let cycle = vec![
            Slot::Internal {
                hash: h,
                left: 0,
                right: 1,
            },
            l.clone(),
        ];
        assert!(Page::from_slots(cycle).is_err());
        // A slot nothing points at.
        let stray = vec![l.clone(), Slot::Empty];
        assert!(Page::from_slots(stray).is_err());
        // An inline value too large for the encoding's rule.
        let fat = Leaf {
            key_hash: Hash([1; 32]),
            value_hash: Hash([2; 32]),
            value: Some(vec![0; INLINE_VALUE_MAX + 1].into()),
        };
        let fat = Slot::Leaf {
            hash: fat.hash(),
            leaf: fat,
        };
        assert!(Page::from_slots(vec![fat]).is_err());
    }

    #[test]
    fn weight_counts_slots_and_inline_values() {
        let small = Page::from_slots(vec![leaf(5, b"abc")]).unwrap();
        let big = Page::from_slots(vec![leaf(5, &[7; 200])]).unwrap();
        assert_eq!(big.weight() - small.weight(), 197);
        // A decoded page weighs what the page it was encoded from did.
        let page = sample();
        let decoded = Page::decode(&page.encode(), &page.hash()).unwrap();
        assert_eq!(decoded.weight(), page.weight());
        assert!(page.weight() > 64 + 3 * std::mem::size_of::<Slot>());
    }
}
