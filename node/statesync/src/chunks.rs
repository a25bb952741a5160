//! The state tree as a stream of items cut into chunks, and the check that
//! a stream is exactly the tree under a given root.
//!
//! Items, in order: the tree's pages in pre-order (a page, then the large
//! values its leaves name, in slot order, then its child pages left to
//! right, each followed the same way). Each item is
//!
//! ```text
//! tag (1 byte: 0x01 page, 0x02 value) | length (u32 LE) | bytes
//! ```
//!
//! where a page is its storage encoding ([`Page::encode`]) and a value is
//! the value's bytes. A chunk is closed after the item that takes it to
//! [`CHUNK_TARGET_BYTES`] or more, so the same tree always gives the same
//! chunks, on every node: a joining node can fetch different chunks from
//! different peers and check each against the manifest's hash of it.
//!
//! The stream is checked in order against the root alone: the next item
//! must be the page or value that the pages already accepted say comes
//! next, and a page must hash to the hash its parent names
//! ([`Page::decode`] recomputes every hash). Nothing unproven is ever
//! accepted, and a stream that ends early or runs long is refused.

use palisade_runtime::page::{Page, Slot, INLINE_VALUE_MAX};
use palisade_runtime::smt::EMPTY;
use palisade_runtime::{StateStore, StoreError};
use palisade_types::{sha256, Hash};

/// A chunk is closed once it holds this many bytes or more.
pub const CHUNK_TARGET_BYTES: usize = 1 << 20;
/// Largest item: above any page (31 slots of at most 291 bytes) and any
/// state value (64 KiB at most, by the chain's parameters' bound).
pub const MAX_ITEM_BYTES: usize = 1 << 20;
const ITEM_HEADER_BYTES: usize = 5;
/// Largest chunk: just under the target, plus one largest item.
pub const MAX_CHUNK_BYTES: usize = CHUNK_TARGET_BYTES + ITEM_HEADER_BYTES + MAX_ITEM_BYTES;

const TAG_PAGE: u8 = 0x01;
const TAG_VALUE: u8 = 0x02;

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("malformed chunk: {0}")]
    Malformed(String),
    #[error("chunk does not belong to the snapshot's state root: {0}")]
    Mismatch(String),
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("writing the chunk: {0}")]
    Sink(#[from] std::io::Error),
}

/// Walks the tree under `root` and hands each chunk to `sink`, in order.
/// Returns how many pages and values it wrote.
pub fn write_chunks(
    store: &dyn StateStore,
    root: Hash,
    mut sink: impl FnMut(Vec<u8>) -> std::io::Result<()>,
) -> Result<Counts, ChunkError> {
    let mut counts = Counts::default();
    let mut stack = if root == EMPTY {
        Vec::new()
    } else {
        vec![root]
    };
    let mut chunk = Vec::with_capacity(CHUNK_TARGET_BYTES + MAX_ITEM_BYTES);
    let mut emit = |chunk: &mut Vec<u8>, tag: u8, bytes: &[u8]| -> Result<(), ChunkError> {
        push_item(chunk, tag, bytes)?;
        if chunk.len() >= CHUNK_TARGET_BYTES {
            sink(std::mem::take(chunk))?;
        }
        Ok(())
    };
    while let Some(hash) = stack.pop() {
        let page = store.page(&hash)?.ok_or(StoreError::MissingPage(hash))?;
        emit(&mut chunk, TAG_PAGE, &page.encode())?;
        counts.pages += 1;
        for slot in page.slots() {
            if let Slot::Leaf { leaf, .. } = slot {
                if leaf.value.is_none() {
                    let value = store.value_by_hash(&leaf.value_hash)?.ok_or_else(|| {
                        StoreError::Corrupt(format!("value {} missing", leaf.value_hash))
                    })?;
                    emit(&mut chunk, TAG_VALUE, &value)?;
                    counts.values += 1;
                }
            }
        }
        stack.extend(page.slots().iter().rev().filter_map(|s| match s {
            Slot::Child(h) => Some(*h),
            _ => None,
        }));
    }
    if !chunk.is_empty() {
        sink(chunk)?;
    }
    Ok(counts)
}

/// Pages and values in a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pages: u64,
    pub values: u64,
}

fn push_item(chunk: &mut Vec<u8>, tag: u8, bytes: &[u8]) -> Result<(), ChunkError> {
    if bytes.len() > MAX_ITEM_BYTES {
        return Err(ChunkError::Malformed(format!(
            "an item of {} bytes is over the limit of {MAX_ITEM_BYTES}",
            bytes.len()
        )));
    }
    chunk.push(tag);
    // At most MAX_ITEM_BYTES: fits.
    chunk.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    chunk.extend_from_slice(bytes);
    Ok(())
}

/// What comes next in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A page, and whether it is the whole tree's root.
    Page(Hash, bool),
    Value(Hash),
}

/// The items of one chunk that proved to belong to the tree, ready to
/// store: pages (by hash, in their storage encoding) and values (by hash).
#[derive(Debug, Default)]
pub struct Proven {
    pub pages: Vec<(Hash, Page)>,
    pub values: Vec<(Hash, Vec<u8>)>,
}

/// Checks chunks, in order, against a state root.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Items still owed, the next one last.
    expect: Vec<Expect>,
}

impl Verifier {
    pub fn new(root: Hash) -> Verifier {
        Verifier {
            expect: if root == EMPTY {
                Vec::new()
            } else {
                vec![Expect::Page(root, true)]
            },
        }
    }

    /// Checks the next chunk. On an error nothing changes, so the same
    /// chunk fetched from someone else can be fed instead.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Proven, ChunkError> {
        if chunk.is_empty() || chunk.len() > MAX_CHUNK_BYTES {
            return Err(ChunkError::Malformed(format!(
                "{} bytes (a chunk has 1 to {MAX_CHUNK_BYTES})",
                chunk.len()
            )));
        }
        let mut expect = self.expect.clone();
        let mut proven = Proven::default();
        let mut rest = chunk;
        while !rest.is_empty() {
            let (tag, bytes, after) = split_item(rest)?;
            rest = after;
            let next = expect
                .pop()
                .ok_or_else(|| ChunkError::Mismatch("more items than the tree holds".into()))?;
            match (tag, next) {
                (TAG_PAGE, Expect::Page(hash, is_root)) => {
                    let page = Page::decode(bytes, &hash)
                        .map_err(|e| ChunkError::Mismatch(e.to_string()))?;
                    let slots = page.slots();
                    // The layout every node writes: only the whole tree's
                    // root may be a lone leaf. (Another layout of the same
                    // tree hashes the same, but would make this node's own
                    // snapshots differ from everyone else's.)
                    if !is_root && !matches!(slots.first(), Some(Slot::Internal { .. })) {
                        return Err(ChunkError::Mismatch(format!(
                            "page {hash} is a lone leaf below the root"
                        )));
                    }
                    expect.extend(slots.iter().rev().filter_map(|s| match s {
                        Slot::Child(h) => Some(Expect::Page(*h, false)),
                        _ => None,
                    }));
                    expect.extend(slots.iter().rev().filter_map(|s| match s {
                        Slot::Leaf { leaf, .. } if leaf.value.is_none() => {
                            Some(Expect::Value(leaf.value_hash))
                        }
                        _ => None,
                    }));
                    proven.pages.push((hash, page));
                }
                (TAG_VALUE, Expect::Value(hash)) => {
                    if bytes.len() <= INLINE_VALUE_MAX {
                        return Err(ChunkError::Mismatch(format!(
                            "a value of {} bytes stored apart (values up to {INLINE_VALUE_MAX} bytes live in their leaf)",
                            bytes.len()
                        )));
                    }
                    if sha256(bytes) != hash {
                        return Err(ChunkError::Mismatch(format!(
                            "a value does not hash to {hash}"
                        )));
                    }
                    proven.values.push((hash, bytes.to_vec()));
                }
                (TAG_PAGE | TAG_VALUE, want) => {
                    return Err(ChunkError::Mismatch(format!(
                        "item of kind {tag} where {want:?} comes"
                    )))
                }
                (other, _) => {
                    return Err(ChunkError::Malformed(format!("unknown item tag {other}")))
                }
            }
        }
        self.expect = expect;
        Ok(proven)
    }

    /// Whether every item of the tree has been fed.
    pub fn is_complete(&self) -> bool {
        self.expect.is_empty()
    }
}

fn split_item(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), ChunkError> {
    let truncated = || ChunkError::Malformed("truncated item".into());
    let header = bytes.get(..ITEM_HEADER_BYTES).ok_or_else(truncated)?;
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_ITEM_BYTES {
        return Err(ChunkError::Malformed(format!(
            "an item of {len} bytes is over the limit of {MAX_ITEM_BYTES}"
        )));
    }
    let end = ITEM_HEADER_BYTES + len;
    let body = bytes.get(ITEM_HEADER_BYTES..end).ok_or_else(truncated)?;
    Ok((header[0], body, &bytes[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_runtime::{commit_writes, MemStore};
    use std::collections::BTreeMap;

    fn tree(n: u32, big: bool) -> (MemStore, Hash) {
        let mut store = MemStore::default();
        let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = (0..n)
            .map(|i| {
                let len = if big && i % 7 == 0 { 600 } else { 30 };
                (format!("key-{i}").into_bytes(), Some(vec![i as u8; len]))
            })
            .collect();
        let changes = commit_writes(&store, EMPTY, writes).unwrap();
        let root = changes.root;
        store.apply(&changes);
        (store, root)
    }

    fn chunks_of(store: &MemStore, root: Hash) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        write_chunks(store, root, |c| {
            out.push(c);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn a_tree_streams_and_verifies_back_whole() {
        let (store, root) = tree(40_000, true);
        let chunks = chunks_of(&store, root);
        assert!(chunks.len() > 1, "{} chunks", chunks.len());
        let mut v = Verifier::new(root);
        let mut rebuilt = MemStore::default();
        for c in &chunks {
            assert!(c.len() <= MAX_CHUNK_BYTES);
            let p = v.feed(c).unwrap();
            rebuilt.insert_proven(p);
        }
        assert!(v.is_complete());
        for i in (0..40_000u32).step_by(997) {
            let key = format!("key-{i}").into_bytes();
            assert_eq!(
                palisade_runtime::get_at(&rebuilt, root, &key).unwrap(),
                palisade_runtime::get_at(&store, root, &key).unwrap()
            );
        }
        // Same tree, same chunks.
        assert_eq!(chunks, chunks_of(&store, root));
    }

    #[test]
    fn wrong_order_corruption_and_other_roots_are_refused() {
        let (store, root) = tree(20_000, true);
        let chunks = chunks_of(&store, root);
        assert!(chunks.len() >= 2);
        // Out of order.
        assert!(matches!(
            Verifier::new(root).feed(&chunks[1]),
            Err(ChunkError::Mismatch(_))
        ));
        // One flipped byte anywhere in the first chunk.
        for at in [10, chunks[0].len() / 2, chunks[0].len() - 1] {
            let mut bad = chunks[0].clone();
            bad[at] ^= 1;
            let mut v = Verifier::new(root);
            assert!(v.feed(&bad).is_err(), "flip at {at} accepted");
            // Nothing changed: the good chunk still goes in.
            v.feed(&chunks[0]).unwrap();
        }
        // Another root.
        let (other, other_root) = tree(20_000, false);
        assert!(Verifier::new(root)
            .feed(&chunks_of(&other, other_root)[0])
            .is_err());
        // Truncated at the end: not complete.
        let mut v = Verifier::new(root);
        for c in &chunks[..chunks.len() - 1] {
            v.feed(c).unwrap();
        }
        assert!(!v.is_complete());
        // Extra bytes after the last item.
        let mut long = chunks[chunks.len() - 1].clone();
        long.extend_from_slice(&chunks[0][..40]);
        assert!(v.clone().feed(&long).is_err());
        v.feed(&chunks[chunks.len() - 1]).unwrap();
        assert!(v.is_complete());
        assert!(v.feed(&chunks[0]).is_err(), "past the end");
    }

    #[test]
    fn a_small_value_stored_apart_is_refused() {
        // A tree of one entry whose leaf names its value by hash: the same
        // root as the inline leaf, but not the layout nodes write.
        let chunk_of = |value: &[u8]| {
            let kh = sha256(b"key");
            let vh = sha256(value);
            let mut page = vec![0x02];
            page.extend_from_slice(&kh.0);
            page.extend_from_slice(&vh.0);
            let mut chunk = Vec::new();
            push_item(&mut chunk, TAG_PAGE, &page).unwrap();
            push_item(&mut chunk, TAG_VALUE, value).unwrap();
            (palisade_runtime::smt::leaf_hash(&kh, &vh), chunk)
        };
        let (root, chunk) = chunk_of(b"small");
        let e = Verifier::new(root).feed(&chunk).unwrap_err();
        assert!(e.to_string().contains("stored apart"), "{e}");
        let (root, chunk) = chunk_of(&[7u8; 300]);
        let mut v = Verifier::new(root);
        v.feed(&chunk).unwrap();
        assert!(v.is_complete());
    }

    #[test]
    fn the_empty_tree_has_no_chunks() {
        let store = MemStore::default();
        assert!(chunks_of(&store, EMPTY).is_empty());
        assert!(Verifier::new(EMPTY).is_complete());
    }

    trait InsertProven {
        fn insert_proven(&mut self, p: Proven);
    }

    impl InsertProven for MemStore {
        fn insert_proven(&mut self, p: Proven) {
            let mut changes = palisade_runtime::StateChanges::default();
            for (h, page) in p.pages {
                changes.pages.insert(h, std::sync::Arc::new(page));
            }
            for (h, v) in p.values {
                changes.blobs.insert(h, v);
            }
            self.apply(&changes);
        }
    }
}

#[cfg(test)]
mod vectors {
    use super::*;
    use palisade_runtime::{commit_writes, MemStore};
    use std::collections::BTreeMap;

    /// The tree of `docs/snapshots.md`'s vector: two small values and one
    /// stored apart.
    fn vector_chunk() -> (Hash, Vec<u8>) {
        let mut store = MemStore::default();
        let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = [
            (b"alpha".to_vec(), Some(b"one".to_vec())),
            (b"beta".to_vec(), Some(b"two".to_vec())),
            (b"gamma".to_vec(), Some(vec![0x67; 300])),
        ]
        .into_iter()
        .collect();
        let changes = commit_writes(&store, EMPTY, writes).unwrap();
        store.apply(&changes);
        let mut chunks = Vec::new();
        write_chunks(&store, changes.root, |c| {
            chunks.push(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(chunks.len(), 1);
        (changes.root, chunks.remove(0))
    }

    fn doc_field(name: &str) -> String {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/snapshots.md"
        ))
        .unwrap();
        let block = doc.split("vector: three-key-chunk").nth(1).unwrap();
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{name} in the vector"))
            .trim()
            .to_string()
    }

    #[test]
    fn chunk_golden_vector_in_docs() {
        let (root, chunk) = vector_chunk();
        if std::env::var("PALISADE_PRINT_VECTORS").is_ok() {
            println!(
                "root: {root}\nchunk: 0x{}\nsha256: {}",
                hex::encode(&chunk),
                sha256(&chunk)
            );
        }
        assert_eq!(doc_field("root"), root.to_string());
        assert_eq!(doc_field("chunk"), format!("0x{}", hex::encode(&chunk)));
        assert_eq!(doc_field("sha256"), sha256(&chunk).to_string());
        let mut v = Verifier::new(root);
        v.feed(&chunk).unwrap();
        assert!(v.is_complete());
    }
}
