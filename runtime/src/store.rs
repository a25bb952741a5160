use std::collections::BTreeMap;
use std::sync::Arc;

use palisade_types::{sha256, Hash};

use crate::page::{Leaf, Page};
use crate::smt::{self, PageSource, Proof};
use crate::StoreError;

/// What the runtime reads committed state from. The node implements it on
/// RocksDB; [`MemStore`] implements it in memory for tests and tools.
pub trait StateStore {
    /// Latest committed value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// A state-tree page by its root hash ([`crate::page`]).
    fn page(&self, hash: &Hash) -> Result<Option<Arc<Page>>, StoreError>;
    /// A value too large to live in its tree leaf, by its SHA-256 (stored
    /// apart, content-addressed, so that past roots stay readable).
    fn value_by_hash(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError>;
    /// A number that is even while the committed state stands still, odd
    /// while a change is being written, and different after every change:
    /// a reader that sees the same even version before and after its reads
    /// read one committed state. A store nobody writes under its readers
    /// (like [`MemStore`]) keeps the default.
    fn version(&self) -> u64 {
        0
    }
}

struct Pages<'a>(&'a dyn StateStore);

impl PageSource for Pages<'_> {
    fn page(&self, hash: &Hash) -> Result<Option<Arc<Page>>, StoreError> {
        self.0.page(hash)
    }
}

/// Everything one block (or genesis) changes, to be written atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// State root after the changes.
    pub root: Hash,
    /// Latest values: `None` deletes the key.
    pub values: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// New tree pages, by root hash.
    pub pages: BTreeMap<Hash, Arc<Page>>,
    /// New values too large for their leaf, by their hash.
    pub blobs: BTreeMap<Hash, Vec<u8>>,
    /// Pages of the tree before the changes that the tree after them no
    /// longer has (see [`smt::update`]).
    pub replaced: Vec<Hash>,
}

/// Computes the root after `writes` on top of `root`, with the pages and
/// blobs to store.
pub fn commit_writes(
    store: &dyn StateStore,
    root: Hash,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> Result<StateChanges, StoreError> {
    let mut updates = BTreeMap::new();
    let mut blobs = BTreeMap::new();
    for (k, v) in &writes {
        let kh = sha256(k);
        let leaf = v.as_ref().map(|v| {
            let leaf = Leaf::new(kh, v);
            if leaf.value.is_none() {
                blobs.insert(leaf.value_hash, v.clone());
            }
            leaf
        });
        updates.insert(kh, leaf);
    }
    let mut pages = BTreeMap::new();
    let mut replaced = Vec::new();
    let root = smt::update(&Pages(store), root, &updates, &mut pages, &mut replaced)?;
    replaced.retain(|h| !pages.contains_key(h));
    Ok(StateChanges {
        root,
        values: writes,
        pages,
        blobs,
        replaced,
    })
}

/// The value of `key` under `root` (any committed root), read from the
/// tree's pages.
pub fn get_at(
    store: &dyn StateStore,
    root: Hash,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    match smt::lookup(&Pages(store), root, &sha256(key))? {
        None => Ok(None),
        Some(leaf) => leaf_value(store, leaf).map(Some),
    }
}

fn leaf_value(store: &dyn StateStore, leaf: Leaf) -> Result<Vec<u8>, StoreError> {
    match leaf {
        Leaf { value: Some(v), .. } => Ok(v.to_vec()),
        Leaf { value_hash, .. } => store
            .value_by_hash(&value_hash)?
            .ok_or_else(|| StoreError::Corrupt(format!("value {value_hash} missing"))),
    }
}

/// The value of `key` under `root` (any committed root) and its proof.
pub fn get_with_proof(
    store: &dyn StateStore,
    root: Hash,
    key: &[u8],
) -> Result<(Option<Vec<u8>>, Proof), StoreError> {
    let (proof, leaf) = smt::prove(&Pages(store), root, sha256(key))?;
    let value = leaf.map(|l| leaf_value(store, l)).transpose()?;
    Ok((value, proof))
}

/// In-memory state: latest values, every tree page and every value blob.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    pages: BTreeMap<Hash, Arc<Page>>,
    blobs: BTreeMap<Hash, Vec<u8>>,
}

impl MemStore {
    pub fn apply(&mut self, changes: &StateChanges) {
        for (k, v) in &changes.values {
            match v {
                Some(v) => self.values.insert(k.clone(), v.clone()),
                None => self.values.remove(k),
            };
        }
        self.pages
            .extend(changes.pages.iter().map(|(h, p)| (*h, p.clone())));
        self.blobs
            .extend(changes.blobs.iter().map(|(h, b)| (*h, b.clone())));
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl StateStore for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.values.get(key).cloned())
    }
    fn page(&self, hash: &Hash) -> Result<Option<Arc<Page>>, StoreError> {
        Ok(self.pages.get(hash).cloned())
    }
    fn value_by_hash(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blobs.get(hash).cloned())
    }
}
