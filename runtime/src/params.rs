use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::limits::{MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_TX_BYTES, MAX_VALUE_LEN};
use palisade_types::Param;
use serde::{Deserialize, Serialize};

use crate::TxError;

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
    /// Checks every parameter is within its allowed range.
    pub fn validate(&self) -> Result<(), TxError> {
        within(
            self.max_block_txs.into(),
            1,
            MAX_BLOCK_TXS as u64,
            "max_block_txs must be 1..=100000",
        )?;
        within(
            self.max_block_bytes.into(),
            1024,
            MAX_BLOCK_BYTES as u64,
            "max_block_bytes must be 1 KiB..=32 MiB",
        )?;
        within(
            self.max_tx_bytes.into(),
            256,
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
            1_000,
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
