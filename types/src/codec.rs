use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};

use crate::Hash;

/// Why bytes were refused as an encoding of a Palisade type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what}: {len} bytes exceeds the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("{what}: {extra} trailing bytes after a complete value")]
    TrailingBytes { what: &'static str, extra: usize },
}

/// A type with a canonical borsh encoding and a hard size bound.
pub trait Wire: BorshSerialize + BorshDeserialize {
    /// Name used in error messages.
    const NAME: &'static str;
    /// Largest encoding accepted by [`decode`].
    const MAX_ENCODED_LEN: usize;
}

/// Canonical encoding of `value`.
pub fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    // Sized exactly up front: counting is a pass without memory traffic,
    // cheaper than the reallocations and copies of a growing Vec (a block
    // is tens of kilobytes).
    let mut out = Vec::with_capacity(encoded_len(value));
    // Writing to a Vec only fails for a collection longer than u32::MAX items,
    // which every bounded Palisade type rules out by construction.
    value
        .serialize(&mut out)
        .expect("bounded value encodes into a Vec");
    out
}

/// Length of the canonical encoding of `value`, without building it.
pub fn encoded_len<T: BorshSerialize>(value: &T) -> usize {
    let mut counter = Counter(0);
    // The counter never fails; a value too long to encode would have
    // failed `encode` the same way.
    let _ = value.serialize(&mut counter);
    counter.0
}

/// SHA-256 of the canonical encoding of `value`, streamed into the hasher
/// instead of first building the encoding.
pub fn hash_encoding<T: BorshSerialize>(value: &T) -> Hash {
    let mut w = HashWriter(Sha256::new());
    // Like the counter, the hasher never fails.
    let _ = value.serialize(&mut w);
    Hash(w.0.finalize().into())
}

struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decodes exactly one `T` from `bytes`: refuses input over
/// `T::MAX_ENCODED_LEN` before looking at it, any malformed or
/// out-of-bound field, and trailing bytes.
pub fn decode<T: Wire>(bytes: &[u8]) -> Result<T, DecodeError> {
    decode_with_limit(bytes, T::NAME, T::MAX_ENCODED_LEN)
}

/// [`decode`] with an explicit name and size bound.
pub fn decode_with_limit<T: BorshDeserialize>(
    bytes: &[u8],
    what: &'static str,
    max: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    let mut rest = bytes;
    let value = T::deserialize(&mut rest).map_err(|e| DecodeError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            what,
            extra: rest.len(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_hash_match_the_encoding() {
        let values: Vec<Vec<u64>> = vec![vec![], vec![1], (0..1000).collect()];
        for v in &values {
            let enc = encode(v);
            assert_eq!(encoded_len(v), enc.len());
            assert_eq!(hash_encoding(v), crate::sha256(&enc));
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut enc = encode(&7u64);
        enc.push(0);
        assert_eq!(
            decode_with_limit::<u64>(&enc, "u64", 16),
            Err(DecodeError::TrailingBytes {
                what: "u64",
                extra: 1
            })
        );
    }

    #[test]
    fn oversized_input_is_rejected_before_decoding() {
        let enc = vec![0u8; 17];
        assert!(matches!(
            decode_with_limit::<u64>(&enc, "u64", 16),
            Err(DecodeError::TooLarge { len: 17, .. })
        ));
    }

    #[test]
    fn truncated_input_is_malformed() {
        assert!(matches!(
            decode_with_limit::<u64>(&[1, 2, 3], "u64", 16),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
