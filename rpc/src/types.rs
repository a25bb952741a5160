//! JSON shapes of the API. Bytes and hashes are `0x`-hex, heights and
//! counts are JSON numbers, amounts are decimal strings.

use palisade_runtime::smt::Proof;
use palisade_runtime::{Event, EvmReceipt};
use palisade_types::{
    Address, Block, BlockHeader, CommitCertificate, EvmAddress, Hash, PublicKey, Role,
    SignedTransaction,
};
use serde::{Deserialize, Serialize};

/// `0x`-hex bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HexBytes(pub Vec<u8>);

impl Serialize for HexBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(&self.0)))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HexBytes, D::Error> {
        let s = String::deserialize(d)?;
        palisade_types::parse_hex(&s)
            .map(HexBytes)
            .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
    }
}

pub(crate) mod amount {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("amount {s:?} is not a decimal string")))
    }
}

/// A block by height or by hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockId {
    Height(u64),
    Hash(Hash),
}

/// Whether the node is fit to serve (`system_health`, `GET /health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// True when `reasons` is empty.
    pub ok: bool,
    pub height: u64,
    pub peers: usize,
    pub syncing: bool,
    /// Milliseconds since this node last committed a block (or, if it has
    /// committed none since it started, since it started).
    #[serde(default)]
    pub last_block_age_ms: u64,
    /// Why the node is unhealthy, one line each; empty when healthy.
    #[serde(default)]
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub chain_id: String,
    pub genesis_hash: Hash,
    pub version: String,
    pub moniker: String,
    pub peer_id: String,
    /// This node's consensus key, if it is configured as a validator.
    pub validator: Option<PublicKey>,
    pub latest_height: u64,
    pub latest_block_hash: Option<Hash>,
    /// Unix milliseconds of the latest block.
    pub latest_block_time: Option<u64>,
    pub syncing: bool,
    pub sync_target: u64,
    pub peers: usize,
    pub mempool_txs: usize,
}

/// A block with its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockResponse {
    pub hash: Hash,
    pub block: Block,
}

/// A block's hash, height and the hashes of its transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockTxHashesResponse {
    pub hash: Hash,
    pub height: u64,
    pub tx_hashes: Vec<Hash>,
    /// Positions in `tx_hashes` of the transactions execution refused: in
    /// the block but not committed (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<u32>,
}

/// A header with its hash, as `chain_subscribeNewHeads` sends them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadResponse {
    pub hash: Hash,
    /// Transactions in the block, the refused ones included.
    pub tx_count: usize,
    /// How many of them execution refused: in the block but not committed
    /// (`chain_getBlockTxHashes` says which). Absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused: u64,
    pub header: BlockHeader,
    /// Heads this subscriber missed right before this one because it read
    /// too slowly (heights `header.height - missed` to `header.height - 1`;
    /// `chain_getBlock` still has them). Absent when none were missed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitResponse {
    pub height: u64,
    pub commit: CommitCertificate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitResponse {
    pub hash: Hash,
}

/// One transaction's outcome in a `tx_submitBatch` answer: `hash` when it
/// was admitted, otherwise `error`, shaped like a JSON-RPC error object
/// with the codes `tx_submit` uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitOutcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<Hash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SubmitFailure>,
}

/// Why a transaction of a batch was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitFailure {
    pub code: i32,
    pub message: String,
    /// The stable reason code of a rejected transaction (`-32002`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// A committed transaction and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxResponse {
    pub hash: Hash,
    /// `None` while it waits in the mempool.
    pub height: Option<u64>,
    pub index: Option<u32>,
    pub tx: SignedTransaction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptResponse {
    pub tx_hash: Hash,
    pub height: u64,
    pub index: u32,
    pub success: bool,
    /// 0 on success, otherwise the runtime's error code.
    pub code: u16,
    pub error: String,
    pub events: Vec<Event>,
    /// An EVM transaction's gas used, created contract, logs and output
    /// (absent for other actions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evm: Option<EvmReceipt>,
}

/// Where a transaction stands, as the status subscription reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum TxStatus {
    /// In this node's mempool.
    Pending,
    /// Neither pending here nor committed.
    Unknown,
    Committed {
        receipt: ReceiptResponse,
    },
    /// Not committed within the subscription's time limit; the last
    /// notification. The transaction may still commit later
    /// (`tx_getReceipt`, or subscribe again).
    #[serde(rename_all = "camelCase")]
    TimedOut {
        after_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountResponse {
    pub address: Address,
    #[serde(with = "amount")]
    pub balance: u128,
    pub nonce: u64,
    pub roles: Vec<Role>,
    /// Whether the account exists (an absent account reads as zero).
    pub exists: bool,
    /// The account's address in the EVM, `keccak256(address)[12..]`: the
    /// same balance, seen by contracts and Ethereum tools.
    pub evm_address: EvmAddress,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateQuery {
    /// Read at this height (default: latest). Only the latest is kept for
    /// values; past heights answer with their root and a proof.
    pub height: Option<u64>,
    /// Include a Merkle proof against the state root.
    #[serde(default)]
    pub prove: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateResponse {
    pub key: HexBytes,
    pub value: Option<HexBytes>,
    pub height: u64,
    pub state_root: Hash,
    pub proof: Option<Proof>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorResponse {
    pub public_key: PublicKey,
    pub power: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorSetResponse {
    pub height: u64,
    pub hash: Hash,
    pub total_power: u64,
    pub validators: Vec<ValidatorResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MempoolStatus {
    pub txs: usize,
    pub bytes: usize,
    pub max_txs: usize,
    pub max_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodsResponse {
    pub methods: Vec<String>,
}

/// Convenience for a receipt's success.
pub fn is_success(code: u16) -> bool {
    code == 0
}
