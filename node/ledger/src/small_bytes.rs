//! Byte strings stored inline when short, for the value cache's keys and
//! values.
//!
//! Account keys are 37 bytes and accounts about 40: as `Vec<u8>` every
//! cache probe followed a pointer to compare the key (`memcmp` under the
//! value cache was 1.9% of all CPU at 8,000 tx/s, under 0.3% inline) and
//! every hit allocated to copy the value
//! (docs/benchmarks/history/2026-12-04-r5-value-cache.md). Inline, the key
//! is compared inside the hash table's own slot.

use std::borrow::Borrow;
use std::hash::{Hash as StdHash, Hasher};

/// Longest byte string kept inline (the enum is then 48 bytes, the size
/// of a `Vec` and its smallest heap block together).
const INLINE: usize = 46;

/// An immutable byte string; compares and hashes exactly like `[u8]`, so a
/// map keyed by it is looked up with a plain slice.
#[derive(Clone)]
pub enum SmallBytes {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl SmallBytes {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, buf } => &buf[..usize::from(*len)],
            SmallBytes::Heap(b) => b,
        }
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(bytes: &[u8]) -> SmallBytes {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= INLINE => {
                let mut buf = [0u8; INLINE];
                buf[..bytes.len()].copy_from_slice(bytes);
                SmallBytes::Inline { len, buf }
            }
            _ => SmallBytes::Heap(bytes.into()),
        }
    }
}

impl Borrow<[u8]> for SmallBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &SmallBytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SmallBytes {}

impl StdHash for SmallBytes {
    // As `[u8]` hashes, which `Borrow` requires of a map key.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl std::fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn short_and_long_strings_round_trip_and_look_up_by_slice() {
        let mut m = HashMap::new();
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            b"acct/".to_vec(),
            vec![7; INLINE],
            vec![8; INLINE + 1],
            vec![9; 300],
        ];
        for (i, c) in cases.iter().enumerate() {
            let s = SmallBytes::from(c.as_slice());
            assert_eq!(s.as_slice(), c.as_slice());
            assert_eq!(
                matches!(s, SmallBytes::Inline { .. }),
                c.len() <= INLINE,
                "{} bytes",
                c.len()
            );
            m.insert(s, i);
        }
        for (i, c) in cases.iter().enumerate() {
            assert_eq!(m.get(c.as_slice()), Some(&i), "{} bytes", c.len());
        }
        // A prefix or an extension of a key is another key.
        assert_eq!(m.get(&b"acct"[..]), None);
        assert_eq!(m.get(&[7u8; INLINE - 1][..]), None);
    }

    #[test]
    fn hashes_like_the_slice() {
        let h = std::collections::hash_map::RandomState::new();
        for len in [0usize, 1, 37, INLINE, INLINE + 1, 100] {
            let v: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert_eq!(
                std::hash::BuildHasher::hash_one(&h, SmallBytes::from(v.as_slice())),
                std::hash::BuildHasher::hash_one(&h, v.as_slice()),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn fits_in_48_bytes() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 48);
        assert_eq!(std::mem::size_of::<Option<SmallBytes>>(), 48);
    }
}
