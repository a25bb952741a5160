//! Ethereum transactions as a block carries them: the signed EIP-2718
//! bytes, opaque here. Decoding and sender recovery are the node's and the
//! runtime's (`palisade-ethtx`); a block only needs their bytes and hash.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::limits::MAX_TX_BYTES;
use crate::{BoundedBytes, Hash};

/// A signed Ethereum transaction (legacy, EIP-2930 or EIP-1559 bytes), at
/// most [`MAX_TX_BYTES`].
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct EthTransaction(pub BoundedBytes<MAX_TX_BYTES>);

impl EthTransaction {
    /// Its id, as Ethereum clients compute it: keccak256 of the bytes.
    pub fn hash(&self) -> Hash {
        Hash(keccak256(&self.0))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Encoded size in a block (the bytes and their u32 length).
    pub fn encoded_len(&self) -> usize {
        self.0.len() + 4
    }
}

/// Keccak-256 (Ethereum's hash; not SHA3-256, whose padding differs).
pub fn keccak256(bytes: &[u8]) -> [u8; 32] {
    Keccak256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keccak_of_nothing_is_ethereums_empty_code_hash() {
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }
}
