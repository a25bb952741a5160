use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::limits::{MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_TX_BYTES, MAX_VALUE_LEN};
use palisade_types::Param;
use serde::{Deserialize, Serialize};

use crate::TxError;

/// Smallest `max_tx_bytes`. Every governance transaction must fit under it,
/// or an admin could lower the limit below the size of the transaction that
/// raises it again: the largest (`AddValidator` with a 50-byte chain id) is
/// 231 bytes (`largest_governance_tx_fits_the_smallest_limit` checks it).
pub const MIN_MAX_TX_BYTES: u32 = 256;
/// Smallest `max_block_bytes` (the transactions' bytes; the header and the
/// last commit come on top, see the proposer). At least
/// [`MIN_MAX_TX_BYTES`], so the largest admissible transaction always fits.
pub const MIN_MAX_BLOCK_BYTES: u32 = 1024;
/// Smallest `validator_update_delay`: a header names the set of the
/// height after it before its own block is executed, so no block may
/// change the set of the very next height.
pub const MIN_VALIDATOR_UPDATE_DELAY: u64 = 2;
/// Largest `validator_update_delay`.
pub const MAX_VALIDATOR_UPDATE_DELAY: u64 = 1_000;

/// Chain parameters, set at genesis and changed by admins (`SetParam`).
/// Each stays within the hard limits of the wire format.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct ChainParams {
    pub max_block_txs: u32,
    pub max_block_bytes: u32,
    pub max_tx_bytes: u32,
    pub max_value_bytes: u32,
    /// A validator-set change made in block h takes effect at h + this (>= 1).
    pub validator_update_delay: u64,
    /// Most EVM gas a block's transactions may use together (their gas
    /// limits, counted as each is included). One transaction may use at
    /// most this or [`MAX_TX_GAS`], the smaller.
    #[serde(default = "default_max_block_gas")]
    pub max_block_gas: u64,
    /// Least gas price (wei per gas) an EVM transaction must offer: the
    /// base fee of every block, burnt. Zero (the default) is a gas-free
    /// network.
    #[serde(default, with = "palisade_types::amount_str")]
    pub min_gas_price: u128,
    /// The EIP-155 chain id that Ethereum transactions sign for. Set at
    /// genesis, never changed (a signed transaction names it).
    #[serde(default = "default_evm_chain_id")]
    pub evm_chain_id: u64,
    /// Most bytes of published files (not unpublished) one account may have
    /// on record at once, so one member cannot fill every node's disk.
    #[serde(default = "default_file_quota_bytes")]
    pub file_quota_bytes: u64,
}

/// Most gas one EVM transaction may use (EIP-7825's cap, 2^24).
pub const MAX_TX_GAS: u64 = 1 << 24;
/// Least `max_block_gas`: a block must fit a transaction of
/// [`MAX_TX_GAS`], or contracts deployable elsewhere could not be here.
pub const MIN_MAX_BLOCK_GAS: u64 = MAX_TX_GAS;
/// Largest `max_block_gas` (a block of it runs for seconds, not minutes).
pub const MAX_MAX_BLOCK_GAS: u64 = 10_000_000_000;
/// The EIP-155 chain id a chain gets when its genesis names none (1337,
/// the usual id of private development networks). Networks that share
/// member keys should each set their own, so a transaction signed for one
/// cannot be replayed on another.
pub const DEFAULT_EVM_CHAIN_ID: u64 = 1337;

fn default_max_block_gas() -> u64 {
    ChainParams::default().max_block_gas
}

fn default_file_quota_bytes() -> u64 {
    ChainParams::default().file_quota_bytes
}

/// Largest `file_quota_bytes`: 1 PiB.
pub const MAX_FILE_QUOTA_BYTES: u64 = 1 << 50;

fn default_evm_chain_id() -> u64 {
    DEFAULT_EVM_CHAIN_ID
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            max_block_txs: 20_000,
            max_block_bytes: 8 * 1024 * 1024,
            max_tx_bytes: 64 * 1024,
            max_value_bytes: 16 * 1024,
            validator_update_delay: 2,
            max_block_gas: 1_000_000_000,
            min_gas_price: 0,
            evm_chain_id: DEFAULT_EVM_CHAIN_ID,
            file_quota_bytes: 64 << 30,
        }
    }
}

fn within(v: u64, lo: u64, hi: u64, what: &'static str) -> Result<(), TxError> {
    if v < lo || v > hi {
        return Err(TxError::InvalidParam(what));
    }
    Ok(())
}

impl ChainParams {
    /// Checks every parameter is within its allowed range. Each range keeps
    /// the chain live at its ends: with every parameter at its minimum a
    /// block still holds any governance transaction (one transaction of up
    /// to `max_tx_bytes`, which a block of `max_block_bytes` always fits),
    /// so an admin can always raise a parameter again.
    pub fn validate(&self) -> Result<(), TxError> {
        within(
            self.max_block_txs.into(),
            1,
            MAX_BLOCK_TXS as u64,
            "max_block_txs must be 1..=100000",
        )?;
        within(
            self.max_block_bytes.into(),
            MIN_MAX_BLOCK_BYTES.into(),
            MAX_BLOCK_BYTES as u64,
            "max_block_bytes must be 1 KiB..=32 MiB",
        )?;
        within(
            self.max_tx_bytes.into(),
            MIN_MAX_TX_BYTES.into(),
            MAX_TX_BYTES as u64,
            "max_tx_bytes must be 256..=81920",
        )?;
        within(
            self.max_value_bytes.into(),
            0,
            MAX_VALUE_LEN as u64,
            "max_value_bytes must be 0..=65536",
        )?;
        within(
            self.validator_update_delay,
            MIN_VALIDATOR_UPDATE_DELAY,
            MAX_VALIDATOR_UPDATE_DELAY,
            "validator_update_delay must be 2..=1000",
        )?;
        within(
            self.max_block_gas,
            MIN_MAX_BLOCK_GAS,
            MAX_MAX_BLOCK_GAS,
            "max_block_gas must be 16777216..=10000000000",
        )?;
        // The EVM's base fee is 64 bits.
        if self.min_gas_price > u128::from(u64::MAX) {
            return Err(TxError::InvalidParam(
                "min_gas_price must be 0..=18446744073709551615",
            ));
        }
        // A chain id must fit an EIP-155 `v` (chain_id * 2 + 36) in 64 bits
        // for the tools that keep it so.
        within(
            self.evm_chain_id,
            1,
            u64::MAX / 2 - 36,
            "evm_chain_id must be 1..=9223372036854775771",
        )?;
        within(
            self.file_quota_bytes,
            0,
            MAX_FILE_QUOTA_BYTES,
            "file_quota_bytes must be 0..=1125899906842624",
        )?;
        if u64::from(self.max_tx_bytes) > u64::from(self.max_block_bytes) {
            return Err(TxError::InvalidParam(
                "max_tx_bytes must not exceed max_block_bytes",
            ));
        }
        Ok(())
    }

    /// These parameters with `p` applied, if the result is valid.
    pub fn with(&self, p: Param) -> Result<ChainParams, TxError> {
        let mut next = *self;
        match p {
            Param::MaxBlockTxs(v) => next.max_block_txs = v,
            Param::MaxBlockBytes(v) => next.max_block_bytes = v,
            Param::MaxTxBytes(v) => next.max_tx_bytes = v,
            Param::MaxValueBytes(v) => next.max_value_bytes = v,
            Param::ValidatorUpdateDelay(v) => next.validator_update_delay = v,
            Param::MaxBlockGas(v) => next.max_block_gas = v,
            Param::MinGasPrice(v) => next.min_gas_price = v,
            Param::FileQuotaBytes(v) => next.file_quota_bytes = v,
        }
        next.validate()?;
        Ok(next)
    }
}
