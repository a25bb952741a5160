//! secp256k1 sender recovery. libsecp256k1 (the C library Bitcoin Core
//! uses) recovers several times faster than the pure-Rust k256 here
//! (`cargo bench -p palisade-ethtx`), so nodes use it; k256 stays as the
//! independent implementation the tests check it against.

use std::sync::OnceLock;

use alloy_primitives::{keccak256, Address};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, Secp256k1, VerifyOnly};

use crate::{EthTx, EthTxError};

/// Which implementation recovers senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// libsecp256k1 (C).
    #[default]
    Libsecp256k1,
    /// RustCrypto's k256 (pure Rust).
    K256,
}

fn context() -> &'static Secp256k1<VerifyOnly> {
    static CTX: OnceLock<Secp256k1<VerifyOnly>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::verification_only)
}

/// The address of an uncompressed public key (without its 0x04 prefix).
fn address_of(xy: &[u8]) -> Address {
    Address::from_slice(&keccak256(xy)[12..])
}

pub(crate) fn recover_one(tx: &EthTx, backend: Backend) -> Result<Address, EthTxError> {
    // Checked here too (not only in `decode`), so both backends refuse a
    // high-s signature alike: libsecp256k1 would recover it, k256 not.
    let s: [u8; 32] = tx.signature[32..]
        .try_into()
        .map_err(|_| EthTxError::BadSignature)?;
    if !crate::low_s(&s) {
        return Err(EthTxError::HighS);
    }
    match backend {
        Backend::Libsecp256k1 => {
            let id = RecoveryId::try_from(i32::from(tx.y_parity))
                .map_err(|_| EthTxError::BadSignature)?;
            let sig = RecoverableSignature::from_compact(&tx.signature, id)
                .map_err(|_| EthTxError::BadSignature)?;
            let key = context()
                .recover_ecdsa(Message::from_digest(tx.signing_hash.0), &sig)
                .map_err(|_| EthTxError::BadSignature)?;
            Ok(address_of(&key.serialize_uncompressed()[1..]))
        }
        Backend::K256 => {
            use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
            let sig = Signature::from_slice(&tx.signature).map_err(|_| EthTxError::BadSignature)?;
            let id = RecoveryId::new(tx.y_parity, false);
            let key = VerifyingKey::recover_from_prehash(tx.signing_hash.as_slice(), &sig, id)
                .map_err(|_| EthTxError::BadSignature)?;
            Ok(address_of(&key.to_encoded_point(false).as_bytes()[1..]))
        }
    }
}

/// Recovers the senders of `txs` on up to `threads` threads, in order. The
/// result for each transaction is what [`EthTx::recover_sender`] gives: a
/// batch is only faster, never different.
pub fn recover_batch(txs: &[EthTx], threads: usize) -> Vec<Result<Address, EthTxError>> {
    let threads = threads.clamp(1, 64);
    if threads == 1 || txs.len() < 64 {
        return txs
            .iter()
            .map(|t| recover_one(t, Backend::default()))
            .collect();
    }
    let chunk = txs.len().div_ceil(threads);
    let mut parts = txs.chunks(chunk);
    // The calling thread recovers the first part itself: one thread fewer
    // to start and to switch to for every batch.
    let first = parts.next().unwrap_or_default();
    std::thread::scope(|s| {
        let others: Vec<_> = parts
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|t| recover_one(t, Backend::default()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(txs.len());
        out.extend(first.iter().map(|t| recover_one(t, Backend::default())));
        for h in others {
            // A panic is a bug, not a verdict on the transactions: it
            // goes on up rather than become "bad signature" on one node.
            out.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        out
    })
}
