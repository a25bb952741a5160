use borsh::{BorshDeserialize, BorshSerialize};

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
    let mut out = Vec::new();
    // Writing to a Vec only fails for a collection longer than u32::MAX items,
    // which every bounded Palisade type rules out by construction.
    value
        .serialize(&mut out)
        .expect("bounded value encodes into a Vec");
    out
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
