use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

/// An ed25519 public key (32-byte compressed Edwards point).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature (R || S, 64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

/// An account address: the account's ed25519 public key. Kept apart from
/// [`PublicKey`] so an account can never be passed where a validator's
/// consensus key is expected, or the other way round.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Address(pub [u8; 32]);

/// A 20-byte EVM address: a contract's, an Ethereum (secp256k1) account's,
/// or the EVM face of a native account (`keccak256(address)[12..]`, see
/// `palisade_runtime::evm::evm_address`). Shown and parsed as `0x` and 40 hex
/// digits (either case; no EIP-55 checksum is required).
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct EvmAddress(pub [u8; 20]);

impl EvmAddress {
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

/// Why 32 bytes are not acceptable as a validator's consensus or node key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not the encoding of a point on the ed25519 curve")]
    NotOnCurve,
    #[error("not the canonical encoding of its point")]
    NonCanonical,
    #[error("a point of small order (no signature by it verifies)")]
    SmallOrder,
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key is not a valid ed25519 point")]
    InvalidPublicKey,
    #[error("signature does not verify")]
    Invalid,
}

impl PublicKey {
    /// Strict ed25519 verification (RFC 8032 with canonical S and no
    /// small-order key or R): one signature has exactly one verdict on every
    /// node, which consensus needs.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        crate::verified::or_verify(&self.0, message, &signature.0, || {
            prepared(self)?.verify_uncached(message, signature)
        })
    }

    /// Decompresses the key once, for verifying many signatures by it.
    pub fn prepare(&self) -> Result<PreparedKey, SignatureError> {
        VerifyingKey::from_bytes(&self.0)
            .map(PreparedKey)
            .map_err(|_| SignatureError::InvalidPublicKey)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks that the key can be a validator's consensus or node key: the
    /// canonical encoding of a curve point that is not of small order.
    /// Every key a standard RFC 8032 key generator makes passes. A point
    /// that does not decompress cannot be a libp2p identity (a node with it
    /// in its allowlist cannot start) and a small-order one never signs
    /// (strict verification refuses it); a non-canonical encoding names the
    /// same point, so the same libp2p peer, as its canonical one under
    /// different bytes.
    pub fn check_point(&self) -> Result<(), KeyError> {
        let point = curve25519_dalek::edwards::CompressedEdwardsY(self.0)
            .decompress()
            .ok_or(KeyError::NotOnCurve)?;
        if point.compress().0 != self.0 {
            return Err(KeyError::NonCanonical);
        }
        if point.is_small_order() {
            return Err(KeyError::SmallOrder);
        }
        Ok(())
    }

    /// The account address holding the same key.
    pub fn to_address(self) -> Address {
        Address(self.0)
    }
}

/// A public key decompressed for verification. Decompressing costs about a
/// third of a verification, so keys that verify often (validators) keep one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreparedKey(VerifyingKey);

impl PreparedKey {
    /// Same rules as [`PublicKey::verify`].
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        crate::verified::or_verify(self.0.as_bytes(), message, &signature.0, || {
            self.verify_uncached(message, signature)
        })
    }

    fn verify_uncached(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| SignatureError::Invalid)
    }
}

/// Decompressed keys of recent signers, by their encoding: validators sign
/// every vote, and decompressing costs about a third of a verification.
/// Bounded, and simply emptied when full (a miss only costs time); only
/// keys that decompress are kept.
fn prepared(key: &PublicKey) -> Result<PreparedKey, SignatureError> {
    const MAX: usize = 1 << 12;
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], PreparedKey>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(p) = cache.lock().ok().and_then(|c| c.get(&key.0).copied()) {
        return Ok(p);
    }
    let p = key.prepare()?;
    if let Ok(mut c) = cache.lock() {
        if c.len() >= MAX {
            c.clear();
        }
        c.insert(key.0, p);
    }
    Ok(p)
}

impl Address {
    /// The public key that signs for this account.
    pub fn public_key(self) -> PublicKey {
        PublicKey(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Signature {
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

/// An ed25519 signing key. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl Keypair {
    /// The key whose RFC 8032 secret seed is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair(SigningKey::from_bytes(&seed))
    }

    /// A fresh key from a cryptographically secure RNG.
    pub fn generate<R: rand::CryptoRng + rand::RngCore>(rng: &mut R) -> Keypair {
        Keypair(SigningKey::generate(rng))
    }

    /// The secret seed, for writing key files.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn address(&self) -> Address {
        self.public_key().to_address()
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.public_key())
    }
}

macro_rules! hex_display {
    ($ty:ident, $name:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                crate::hex_serde::fmt_hex0x(&self.0, f)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($name, "({}..)"), &hex::encode(self.0)[..8])
            }
        }
    };
}
hex_display!(PublicKey, "PublicKey");
hex_display!(Address, "Address");
hex_display!(Signature, "Signature");
hex_display!(EvmAddress, "EvmAddress");

crate::hex_serde::impl_hex_fixed!(PublicKey, 32);
crate::hex_serde::impl_hex_fixed!(Address, 32);
crate::hex_serde::impl_hex_fixed!(Signature, 64);
crate::hex_serde::impl_hex_fixed!(EvmAddress, 20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let kp = Keypair::from_seed([7u8; 32]);
        let sig = kp.sign(b"hello");
        assert_eq!(kp.public_key().verify(b"hello", &sig), Ok(()));
        assert_eq!(
            kp.public_key().verify(b"hellp", &sig),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn small_order_key_is_rejected() {
        // The identity point (y = 1) has order 1: with it a "signature" can be
        // forged for any message, so strict verification must refuse it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let forged = {
            let mut s = [0u8; 64];
            s[0] = 1; // R = identity, S = 0
            Signature(s)
        };
        assert!(PublicKey(identity).verify(b"anything", &forged).is_err());
    }

    #[test]
    fn validator_key_points() {
        for seed in 0..32u8 {
            assert_eq!(
                Keypair::from_seed([seed; 32]).public_key().check_point(),
                Ok(())
            );
        }
        // The identity (y = 1) and the point of order 2 (y = -1).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey(identity).check_point(), Err(KeyError::SmallOrder));
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        assert_eq!(
            PublicKey(minus_one).check_point(),
            Err(KeyError::SmallOrder)
        );
        // y = 2 is not on the curve (0x02 followed by zeros: the key of
        // issue 26's report).
        let mut two = [0u8; 32];
        two[0] = 2;
        assert_eq!(PublicKey(two).check_point(), Err(KeyError::NotOnCurve));
        // y = p + 1 encodes the identity non-canonically; x = 0 with the
        // sign bit set ("-0") is the identity too.
        let mut p_plus_one = [0xffu8; 32];
        p_plus_one[0] = 0xee;
        p_plus_one[31] = 0x7f;
        assert_eq!(
            PublicKey(p_plus_one).check_point(),
            Err(KeyError::NonCanonical)
        );
        let mut neg_zero = identity;
        neg_zero[31] |= 0x80;
        assert_eq!(
            PublicKey(neg_zero).check_point(),
            Err(KeyError::NonCanonical)
        );
    }

    #[test]
    fn non_canonical_s_is_rejected() {
        let kp = Keypair::from_seed([3u8; 32]);
        let mut sig = kp.sign(b"m");
        // Add the group order L to S: same value mod L, non-canonical bytes.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (s, l) in sig.0[32..].iter_mut().zip(L) {
            let sum = *s as u16 + l as u16 + carry;
            *s = sum as u8;
            carry = sum >> 8;
        }
        assert!(kp.public_key().verify(b"m", &sig).is_err());
    }

    #[test]
    fn a_remembered_verification_covers_exactly_its_bytes() {
        let kp = Keypair::from_seed([11u8; 32]);
        let other = Keypair::from_seed([12u8; 32]);
        let sig = kp.sign(b"vote");
        let prepared = kp.public_key().prepare().unwrap();
        for _ in 0..2 {
            // First verified, then served by the memo: the same verdict.
            assert_eq!(kp.public_key().verify(b"vote", &sig), Ok(()));
            assert_eq!(prepared.verify(b"vote", &sig), Ok(()));
            // Any other message, key or signature is verified afresh.
            assert!(kp.public_key().verify(b"votf", &sig).is_err());
            assert!(other.public_key().verify(b"vote", &sig).is_err());
            let mut bent = sig;
            bent.0[3] ^= 1;
            assert!(prepared.verify(b"vote", &bent).is_err());
        }
    }

    #[test]
    fn debug_hides_secret() {
        let kp = Keypair::from_seed([9u8; 32]);
        let dbg = format!("{kp:?}");
        assert!(!dbg.contains(&hex::encode([9u8; 32])));
    }

    #[test]
    fn hex_text_round_trip() {
        let kp = Keypair::from_seed([1u8; 32]);
        let text = kp.address().to_string();
        assert_eq!(text.parse::<Address>().unwrap(), kp.address());
        assert!("00ab".parse::<Address>().is_err());
        assert!("0x00ab".parse::<Address>().is_err());
    }
}
