//! Raw Ethereum transactions for Palisade's EVM (issue 28): decoding with
//! Palisade's rules, the transaction hash clients compute, and recovery of
//! the secp256k1 sender, alone or in batches.
//!
//! Decoding is bounded ([`MAX_RAW_TX_BYTES`]) and canonical: the bytes must
//! be exactly one EIP-2718 envelope (legacy with an EIP-155 chain id,
//! EIP-2930 or EIP-1559), of this chain, with a low-`s` signature (EIP-2),
//! and its hash must be keccak256 of the bytes received. Blob (type 3) and
//! set-code (type 4) transactions are refused: the chain has no blob data
//! and no delegated code. A node recovers each sender once, at the edge,
//! like the ed25519 checks; execution receives it.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Typed2718};
use alloy_primitives::{keccak256, TxKind};
pub use alloy_primitives::{Address, B256, U256};

mod recover;
mod sign;
pub use recover::{recover_batch, Backend};
pub use sign::{Eip1559, EthSigner};

/// Most bytes a raw transaction may have (the chain's `max_tx_bytes`, at
/// most 80 KiB, is checked beside it).
pub const MAX_RAW_TX_BYTES: usize = 128 * 1024;

/// Half the secp256k1 group order: a larger `s` is the malleable twin of a
/// valid signature (EIP-2).
const SECP256K1N_HALF: U256 = U256::from_be_slice(&[
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EthTxError {
    #[error("raw transaction of {0} bytes exceeds {MAX_RAW_TX_BYTES}")]
    TooLarge(usize),
    #[error("not a valid Ethereum transaction: {0}")]
    Malformed(String),
    #[error("transaction type {0} is not supported (legacy, EIP-2930 and EIP-1559 are)")]
    UnsupportedType(u8),
    #[error("legacy transaction without a chain id (pre-EIP-155) refused: it could be replayed on any chain")]
    NoChainId,
    #[error("transaction is for chain {got}, this chain is {want}")]
    WrongChain { got: u64, want: u64 },
    #[error("signature has a high s value (EIP-2)")]
    HighS,
    #[error("priority fee {tip} exceeds the fee cap {cap}")]
    TipAboveFeeCap { tip: u128, cap: u128 },
    #[error("invalid signature: no sender can be recovered")]
    BadSignature,
}

/// The transaction's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxType {
    Legacy = 0,
    Eip2930 = 1,
    Eip1559 = 2,
}

/// A decoded transaction whose sender is not yet known.
#[derive(Debug, Clone, PartialEq)]
pub struct EthTx {
    /// keccak256 of the raw bytes: the id Ethereum clients expect back.
    pub hash: B256,
    pub tx_type: TxType,
    pub chain_id: u64,
    pub nonce: u64,
    pub gas_limit: u64,
    /// Legacy and EIP-2930: the gas price; EIP-1559: the fee cap.
    pub max_fee_per_gas: u128,
    /// EIP-1559 only.
    pub max_priority_fee_per_gas: Option<u128>,
    /// `None` creates a contract.
    pub to: Option<Address>,
    pub value: U256,
    pub input: Vec<u8>,
    /// (address, storage keys) pairs to pre-warm (EIP-2930).
    pub access_list: Vec<(Address, Vec<B256>)>,
    /// The hash the sender signed.
    pub signing_hash: B256,
    /// `r ‖ s`, and the y parity of `R`.
    pub signature: [u8; 64],
    pub y_parity: bool,
}

impl EthTx {
    /// The price the sender pays per gas in a block whose base fee is zero:
    /// what a `min_gas_price` is compared with.
    pub fn effective_gas_price(&self) -> u128 {
        match self.max_priority_fee_per_gas {
            Some(tip) => tip.min(self.max_fee_per_gas),
            None => self.max_fee_per_gas,
        }
    }

    /// The sender, with `backend`.
    pub fn recover_sender(&self, backend: Backend) -> Result<Address, EthTxError> {
        recover::recover_one(self, backend)
    }
}

/// Decodes `raw` as a transaction of chain `chain_id`.
pub fn decode(raw: &[u8], chain_id: u64) -> Result<EthTx, EthTxError> {
    if raw.len() > MAX_RAW_TX_BYTES {
        return Err(EthTxError::TooLarge(raw.len()));
    }
    let env =
        TxEnvelope::decode_2718_exact(raw).map_err(|e| EthTxError::Malformed(e.to_string()))?;
    let tx_type = match env.ty() {
        0 => TxType::Legacy,
        1 => TxType::Eip2930,
        2 => TxType::Eip1559,
        other => return Err(EthTxError::UnsupportedType(other)),
    };
    if !env.is_replay_protected() {
        return Err(EthTxError::NoChainId);
    }
    let got = env.chain_id().ok_or(EthTxError::NoChainId)?;
    if got != chain_id {
        return Err(EthTxError::WrongChain {
            got,
            want: chain_id,
        });
    }
    // Legacy hashes are of a re-encoding: refuse bytes that are not the
    // canonical encoding of what they decode to, so one transaction has
    // one id.
    let hash = keccak256(raw);
    if *env.tx_hash() != hash {
        return Err(EthTxError::Malformed("not canonically encoded".into()));
    }
    if let Some(tip) = env.max_priority_fee_per_gas() {
        let cap = env.max_fee_per_gas();
        if tip > cap {
            return Err(EthTxError::TipAboveFeeCap { tip, cap });
        }
    }
    let sig = env.signature();
    if !low_s(&sig.s().to_be_bytes::<32>()) {
        return Err(EthTxError::HighS);
    }
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    signature[32..].copy_from_slice(&sig.s().to_be_bytes::<32>());
    Ok(EthTx {
        hash,
        tx_type,
        chain_id: got,
        nonce: env.nonce(),
        gas_limit: env.gas_limit(),
        max_fee_per_gas: env.max_fee_per_gas(),
        max_priority_fee_per_gas: env.max_priority_fee_per_gas(),
        to: match env.kind() {
            TxKind::Call(a) => Some(a),
            TxKind::Create => None,
        },
        value: env.value(),
        input: env.input().to_vec(),
        access_list: env
            .access_list()
            .map(|l| {
                l.iter()
                    .map(|i| (i.address, i.storage_keys.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        signing_hash: env.signature_hash(),
        signature,
        y_parity: sig.v(),
    })
}

/// Whether `s` (32 bytes, big-endian) is at most half the group order.
pub(crate) fn low_s(s: &[u8; 32]) -> bool {
    U256::from_be_bytes(*s) <= SECP256K1N_HALF
}

/// The sender as alloy recovers it (k256): the reference the faster
/// backends are tested against.
pub fn reference_sender(raw: &[u8]) -> Result<Address, EthTxError> {
    let env =
        TxEnvelope::decode_2718_exact(raw).map_err(|e| EthTxError::Malformed(e.to_string()))?;
    env.recover_signer().map_err(|_| EthTxError::BadSignature)
}
