use std::io::{self, Read};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::limits::{MAX_COMMIT_BYTES, MAX_VALIDATORS};
use crate::{
    sha256, BoundedVec, ChainId, Hash, Height, Keypair, PublicKey, Round, Signature, ValidatorSet,
    Vote, VoteType, Wire,
};

/// One validator's precommit signature inside a commit certificate.
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
pub struct CommitSig {
    pub validator: PublicKey,
    pub signature: Signature,
}

/// Proof that a block was committed: precommit signatures for
/// (`height`, `round`, `block_hash`) from more than two thirds of the voting
/// power. Each signature is over the signing bytes of
/// `Vote { Precommit, height, round, Some(block_hash), validator }`.
/// Signatures are sorted by validator key with no duplicates; decoding
/// enforces this so a certificate has exactly one encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, Serialize)]
pub struct CommitCertificate {
    pub height: Height,
    pub round: Round,
    pub block_hash: Hash,
    signatures: BoundedVec<CommitSig, MAX_VALIDATORS>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    #[error("commit has no signatures")]
    Empty,
    #[error("commit has more than {MAX_VALIDATORS} signatures")]
    TooMany,
    #[error("commit signatures are not sorted by validator or contain a duplicate")]
    NotCanonical,
    #[error("validator {0} in the commit is not in the validator set")]
    UnknownValidator(PublicKey),
    #[error("precommit signature of validator {0} does not verify")]
    BadSignature(PublicKey),
    #[error("commit carries {signed} of {total} voting power; more than two thirds is needed")]
    InsufficientPower { signed: u64, total: u64 },
}

impl CommitCertificate {
    /// Builds a certificate, sorting the signatures. Fails on duplicates.
    pub fn new(
        height: Height,
        round: Round,
        block_hash: Hash,
        mut signatures: Vec<CommitSig>,
    ) -> Result<CommitCertificate, CommitError> {
        signatures.sort_by_key(|s| s.validator);
        Self::from_sorted(height, round, block_hash, signatures)
    }

    /// The certificate of `keys`' precommits for `block_hash` at `height`
    /// and `round`, each signed here: for simulations, test networks and
    /// tools that hold the validators' keys. A node builds its own from
    /// the votes it received.
    pub fn signed(
        chain_id: &ChainId,
        height: Height,
        round: Round,
        block_hash: Hash,
        keys: &[Keypair],
    ) -> Result<CommitCertificate, CommitError> {
        let signatures = keys
            .iter()
            .map(|k| {
                let vote = Vote {
                    vote_type: VoteType::Precommit,
                    height,
                    round,
                    block_hash: Some(block_hash),
                    validator: k.public_key(),
                };
                CommitSig {
                    validator: k.public_key(),
                    signature: vote.sign(chain_id, k).signature,
                }
            })
            .collect();
        Self::new(height, round, block_hash, signatures)
    }

    fn from_sorted(
        height: Height,
        round: Round,
        block_hash: Hash,
        signatures: Vec<CommitSig>,
    ) -> Result<CommitCertificate, CommitError> {
        if signatures.is_empty() {
            return Err(CommitError::Empty);
        }
        if signatures
            .windows(2)
            .any(|w| w[0].validator >= w[1].validator)
        {
            return Err(CommitError::NotCanonical);
        }
        let signatures = BoundedVec::new(signatures).map_err(|_| CommitError::TooMany)?;
        Ok(CommitCertificate {
            height,
            round,
            block_hash,
            signatures,
        })
    }

    pub fn signatures(&self) -> &[CommitSig] {
        &self.signatures
    }

    /// The precommit that `validator`'s signature in this certificate is over.
    pub fn vote_for(&self, validator: PublicKey) -> Vote {
        Vote {
            vote_type: VoteType::Precommit,
            height: self.height,
            round: self.round,
            block_hash: Some(self.block_hash),
            validator,
        }
    }

    /// Checks every signature against `validators` (the set of this height)
    /// and that together they carry more than two thirds of its power.
    /// Returns the signed power.
    pub fn verify(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
    ) -> Result<u64, CommitError> {
        let mut signed: u64 = 0;
        for cs in self.signatures.iter() {
            if validators.get(&cs.validator).is_none() {
                return Err(CommitError::UnknownValidator(cs.validator));
            }
            let msg = self.vote_for(cs.validator).signing_bytes(chain_id);
            let power = validators
                .verify(&cs.validator, &msg, &cs.signature)
                .map_err(|_| CommitError::BadSignature(cs.validator))?;
            // Cannot overflow: the set's total power is bounded and each
            // validator is counted once (signatures are unique).
            signed = signed.saturating_add(power);
        }
        if !validators.is_quorum(signed) {
            return Err(CommitError::InsufficientPower {
                signed,
                total: validators.total_power(),
            });
        }
        Ok(signed)
    }

    /// SHA-256 of the canonical encoding; the next header's `last_commit_hash`.
    pub fn hash(&self) -> Hash {
        sha256(&crate::encode(self))
    }
}

impl BorshDeserialize for CommitCertificate {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let height = Height::deserialize_reader(reader)?;
        let round = Round::deserialize_reader(reader)?;
        let block_hash = Hash::deserialize_reader(reader)?;
        let signatures = BoundedVec::<CommitSig, MAX_VALIDATORS>::deserialize_reader(reader)?;
        CommitCertificate::from_sorted(height, round, block_hash, signatures.into_inner())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl<'de> Deserialize<'de> for CommitCertificate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            height: Height,
            round: Round,
            block_hash: Hash,
            signatures: Vec<CommitSig>,
        }
        let raw = Raw::deserialize(d)?;
        // Same canonical-form rule as the binary decoder: sorted, unique.
        CommitCertificate::from_sorted(raw.height, raw.round, raw.block_hash, raw.signatures)
            .map_err(serde::de::Error::custom)
    }
}

impl Wire for CommitCertificate {
    const NAME: &'static str = "commit certificate";
    const MAX_ENCODED_LEN: usize = MAX_COMMIT_BYTES;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Validator;

    fn setup(n: u8) -> (ChainId, Vec<Keypair>, ValidatorSet) {
        let keys: Vec<Keypair> = (1..=n).map(|i| Keypair::from_seed([i; 32])).collect();
        let set = ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    public_key: k.public_key(),
                    power: 10,
                })
                .collect(),
        )
        .unwrap();
        (ChainId::new("c").unwrap(), keys, set)
    }

    fn commit(chain: &ChainId, keys: &[Keypair], hash: Hash) -> CommitCertificate {
        CommitCertificate::signed(chain, Height(7), Round(1), hash, keys).unwrap()
    }

    #[test]
    fn quorum_commit_verifies() {
        let (chain, keys, set) = setup(4);
        let c = commit(&chain, &keys[..3], Hash([1; 32]));
        assert_eq!(c.verify(&chain, &set), Ok(30));
    }

    #[test]
    fn two_of_four_is_not_enough() {
        let (chain, keys, set) = setup(4);
        let c = commit(&chain, &keys[..2], Hash([1; 32]));
        assert_eq!(
            c.verify(&chain, &set),
            Err(CommitError::InsufficientPower {
                signed: 20,
                total: 40
            })
        );
    }

    #[test]
    fn tampered_hash_or_chain_fails() {
        let (chain, keys, set) = setup(4);
        let mut c = commit(&chain, &keys, Hash([1; 32]));
        assert!(c.verify(&ChainId::new("other").unwrap(), &set).is_err());
        c.block_hash = Hash([2; 32]);
        assert!(matches!(
            c.verify(&chain, &set),
            Err(CommitError::BadSignature(_))
        ));
    }

    #[test]
    fn unknown_validator_fails() {
        let (chain, keys, set) = setup(4);
        let outsider = Keypair::from_seed([99; 32]);
        let mut all = keys.clone();
        all.push(outsider);
        let c = commit(&chain, &all, Hash([1; 32]));
        assert!(matches!(
            c.verify(&chain, &set),
            Err(CommitError::UnknownValidator(_))
        ));
    }

    #[test]
    fn duplicate_signer_is_not_canonical() {
        let (chain, keys, _) = setup(2);
        let c = commit(&chain, &keys, Hash([1; 32]));
        let mut sigs = c.signatures().to_vec();
        sigs.push(sigs[0]);
        assert_eq!(
            CommitCertificate::new(c.height, c.round, c.block_hash, sigs),
            Err(CommitError::NotCanonical)
        );
        // And the same through the decoder: duplicate the first entry's bytes.
        let enc = crate::encode(&c);
        let mut dup = enc[..8 + 4 + 32].to_vec();
        dup.extend_from_slice(&3u32.to_le_bytes());
        dup.extend_from_slice(&enc[48..48 + 96]);
        dup.extend_from_slice(&enc[48..]);
        assert!(crate::decode::<CommitCertificate>(&dup).is_err());
    }
}
