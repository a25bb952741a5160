use std::io::{self, Read};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::limits::MAX_VALIDATORS;
use std::sync::Arc;

use crate::{sha256, BoundedVec, Hash, PreparedKey, PublicKey, Signature, SignatureError, Wire};

/// Largest total voting power of a set. Keeps every power sum, and three
/// times it, far inside u64 and u128 arithmetic.
pub const MAX_TOTAL_POWER: u64 = 1 << 60;

/// One validator as consensus sees it: its consensus key and voting power.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Validator {
    pub public_key: PublicKey,
    pub power: u64,
}

/// A validator set in canonical form: sorted by public key, no duplicates,
/// every power non-zero, 1 to `MAX_VALIDATORS` members, total power at most
/// [`MAX_TOTAL_POWER`]. Decoding enforces the same rules, so every set has
/// exactly one encoding and one hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, Serialize)]
pub struct ValidatorSet {
    validators: BoundedVec<Validator, MAX_VALIDATORS>,
    #[borsh(skip)]
    #[serde(skip)]
    total_power: u64,
    /// Decompressed keys, same order as `validators` (`None`: not a valid
    /// point, so nothing it "signs" verifies). Derived data: ignored by
    /// equality and hashing.
    #[borsh(skip)]
    #[serde(skip)]
    prepared: Prepared,
}

#[derive(Debug, Clone, Default)]
struct Prepared(Arc<Vec<Option<PreparedKey>>>);

impl PartialEq for Prepared {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Prepared {}
impl std::hash::Hash for Prepared {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("validator set is empty")]
    Empty,
    #[error("validator set has {0} members; the limit is {MAX_VALIDATORS}")]
    TooMany(usize),
    #[error("validator {0} has zero voting power")]
    ZeroPower(PublicKey),
    #[error("validator {0} appears more than once")]
    Duplicate(PublicKey),
    #[error("total voting power exceeds {MAX_TOTAL_POWER}")]
    PowerOverflow,
    #[error("validators are not sorted by public key")]
    NotSorted,
}

impl ValidatorSet {
    /// Builds a set from validators in any order.
    pub fn new(mut validators: Vec<Validator>) -> Result<ValidatorSet, ValidatorSetError> {
        validators.sort_by_key(|v| v.public_key);
        Self::from_sorted(validators)
    }

    fn from_sorted(validators: Vec<Validator>) -> Result<ValidatorSet, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        let mut total: u64 = 0;
        for (i, v) in validators.iter().enumerate() {
            if v.power == 0 {
                return Err(ValidatorSetError::ZeroPower(v.public_key));
            }
            if i > 0 {
                let prev = validators[i - 1].public_key;
                if prev == v.public_key {
                    return Err(ValidatorSetError::Duplicate(v.public_key));
                }
                if prev > v.public_key {
                    return Err(ValidatorSetError::NotSorted);
                }
            }
            total = total
                .checked_add(v.power)
                .filter(|t| *t <= MAX_TOTAL_POWER)
                .ok_or(ValidatorSetError::PowerOverflow)?;
        }
        let len = validators.len();
        let validators =
            BoundedVec::new(validators).map_err(|_| ValidatorSetError::TooMany(len))?;
        let prepared = Prepared(Arc::new(
            validators
                .iter()
                .map(|v| v.public_key.prepare().ok())
                .collect(),
        ));
        Ok(ValidatorSet {
            validators,
            total_power: total,
            prepared,
        })
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// Index and entry of the validator with `key`.
    pub fn get(&self, key: &PublicKey) -> Option<(usize, &Validator)> {
        self.validators
            .binary_search_by(|v| v.public_key.cmp(key))
            .ok()
            .map(|i| (i, &self.validators[i]))
    }

    /// Verifies `signature` by member `key` over `message` with its cached
    /// decompressed key; returns the member's power.
    pub fn verify(
        &self,
        key: &PublicKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<u64, SignatureError> {
        let (i, v) = self.get(key).ok_or(SignatureError::InvalidPublicKey)?;
        let prepared = self
            .prepared
            .0
            .get(i)
            .copied()
            .flatten()
            .ok_or(SignatureError::InvalidPublicKey)?;
        prepared.verify(message, signature)?;
        Ok(v.power)
    }

    pub fn power_of(&self, key: &PublicKey) -> u64 {
        self.get(key).map_or(0, |(_, v)| v.power)
    }

    /// More than two thirds of the total power.
    pub fn is_quorum(&self, power: u64) -> bool {
        is_quorum_of(power, self.total_power)
    }

    /// More than one third of the total power: at least one honest validator
    /// is among them when fewer than a third are faulty.
    pub fn is_one_third(&self, power: u64) -> bool {
        is_one_third_of(power, self.total_power)
    }

    /// SHA-256 of the canonical encoding; the `validators_hash` of a header.
    pub fn hash(&self) -> Hash {
        sha256(&crate::encode(self))
    }
}

impl BorshDeserialize for ValidatorSet {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let validators = BoundedVec::<Validator, MAX_VALIDATORS>::deserialize_reader(reader)?;
        ValidatorSet::from_sorted(validators.into_inner())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl<'de> Deserialize<'de> for ValidatorSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            validators: Vec<Validator>,
        }
        let raw = Raw::deserialize(d)?;
        ValidatorSet::new(raw.validators).map_err(serde::de::Error::custom)
    }
}

impl Wire for ValidatorSet {
    const NAME: &'static str = "validator set";
    const MAX_ENCODED_LEN: usize = 4 + MAX_VALIDATORS * 40;
}

/// `power` is more than two thirds of `total` (for counters that keep the
/// total rather than the set, like the consensus vote keeper).
pub fn is_quorum_of(power: u64, total: u64) -> bool {
    u128::from(power) * 3 > u128::from(total) * 2
}

/// `power` is more than one third of `total`.
pub fn is_one_third_of(power: u64, total: u64) -> bool {
    u128::from(power) * 3 > u128::from(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(b: u8, power: u64) -> Validator {
        Validator {
            public_key: PublicKey([b; 32]),
            power,
        }
    }

    #[test]
    fn canonical_order_and_checks() {
        let set = ValidatorSet::new(vec![v(3, 1), v(1, 2), v(2, 3)]).unwrap();
        let keys: Vec<u8> = set.validators().iter().map(|v| v.public_key.0[0]).collect();
        assert_eq!(keys, vec![1, 2, 3]);
        assert_eq!(set.total_power(), 6);
        assert_eq!(set.power_of(&PublicKey([2; 32])), 3);
        assert_eq!(set.power_of(&PublicKey([9; 32])), 0);

        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        assert!(matches!(
            ValidatorSet::new(vec![v(1, 0)]),
            Err(ValidatorSetError::ZeroPower(_))
        ));
        assert!(matches!(
            ValidatorSet::new(vec![v(1, 1), v(1, 2)]),
            Err(ValidatorSetError::Duplicate(_))
        ));
        assert_eq!(
            ValidatorSet::new(vec![v(1, MAX_TOTAL_POWER), v(2, 1)]),
            Err(ValidatorSetError::PowerOverflow)
        );
    }

    #[test]
    fn quorum_thresholds() {
        let set = ValidatorSet::new(vec![v(1, 1), v(2, 1), v(3, 1), v(4, 1)]).unwrap();
        assert!(!set.is_quorum(2));
        assert!(set.is_quorum(3));
        assert!(!set.is_one_third(1));
        assert!(set.is_one_third(2));
    }

    #[test]
    fn unsorted_encoding_is_rejected() {
        let set = ValidatorSet::new(vec![v(1, 1), v(2, 1)]).unwrap();
        let mut enc = crate::encode(&set);
        assert_eq!(crate::decode::<ValidatorSet>(&enc).unwrap(), set);
        // Swap the two 40-byte entries.
        let (a, b) = enc[4..].split_at_mut(40);
        a.swap_with_slice(b);
        assert!(crate::decode::<ValidatorSet>(&enc).is_err());
    }
}
