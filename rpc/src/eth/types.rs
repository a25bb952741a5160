//! The JSON shapes of the Ethereum methods, as Ethereum clients send and
//! expect them (camelCase, quantities and data as `0x`-hex strings).

use serde::{Deserialize, Serialize};

/// Which block a read is at: a tag or a number (`0x`-quantity), or an
/// EIP-1898 object `{"blockNumber": ...}` / `{"blockHash": ...}`.
/// `latest`, `safe`, `finalized` and `pending` are the latest committed
/// block (one-block finality: every committed block is final).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockSpec {
    Tag(String),
    Number {
        #[serde(rename = "blockNumber")]
        block_number: String,
    },
    Hash {
        #[serde(rename = "blockHash")]
        block_hash: String,
        #[serde(
            rename = "requireCanonical",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        require_canonical: Option<bool>,
    },
}

/// A call or gas estimate (`eth_call`, `eth_estimateGas`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gas: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gas_price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_fee_per_gas: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_priority_fee_per_gas: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub tx_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_list: Option<Vec<AccessListEntry>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessListEntry {
    pub address: String,
    pub storage_keys: Vec<String>,
}

/// A block as Ethereum clients read it. Fields that mean nothing under BFT
/// consensus (difficulty, nonce, uncles, mix hash) have their post-merge
/// values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EthBlock {
    pub number: String,
    pub hash: String,
    pub parent_hash: String,
    pub timestamp: String,
    pub gas_limit: String,
    pub gas_used: String,
    pub base_fee_per_gas: String,
    pub miner: String,
    pub state_root: String,
    pub transactions_root: String,
    pub receipts_root: String,
    pub logs_bloom: String,
    pub sha3_uncles: String,
    pub uncles: Vec<String>,
    pub difficulty: String,
    pub total_difficulty: String,
    pub nonce: String,
    pub mix_hash: String,
    pub extra_data: String,
    pub size: String,
    /// Transaction hashes, or transaction objects when asked for.
    pub transactions: Vec<serde_json::Value>,
}

/// `eth_syncing` while syncing (otherwise `false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    pub starting_block: String,
    pub current_block: String,
    pub highest_block: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeHistory {
    pub oldest_block: String,
    pub base_fee_per_gas: Vec<String>,
    pub gas_used_ratio: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward: Option<Vec<Vec<String>>>,
}

/// One value or a list of them (a filter's `address`, each of its topic
/// positions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn values(&self) -> &[String] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

/// Which logs `eth_getLogs` returns and an `eth_subscribe` `logs`
/// subscription sends: from blocks `fromBlock..=toBlock` (or the block
/// `blockHash`), emitted by one of `address` (any when absent or empty),
/// with each topic position matching one of its values (`null` or `[]`:
/// any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<OneOrMany>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<Option<OneOrMany>>>,
}

/// A log as Ethereum clients read it (`eth_getLogs`, receipts, `logs`
/// subscriptions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EthLog {
    pub address: String,
    pub topics: Vec<String>,
    pub data: String,
    pub block_number: String,
    pub block_hash: String,
    pub transaction_hash: String,
    /// Among the block's EVM transactions.
    pub transaction_index: String,
    /// Among the block's logs.
    pub log_index: String,
    /// Always false: a committed block is final.
    pub removed: bool,
}
