use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::{merkle, Hash};
use serde::{Deserialize, Serialize};

/// Something a transaction did, for clients to index.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Event {
    pub kind: String,
    pub attributes: Vec<(String, String)>,
}

impl Event {
    pub fn new(kind: &str, attributes: &[(&str, String)]) -> Event {
        Event {
            kind: kind.to_string(),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        }
    }
}

/// The outcome of one transaction in a block. `code` 0 is success; any
/// other value is a [`crate::TxError`] code, and then the transaction had no
/// effect beyond using its nonce.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    pub tx_hash: Hash,
    pub code: u16,
    /// Human-readable error; empty on success.
    pub error: String,
    pub events: Vec<Event>,
}

impl Receipt {
    pub fn is_success(&self) -> bool {
        self.code == 0
    }
}

/// Merkle root over the encoded receipts, in block order.
pub fn receipts_root(receipts: &[Receipt]) -> Hash {
    let encoded: Vec<Vec<u8>> = receipts.iter().map(palisade_types::encode).collect();
    merkle::root(&encoded)
}
