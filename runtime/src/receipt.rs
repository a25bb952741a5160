use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::{merkle, EvmAddress, Hash};
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

/// A log an EVM contract emitted (LOG0..LOG4).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvmLog {
    /// The contract that emitted it.
    pub address: EvmAddress,
    /// Up to four 32-byte topics.
    pub topics: Vec<Hash>,
    #[serde(with = "palisade_types::bytes_hex")]
    pub data: Vec<u8>,
}

/// What an EVM transaction adds to its receipt.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvmReceipt {
    pub gas_used: u64,
    /// A creation's contract: the one it made or, when it failed, the
    /// address it would have had (as Ethereum receipts give it).
    pub contract_address: Option<EvmAddress>,
    /// Logs, in order (none when the transaction failed).
    pub logs: Vec<EvmLog>,
    /// What the call returned, or its revert data (an `Error(string)`,
    /// a custom error) when it reverted.
    #[serde(with = "palisade_types::bytes_hex")]
    pub output: Vec<u8>,
}

/// The outcome of one transaction in a block. `code` 0 is success; any
/// other value is a [`crate::TxError`] code, and then the transaction had no
/// effect beyond using its nonce (for an EVM transaction: both its nonces,
/// and its gas fee when gas has a price).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    pub tx_hash: Hash,
    pub code: u16,
    /// Human-readable error; empty on success.
    pub error: String,
    pub events: Vec<Event>,
    /// Gas, created contract, logs and output of an EVM transaction.
    pub evm: Option<EvmReceipt>,
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
