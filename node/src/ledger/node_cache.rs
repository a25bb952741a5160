//! An in-memory cache of state-tree nodes.
//!
//! Tree nodes are addressed by their hash and never change, so a cached
//! node can never be stale: the cache needs no invalidation, only a bound.
//! Each block's tree update walks the paths the previous blocks wrote, so
//! keeping recently written and read nodes saves most RocksDB look-ups on
//! the execution path.
//!
//! Two generations bound it: lookups check both, hits in the older one move
//! to the newer, and when the newer fills up it becomes the older (the old
//! older is dropped). So at most `2 × capacity` nodes are held and what is
//! used stays.

use std::collections::HashMap;
use std::sync::Mutex;

use palisade_runtime::smt::Node;
use palisade_types::Hash;

#[derive(Debug, Default)]
struct Generations {
    young: HashMap<Hash, Node>,
    old: HashMap<Hash, Node>,
}

/// See the module docs.
#[derive(Debug)]
pub struct NodeCache {
    capacity: usize,
    gens: Mutex<Generations>,
}

impl NodeCache {
    pub fn new(capacity: usize) -> NodeCache {
        NodeCache {
            capacity: capacity.max(1),
            gens: Mutex::new(Generations::default()),
        }
    }

    pub fn get(&self, hash: &Hash) -> Option<Node> {
        let mut g = self.gens.lock().ok()?;
        if let Some(n) = g.young.get(hash) {
            return Some(n.clone());
        }
        let n = g.old.remove(hash)?;
        Self::put_young(&mut g, self.capacity, *hash, n.clone());
        Some(n)
    }

    pub fn insert(&self, hash: Hash, node: Node) {
        if let Ok(mut g) = self.gens.lock() {
            Self::put_young(&mut g, self.capacity, hash, node);
        }
    }

    pub fn insert_all<'a>(&self, nodes: impl IntoIterator<Item = (&'a Hash, &'a Node)>) {
        if let Ok(mut g) = self.gens.lock() {
            for (h, n) in nodes {
                Self::put_young(&mut g, self.capacity, *h, n.clone());
            }
        }
    }

    /// Nodes held now (both generations).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.gens
            .lock()
            .map(|g| g.young.len() + g.old.len())
            .unwrap_or(0)
    }

    fn put_young(g: &mut Generations, capacity: usize, hash: Hash, node: Node) {
        if g.young.len() >= capacity && !g.young.contains_key(&hash) {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(hash, node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8) -> (Hash, Node) {
        let n = Node::Leaf {
            key_hash: Hash([i; 32]),
            value_hash: Hash([i; 32]),
        };
        (n.hash(), n)
    }

    #[test]
    fn bounded_and_keeps_what_is_used() {
        let c = NodeCache::new(4);
        for i in 0..4 {
            let (h, n) = node(i);
            c.insert(h, n);
        }
        // Node 0 is used again, then four more arrive: two generations of
        // at most four each.
        let (h0, n0) = node(0);
        for i in 4..12 {
            assert_eq!(c.get(&h0), Some(n0.clone()));
            let (h, n) = node(i);
            c.insert(h, n);
            assert!(c.len() <= 8, "{} nodes held", c.len());
        }
        assert_eq!(c.get(&h0), Some(n0));
        // Nodes never used again fall out.
        assert_eq!(c.get(&node(1).0), None);
        assert!(c.get(&node(11).0).is_some());
    }
}
