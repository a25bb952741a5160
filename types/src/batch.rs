//! Batch verification of transaction signatures, deterministic across nodes.
//!
//! Block validity must have one answer on every node. ed25519-dalek's batch
//! verifier checks the cofactorless equation with random weights, so a
//! crafted signature with a small-order component passes on some nodes and
//! fails on others. This module instead defines transaction-signature
//! validity as the **cofactored** equation `[8]([s]B - R - [k]A) = 0`
//! (as in ZIP-215), plus canonical `S` and no small-order `A` or `R`; a batch
//! check with weights derived from the batch itself (Fiat-Shamir) accepts
//! exactly when every signature passes it (up to 2^-128), and when the batch
//! fails each signature is checked alone to name the first bad one. So the
//! verdict never depends on which path, or which node, computed it.
//!
//! Every signature made by a standard RFC 8032 signer passes.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::{PublicKey, Signature, SignedTransaction};

struct Prepared {
    a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
    /// The encodings as received: the batch weights are derived from these
    /// (re-compressing the points would cost a field inversion each).
    a_bytes: [u8; 32],
    r_bytes: [u8; 32],
}

/// Decompressed signer keys by their encoding. An account signs many
/// transactions and decompressing a point costs about a fifth of a batch
/// verification, so each node decompresses a signer's key once. Only keys
/// that decompress and are not of small order are kept; the map is bounded
/// and simply emptied when full (a cache miss only costs time).
static KEY_CACHE: OnceLock<Mutex<HashMap<[u8; 32], EdwardsPoint>>> = OnceLock::new();
const KEY_CACHE_MAX: usize = 1 << 16;

fn key_cache() -> &'static Mutex<HashMap<[u8; 32], EdwardsPoint>> {
    KEY_CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn decompress_key(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let a = CompressedEdwardsY(*bytes).decompress()?;
    (!a.is_small_order()).then_some(a)
}

/// The points of `keys`, `None` where a key is not a valid signer key;
/// one lock for the whole lookup, decompression outside it.
fn signer_points(keys: &[&PublicKey]) -> Vec<Option<EdwardsPoint>> {
    let mut out: Vec<Option<EdwardsPoint>> = match key_cache().lock() {
        Ok(cache) => keys.iter().map(|k| cache.get(&k.0).copied()).collect(),
        // A panic elsewhere poisoned the cache: work without it.
        Err(_) => vec![None; keys.len()],
    };
    let mut fresh = Vec::new();
    for (slot, key) in out.iter_mut().zip(keys) {
        if slot.is_none() {
            *slot = decompress_key(&key.0);
            if let Some(p) = slot {
                fresh.push((key.0, *p));
            }
        }
    }
    if !fresh.is_empty() {
        if let Ok(mut cache) = key_cache().lock() {
            if cache.len() + fresh.len() > KEY_CACHE_MAX {
                cache.clear();
            }
            cache.extend(fresh);
        }
    }
    out
}

fn prepare(
    a: Option<EdwardsPoint>,
    key: &PublicKey,
    msg: &[u8],
    sig: &Signature,
) -> Option<Prepared> {
    let a = a?;
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&sig.0[..32]);
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    if r.is_small_order() {
        return None;
    }
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig.0[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let digest: [u8; 64] = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(key.0)
        .chain_update(msg)
        .finalize()
        .into();
    let k = Scalar::from_bytes_mod_order_wide(&digest);
    Some(Prepared {
        a,
        r,
        s,
        k,
        a_bytes: key.0,
        r_bytes,
    })
}

fn check_one(p: &Prepared) -> bool {
    let lhs = EdwardsPoint::vartime_double_scalar_mul_basepoint(&(-p.k), &p.a, &p.s) - p.r;
    lhs.mul_by_cofactor().is_identity()
}

/// Verifies one signature under the cofactored rule of this module.
pub fn verify_cofactored(key: &PublicKey, msg: &[u8], sig: &Signature) -> bool {
    let a = signer_points(&[key]).pop().flatten();
    prepare(a, key, msg, sig).is_some_and(|p| check_one(&p))
}

/// Verifies every `(key, message, signature)`; on failure returns the index
/// of the first signature that does not verify on its own.
pub fn verify_batch(items: &[(&PublicKey, &[u8], &Signature)]) -> Result<(), usize> {
    let keys: Vec<&PublicKey> = items.iter().map(|(k, _, _)| *k).collect();
    let points = signer_points(&keys);
    let mut prepared = Vec::with_capacity(items.len());
    for (i, ((key, msg, sig), a)) in items.iter().zip(points).enumerate() {
        prepared.push(prepare(a, key, msg, sig).ok_or(i)?);
    }
    if batch_holds(&prepared) {
        return Ok(());
    }
    match prepared.iter().position(|p| !check_one(p)) {
        Some(i) => Err(i),
        // Batch failed yet every signature holds alone: only possible with
        // probability ~2^-128; the individual checks are the definition.
        None => Ok(()),
    }
}

/// Verifies the signatures of `txs` (see [`verify_batch`]).
pub fn verify_transactions(txs: &[SignedTransaction]) -> Result<(), usize> {
    let refs: Vec<&SignedTransaction> = txs.iter().collect();
    verify_transaction_refs(&refs)
}

/// [`verify_transactions`] over borrowed transactions, so a caller that
/// checks a subset need not copy them.
pub fn verify_transaction_refs(txs: &[&SignedTransaction]) -> Result<(), usize> {
    let msgs: Vec<Vec<u8>> = txs.iter().map(|t| t.tx.signing_bytes()).collect();
    let keys: Vec<PublicKey> = txs.iter().map(|t| t.tx.signer.public_key()).collect();
    let items: Vec<(&PublicKey, &[u8], &Signature)> = txs
        .iter()
        .enumerate()
        .map(|(i, t)| (&keys[i], msgs[i].as_slice(), &t.signature))
        .collect();
    verify_batch(&items)
}

fn batch_holds(ps: &[Prepared]) -> bool {
    if ps.is_empty() {
        return true;
    }
    // Weights from a hash of the whole batch: an attacker cannot choose
    // signatures that cancel without knowing the weights they produce.
    let mut t = Sha512::new();
    t.update(b"palisade/batch/v1");
    for p in ps {
        t.update(p.r_bytes);
        t.update(p.a_bytes);
        t.update(p.s.as_bytes());
        t.update(p.k.as_bytes());
    }
    let seed = t.finalize();
    let mut scalars = Vec::with_capacity(2 * ps.len() + 1);
    let mut points = Vec::with_capacity(2 * ps.len() + 1);
    let mut b_coeff = Scalar::ZERO;
    for (i, p) in ps.iter().enumerate() {
        let h = Sha512::new()
            .chain_update(seed)
            .chain_update((i as u64).to_le_bytes())
            .finalize();
        let mut z = [0u8; 32];
        z[..16].copy_from_slice(&h[..16]);
        let z = Scalar::from_bytes_mod_order(z);
        b_coeff -= z * p.s;
        scalars.push(z);
        points.push(p.r);
        scalars.push(z * p.k);
        points.push(p.a);
    }
    scalars.push(b_coeff);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Address, ChainId, Keypair, Transaction};

    fn txs(n: u8) -> Vec<SignedTransaction> {
        (0..n)
            .map(|i| {
                let k = Keypair::from_seed([i + 1; 32]);
                Transaction {
                    chain_id: ChainId::new("b").unwrap(),
                    nonce: u64::from(i),
                    signer: k.address(),
                    action: Action::Transfer {
                        to: Address([9; 32]),
                        amount: 1,
                    },
                }
                .sign(&k)
            })
            .collect()
    }

    #[test]
    fn good_batch_passes_and_agrees_with_strict() {
        let t = txs(20);
        assert_eq!(verify_transactions(&t), Ok(()));
        for x in &t {
            assert!(x.verify().is_ok());
            assert!(verify_cofactored(
                &x.tx.signer.public_key(),
                &x.tx.signing_bytes(),
                &x.signature
            ));
        }
        assert_eq!(verify_transactions(&[]), Ok(()));
    }

    #[test]
    fn first_bad_signature_is_named() {
        let mut t = txs(10);
        t[6].signature.0[5] ^= 1;
        t[8].tx.nonce += 1;
        assert_eq!(verify_transactions(&t), Err(6));
        let mut t = txs(3);
        // S with its top bits set is not a canonical scalar.
        t[1].signature.0[63] |= 0xf0;
        assert_eq!(verify_transactions(&t), Err(1));
    }

    #[test]
    fn verdicts_are_the_same_with_a_warm_key_cache() {
        let mut t = txs(12);
        t[4].signature.0[40] ^= 1;
        // Cold, then warm: every signer key is cached after the first call.
        assert_eq!(verify_transactions(&t), Err(4));
        assert_eq!(verify_transactions(&t), Err(4));
        t[4] = txs(12)[4].clone();
        assert_eq!(verify_transactions(&t), Ok(()));
        for x in &t {
            assert!(verify_cofactored(
                &x.tx.signer.public_key(),
                &x.tx.signing_bytes(),
                &x.signature
            ));
        }
        // A key that does not decompress is refused every time (it is
        // never cached).
        let mut bad = t[0].clone();
        let key = (0u8..=255)
            .map(|b| [b; 32])
            .find(|k| CompressedEdwardsY(*k).decompress().is_none())
            .unwrap();
        bad.tx.signer = Address(key);
        for _ in 0..2 {
            assert!(!verify_cofactored(
                &bad.tx.signer.public_key(),
                &bad.tx.signing_bytes(),
                &bad.signature
            ));
        }
    }

    #[test]
    fn small_order_key_is_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut sig = [0u8; 64];
        sig[0] = 1;
        assert!(!verify_cofactored(
            &PublicKey(identity),
            b"m",
            &Signature(sig)
        ));
        assert_eq!(
            verify_batch(&[(&PublicKey(identity), b"m", &Signature(sig))]),
            Err(0)
        );
    }
}
