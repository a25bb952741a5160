use std::collections::BTreeMap;

use palisade_types::{sha256, Hash};

use crate::smt::{self, Node, NodeSource, Proof};
use crate::StoreError;

/// What the runtime reads committed state from. The node implements it on
/// RocksDB; [`MemStore`] implements it in memory for tests and tools.
pub trait StateStore {
    /// Latest committed value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// A state-tree node by hash.
    fn node(&self, hash: &Hash) -> Result<Option<Node>, StoreError>;
    /// A value by its SHA-256 (values are content-addressed so that past
    /// roots stay readable).
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

struct Nodes<'a>(&'a dyn StateStore);

impl NodeSource for Nodes<'_> {
    fn node(&self, hash: &Hash) -> Result<Option<Node>, StoreError> {
        self.0.node(hash)
    }
}

/// Everything one block (or genesis) changes, to be written atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// State root after the changes.
    pub root: Hash,
    /// Latest values: `None` deletes the key.
    pub values: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// New tree nodes, by hash.
    pub nodes: BTreeMap<Hash, Node>,
    /// New values, by their hash.
    pub blobs: BTreeMap<Hash, Vec<u8>>,
}

/// Computes the root after `writes` on top of `root`, with the nodes and
/// blobs to store.
pub fn commit_writes(
    store: &dyn StateStore,
    root: Hash,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> Result<StateChanges, StoreError> {
    let mut updates = BTreeMap::new();
    let mut blobs = BTreeMap::new();
    for (k, v) in &writes {
        let vh = v.as_ref().map(|v| {
            let h = sha256(v);
            blobs.insert(h, v.clone());
            h
        });
        updates.insert(sha256(k), vh);
    }
    let mut nodes = BTreeMap::new();
    let root = smt::update(&Nodes(store), root, &updates, &mut nodes)?;
    Ok(StateChanges {
        root,
        values: writes,
        nodes,
        blobs,
    })
}

/// The value of `key` under `root` (any committed root) and its proof.
pub fn get_with_proof(
    store: &dyn StateStore,
    root: Hash,
    key: &[u8],
) -> Result<(Option<Vec<u8>>, Proof), StoreError> {
    let (proof, vh) = smt::prove(&Nodes(store), root, sha256(key))?;
    let value = match vh {
        Some(h) => Some(
            store
                .value_by_hash(&h)?
                .ok_or_else(|| StoreError::Corrupt(format!("value {h} missing")))?,
        ),
        None => None,
    };
    Ok((value, proof))
}

/// In-memory state: latest values, every tree node and every value blob.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    nodes: BTreeMap<Hash, Node>,
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
        self.nodes
            .extend(changes.nodes.iter().map(|(h, n)| (*h, n.clone())));
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
    fn node(&self, hash: &Hash) -> Result<Option<Node>, StoreError> {
        Ok(self.nodes.get(hash).cloned())
    }
    fn value_by_hash(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blobs.get(hash).cloned())
    }
}
