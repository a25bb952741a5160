//! Precommits for the last decided block that arrive after this node
//! decided it.
//!
//! A node decides as soon as it holds precommits of more than two thirds
//! of the power, so its own certificate usually lacks the slowest
//! validator even when every validator voted. CometBFT's answer, kept
//! here: the proposer of the next height puts every precommit it has by
//! then into that block's `last_commit` (any valid certificate of the
//! decided block is accepted there), so the chain records who signed each
//! block, and a validator that is really down shows as missing while one
//! that was merely last does not.

use palisade_consensus::Verified;
use palisade_types::{CommitCertificate, CommitSig, Height, SignedVote, ValidatorSet, VoteType};

#[derive(Debug, Default)]
pub struct LatePrecommits {
    decided: Option<(CommitCertificate, ValidatorSet)>,
}

impl LatePrecommits {
    pub fn new() -> LatePrecommits {
        LatePrecommits::default()
    }

    /// A height was decided with `commit`, by the validators `set`.
    pub fn decided(&mut self, commit: CommitCertificate, set: ValidatorSet) {
        self.decided = Some((commit, set));
    }

    /// Adds `vote` (its signature checked at the edge) to the decided
    /// certificate if it is a precommit for the decided block, from a
    /// validator of its height not yet in it. Returns whether it was added.
    pub fn offer(&mut self, vote: &Verified<SignedVote>) -> bool {
        let Some((commit, set)) = &mut self.decided else {
            return false;
        };
        let v = &vote.vote;
        if v.vote_type != VoteType::Precommit
            || v.height != commit.height
            || v.round != commit.round
            || v.block_hash != Some(commit.block_hash)
            || set.get(&v.validator).is_none()
            || commit
                .signatures()
                .iter()
                .any(|s| s.validator == v.validator)
        {
            return false;
        }
        let mut sigs = commit.signatures().to_vec();
        sigs.push(CommitSig {
            validator: v.validator,
            signature: vote.signature,
        });
        match CommitCertificate::new(commit.height, commit.round, commit.block_hash, sigs) {
            Ok(c) => {
                *commit = c;
                true
            }
            Err(_) => false,
        }
    }

    /// The certificate of height `h` with the late precommits, if `h` is
    /// the height last decided.
    pub fn certificate(&self, h: Height) -> Option<&CommitCertificate> {
        self.decided
            .as_ref()
            .map(|(c, _)| c)
            .filter(|c| c.height == h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_types::{ChainId, Hash, Keypair, Round, Validator, Vote};

    fn keys(n: u8) -> Vec<Keypair> {
        (1..=n).map(|i| Keypair::from_seed([i; 32])).collect()
    }

    fn precommit(k: &Keypair, h: u64, round: u32, hash: Hash, chain: &ChainId) -> SignedVote {
        Vote {
            vote_type: VoteType::Precommit,
            height: Height(h),
            round: Round(round),
            block_hash: Some(hash),
            validator: k.public_key(),
        }
        .sign(chain, k)
    }

    #[test]
    fn late_precommits_join_the_certificate_once_and_only_when_they_match() {
        let chain = ChainId::new("late-test").unwrap();
        let ks = keys(4);
        let set = ValidatorSet::new(
            ks.iter()
                .map(|k| Validator {
                    public_key: k.public_key(),
                    power: 1,
                })
                .collect(),
        )
        .unwrap();
        let block = Hash([7; 32]);
        let first: Vec<CommitSig> = ks[..3]
            .iter()
            .map(|k| {
                let v = precommit(k, 5, 0, block, &chain);
                CommitSig {
                    validator: v.vote.validator,
                    signature: v.signature,
                }
            })
            .collect();
        let commit = CommitCertificate::new(Height(5), Round(0), block, first).unwrap();
        let mut late = LatePrecommits::new();
        let checked = |v: SignedVote| Verified::vote(&chain, v).unwrap();
        assert!(
            !late.offer(&checked(precommit(&ks[3], 5, 0, block, &chain))),
            "nothing decided yet"
        );
        late.decided(commit, set.clone());

        let other_chain = ChainId::new("other").unwrap();
        let outsider = Keypair::from_seed([9; 32]);
        let mut forged = precommit(&ks[3], 5, 0, block, &chain);
        forged.signature = precommit(&ks[2], 5, 0, block, &chain).signature;
        for (why, vote) in [
            ("other height", precommit(&ks[3], 6, 0, block, &chain)),
            ("other round", precommit(&ks[3], 5, 1, block, &chain)),
            (
                "other block",
                precommit(&ks[3], 5, 0, Hash([8; 32]), &chain),
            ),
            ("not a validator", precommit(&outsider, 5, 0, block, &chain)),
            ("already in", precommit(&ks[0], 5, 0, block, &chain)),
        ] {
            assert!(!late.offer(&checked(vote)), "{why}: refused");
        }
        // These never get past the edge.
        let other = precommit(&ks[3], 5, 0, block, &other_chain);
        assert!(Verified::vote(&chain, other).is_err(), "other chain");
        assert!(Verified::vote(&chain, forged).is_err(), "bad signature");
        let prevote = Vote {
            vote_type: VoteType::Prevote,
            ..precommit(&ks[3], 5, 0, block, &chain).vote
        }
        .sign(&chain, &ks[3]);
        assert!(!late.offer(&checked(prevote)), "a prevote is refused");
        assert_eq!(late.certificate(Height(5)).unwrap().signatures().len(), 3);

        assert!(late.offer(&checked(precommit(&ks[3], 5, 0, block, &chain))));
        assert!(
            !late.offer(&checked(precommit(&ks[3], 5, 0, block, &chain))),
            "once"
        );
        let c = late.certificate(Height(5)).unwrap();
        assert_eq!(c.signatures().len(), 4);
        assert_eq!(c.verify(&chain, &set).unwrap(), 4);
        assert!(late.certificate(Height(4)).is_none());
    }
}
