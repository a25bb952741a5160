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
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            max_block_txs: 20_000,
            max_block_bytes: 8 * 1024 * 1024,
            max_tx_bytes: 32 * 1024,
            max_value_bytes: 16 * 1024,
            validator_update_delay: 2,
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
            1,
            MAX_VALIDATOR_UPDATE_DELAY,
            "validator_update_delay must be 1..=1000",
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
        }
        next.validate()?;
        Ok(next)
    }
}
