//! A certified change of validator set: the header of a block whose next
//! set differs from its own, the certificate that decided it, and that
//! next set. Each one, checked against the set known to decide its block,
//! makes the next set known; a chain of them carries trust from genesis
//! (or any set a node trusts) to a later height without the blocks in
//! between. This is how a node joining by state sync comes to trust a
//! snapshot decided by validators that were not there at genesis.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::{BlockHeader, ChainId, CommitCertificate, CommitError, Height, ValidatorSet, Wire};

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SetChange {
    pub header: BlockHeader,
    pub commit: CommitCertificate,
    /// The set that decides `header.height + 1`.
    pub next_validators: ValidatorSet,
}

impl Wire for SetChange {
    const NAME: &'static str = "validator set change";
    const MAX_ENCODED_LEN: usize = BlockHeader::MAX_ENCODED_LEN
        + CommitCertificate::MAX_ENCODED_LEN
        + ValidatorSet::MAX_ENCODED_LEN;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetChangeError {
    #[error("the block at height {0} is of another chain")]
    Chain(Height),
    #[error("the block at height {0} is not decided by the set trusted there")]
    NotTrustedSet(Height),
    #[error("the block at height {0} does not change the validator set")]
    NoChange(Height),
    #[error("the certificate is not for the block at height {0}")]
    WrongBlock(Height),
    #[error("the certificate of height {height} does not verify: {source}")]
    Certificate { height: Height, source: CommitError },
    #[error("the set given for height {0} + 1 is not the one its block names")]
    WrongNextSet(Height),
    #[error("the change at height {0} is not after the last one known")]
    OutOfOrder(Height),
}

impl SetChangeError {
    /// Whether the change is false whatever the verifier trusts (rather
    /// than one it cannot place: another set's, or out of order).
    pub fn is_forged(&self) -> bool {
        !matches!(
            self,
            SetChangeError::NotTrustedSet(_) | SetChangeError::OutOfOrder(_)
        )
    }
}

impl SetChange {
    pub fn height(&self) -> Height {
        self.header.height
    }

    /// Checks this change against `trusted`, the set known to decide its
    /// block, and returns the set it makes known for the next height.
    pub fn verify(
        &self,
        chain_id: &ChainId,
        trusted: &ValidatorSet,
    ) -> Result<&ValidatorSet, SetChangeError> {
        let h = self.header.height;
        if &self.header.chain_id != chain_id {
            return Err(SetChangeError::Chain(h));
        }
        if self.header.validators_hash != trusted.hash() {
            return Err(SetChangeError::NotTrustedSet(h));
        }
        if self.header.next_validators_hash == self.header.validators_hash {
            return Err(SetChangeError::NoChange(h));
        }
        if self.commit.height != h || self.commit.block_hash != self.header.hash() {
            return Err(SetChangeError::WrongBlock(h));
        }
        self.commit
            .verify(chain_id, trusted)
            .map_err(|source| SetChangeError::Certificate { height: h, source })?;
        if self.next_validators.hash() != self.header.next_validators_hash {
            return Err(SetChangeError::WrongNextSet(h));
        }
        Ok(&self.next_validators)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Hash, Keypair, Round, Timestamp, Validator};

    fn keys(seed: u8, n: u8) -> Vec<Keypair> {
        (0..n).map(|i| Keypair::from_seed([seed + i; 32])).collect()
    }

    fn set(keys: &[Keypair]) -> ValidatorSet {
        ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    public_key: k.public_key(),
                    power: 1,
                })
                .collect(),
        )
        .unwrap()
    }

    fn chain() -> ChainId {
        ChainId::new("set-change-test").unwrap()
    }

    /// The block at `height` decided by `signers` of `current`, naming `next`.
    fn change(
        height: u64,
        current: &ValidatorSet,
        signers: &[Keypair],
        next: &ValidatorSet,
    ) -> SetChange {
        let header = BlockHeader {
            chain_id: chain(),
            height: Height(height),
            time: Timestamp(height),
            last_block_hash: Hash([1; 32]),
            tx_root: Hash::ZERO,
            state_root: Hash([2; 32]),
            receipts_root: Hash::ZERO,
            validators_hash: current.hash(),
            next_validators_hash: next.hash(),
            proposer: signers[0].public_key(),
            last_commit_hash: Hash::ZERO,
        };
        let hash = header.hash();
        let commit =
            CommitCertificate::signed(&chain(), Height(height), Round(0), hash, signers).unwrap();
        SetChange {
            header,
            commit,
            next_validators: next.clone(),
        }
    }

    #[test]
    fn a_change_decided_by_the_trusted_set_makes_the_next_set_known() {
        let (old, new) = (keys(10, 4), keys(50, 4));
        let (old_set, new_set) = (set(&old), set(&new));
        let c = change(7, &old_set, &old[..3], &new_set);
        assert_eq!(c.verify(&chain(), &old_set).unwrap(), &new_set);
    }

    #[test]
    fn changes_that_do_not_follow_from_the_trusted_set_are_refused() {
        let (old, new) = (keys(10, 4), keys(50, 4));
        let (old_set, new_set) = (set(&old), set(&new));
        // Two of four: not more than two thirds.
        let weak = change(7, &old_set, &old[..2], &new_set);
        assert!(matches!(
            weak.verify(&chain(), &old_set),
            Err(SetChangeError::Certificate { .. })
        ));
        // Decided by a set the verifier does not trust there.
        let other = change(7, &new_set, &new[..3], &old_set);
        assert_eq!(
            other.verify(&chain(), &old_set),
            Err(SetChangeError::NotTrustedSet(Height(7)))
        );
        // A set other than the one the block names.
        let mut swapped = change(7, &old_set, &old[..3], &new_set);
        swapped.next_validators = set(&keys(90, 4));
        assert_eq!(
            swapped.verify(&chain(), &old_set),
            Err(SetChangeError::WrongNextSet(Height(7)))
        );
        // A block that changes nothing.
        let same = change(7, &old_set, &old[..3], &old_set);
        assert_eq!(
            same.verify(&chain(), &old_set),
            Err(SetChangeError::NoChange(Height(7)))
        );
        // A certificate of another block.
        let mut moved = change(7, &old_set, &old[..3], &new_set);
        moved.header.height = Height(8);
        assert_eq!(
            moved.verify(&chain(), &old_set),
            Err(SetChangeError::WrongBlock(Height(8)))
        );
        // Another chain's.
        let mut foreign = change(7, &old_set, &old[..3], &new_set);
        foreign.header.chain_id = ChainId::new("elsewhere").unwrap();
        assert_eq!(
            foreign.verify(&chain(), &old_set),
            Err(SetChangeError::Chain(Height(7)))
        );
    }
}
