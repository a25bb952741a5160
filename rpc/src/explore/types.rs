//! JSON shapes of the explore methods.

use palisade_types::{Address, EvmAddress, Hash, PublicKey, Role};
use serde::{Deserialize, Serialize};

/// A transaction's place in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Position {
    pub height: u64,
    pub index: u32,
}

/// `account_getTransactions` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountTxsQuery {
    /// At most this many (default 25, at most 100).
    pub limit: Option<u32>,
    /// Only transactions older than this position (the `next` of the
    /// previous page).
    pub before: Option<Position>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    Native,
    Eth,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountTxEntry {
    pub hash: Hash,
    pub height: u64,
    pub index: u32,
    pub kind: TxKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountTxsResponse {
    /// The EVM address the list is kept under (a native account's EVM face).
    pub account: EvmAddress,
    pub transactions: Vec<AccountTxEntry>,
    /// Pass as `before` for the next (older) page; null on the last.
    pub next: Option<Position>,
    /// The first height the node indexed (a node upgraded from a ledger
    /// without the index has none before it).
    pub indexed_from: u64,
}

/// An address as the EVM sees it, with the roles it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvmAccountResponse {
    pub address: EvmAddress,
    #[serde(with = "crate::types::amount")]
    pub balance: u128,
    pub nonce: u64,
    /// 0x-hex keccak256 of the code (that of empty code for a plain account).
    pub code_hash: Hash,
    pub code_size: usize,
    pub roles: Vec<Role>,
    /// The native account this is the EVM face of, if any.
    pub native: Option<Address>,
}

/// One validator over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorActivity {
    pub public_key: PublicKey,
    /// Power in the latest set (0: no longer in it).
    pub power: u64,
    /// Blocks it proposed in the window.
    pub proposed: u32,
    /// Heights whose certificate holds its precommit.
    pub signed: u32,
    /// Heights at which it was in the set and its precommit is missing.
    pub missed: u32,
    /// The most recent missed heights, newest first (at most 50).
    pub missed_heights: Vec<u64>,
}

/// One height of the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeightActivity {
    pub height: u64,
    /// The round it was decided in.
    pub round: u32,
    pub proposer: PublicKey,
    pub signers: Vec<PublicKey>,
    /// Whether the certificate is the one the next block carries (final);
    /// false for the latest height, whose late precommits may still come.
    pub final_certificate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityResponse {
    pub from: u64,
    pub to: u64,
    pub validators: Vec<ValidatorActivity>,
    /// Newest first.
    pub heights: Vec<HeightActivity>,
}
