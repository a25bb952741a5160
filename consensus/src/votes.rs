use std::collections::BTreeMap;

use palisade_types::{CommitSig, Hash, PublicKey, Round, SignedVote, VoteType};

use crate::Evidence;

/// Distinct values one validator may be counted for in one (round, type):
/// an equivocator's second vote still counts toward its value (see
/// [`VoteKeeper`]), but a validator signing hundreds of values cannot make
/// us store them all.
const MAX_VALUES_PER_VALIDATOR: usize = 3;

/// Votes of one type in one round.
#[derive(Debug, Clone, Default)]
struct Tally {
    /// Each validator's first vote: what "its vote" is for the any-value
    /// thresholds and for rebroadcast.
    first: BTreeMap<PublicKey, SignedVote>,
    /// Every validator that signed a vote for each value.
    by_value: BTreeMap<Option<Hash>, BTreeMap<PublicKey, SignedVote>>,
    power_by_value: BTreeMap<Option<Hash>, u64>,
    /// Values counted per validator.
    values_of: BTreeMap<PublicKey, usize>,
    /// Power of distinct validators that voted at all.
    total: u64,
}

#[derive(Debug, Clone, Default)]
struct RoundVotes {
    prevotes: Tally,
    precommits: Tally,
    /// Distinct validators that sent anything in this round, for the f+1
    /// round-skip rule (line 55).
    senders: BTreeMap<PublicKey, u64>,
    sender_power: u64,
}

impl RoundVotes {
    fn tally(&self, t: VoteType) -> &Tally {
        match t {
            VoteType::Prevote => &self.prevotes,
            VoteType::Precommit => &self.precommits,
        }
    }

    fn note_sender(&mut self, who: PublicKey, power: u64) {
        if self.senders.insert(who, power).is_none() {
            self.sender_power = self.sender_power.saturating_add(power);
        }
    }
}

/// What adding a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteOutcome {
    /// First vote of this validator, type and round: counted.
    Added,
    /// The very same vote again: ignored.
    Duplicate,
    /// A different vote of this validator, type and round: kept as evidence;
    /// it counts toward its own value only.
    Equivocation(Evidence),
}

/// Counts the votes of one height by round, type and value, weighted by
/// voting power. A validator counts at most once per (round, type, value)
/// and once toward "any value"; a conflicting second vote becomes evidence.
#[derive(Debug, Clone, Default)]
pub struct VoteKeeper {
    rounds: BTreeMap<Round, RoundVotes>,
}

impl VoteKeeper {
    /// Adds a vote whose signature and signer the caller has checked;
    /// `power` is the signer's voting power.
    pub fn add(&mut self, vote: SignedVote, power: u64) -> VoteOutcome {
        let who = vote.vote.validator;
        let value = vote.vote.block_hash;
        let rv = self.rounds.entry(vote.vote.round).or_default();
        rv.note_sender(who, power);
        let tally = match vote.vote.vote_type {
            VoteType::Prevote => &mut rv.prevotes,
            VoteType::Precommit => &mut rv.precommits,
        };
        if tally
            .by_value
            .get(&value)
            .is_some_and(|voters| voters.contains_key(&who))
        {
            // The same vote again (possibly with another valid signature).
            return VoteOutcome::Duplicate;
        }
        let outcome = match tally.first.get(&who) {
            None => {
                tally.first.insert(who, vote.clone());
                tally.total = tally.total.saturating_add(power);
                VoteOutcome::Added
            }
            Some(first) => VoteOutcome::Equivocation(Evidence::DuplicateVote {
                first: Box::new(first.clone()),
                second: Box::new(vote.clone()),
            }),
        };
        // A conflicting vote still counts toward its own value. Two quorums
        // for different values would each need more than two thirds of the
        // power, so they share more than a third, which includes an honest
        // validator; honest validators never sign both, so counting every
        // signature per value cannot make two values reach quorum. Counting
        // only first votes instead would leave nodes that saw the other vote
        // first unable to see a real polka, stalling the network.
        let counted = tally.values_of.entry(who).or_insert(0);
        if *counted < MAX_VALUES_PER_VALIDATOR {
            *counted += 1;
            tally.by_value.entry(value).or_default().insert(who, vote);
            let slot = tally.power_by_value.entry(value).or_insert(0);
            *slot = slot.saturating_add(power);
        }
        outcome
    }

    /// Whether exactly this signed vote is already counted.
    pub fn contains(&self, vote: &SignedVote) -> bool {
        self.rounds
            .get(&vote.vote.round)
            .and_then(|rv| {
                rv.tally(vote.vote.vote_type)
                    .by_value
                    .get(&vote.vote.block_hash)
            })
            .and_then(|voters| voters.get(&vote.vote.validator))
            .is_some_and(|v| v == vote)
    }

    /// Records that `who` sent a proposal in `round` (counts for line 55).
    pub fn note_sender(&mut self, round: Round, who: PublicKey, power: u64) {
        self.rounds
            .entry(round)
            .or_default()
            .note_sender(who, power);
    }

    /// Power of votes of type `t` in `round` for `value` (`None` = nil).
    pub fn power_for(&self, round: Round, t: VoteType, value: Option<Hash>) -> u64 {
        self.rounds
            .get(&round)
            .and_then(|rv| rv.tally(t).power_by_value.get(&value).copied())
            .unwrap_or(0)
    }

    /// Power of the distinct validators that voted with type `t` in `round`, whatever their value.
    pub fn power_any(&self, round: Round, t: VoteType) -> u64 {
        self.rounds.get(&round).map_or(0, |rv| rv.tally(t).total)
    }

    /// Power of the distinct validators that sent anything in `round`.
    pub fn sender_power(&self, round: Round) -> u64 {
        self.rounds.get(&round).map_or(0, |rv| rv.sender_power)
    }

    /// Rounds with at least one message, ascending.
    pub fn rounds(&self) -> impl DoubleEndedIterator<Item = Round> + '_ {
        self.rounds.keys().copied()
    }

    /// Non-nil values voted for with type `t` in `round`, with their power.
    pub fn values(&self, round: Round, t: VoteType) -> Vec<(Hash, u64)> {
        self.rounds.get(&round).map_or_else(Vec::new, |rv| {
            rv.tally(t)
                .power_by_value
                .iter()
                .filter_map(|(v, p)| v.map(|h| (h, *p)))
                .collect()
        })
    }

    /// This validator's (first) vote of type `t` in `round`.
    pub fn vote_of(&self, round: Round, t: VoteType, who: &PublicKey) -> Option<&SignedVote> {
        self.rounds.get(&round)?.tally(t).first.get(who)
    }

    /// Votes of type `t` in `round` for `value`.
    pub fn votes_for(
        &self,
        round: Round,
        t: VoteType,
        value: Option<Hash>,
    ) -> impl Iterator<Item = &SignedVote> {
        self.rounds
            .get(&round)
            .and_then(|rv| rv.tally(t).by_value.get(&value))
            .into_iter()
            .flat_map(|voters| voters.values())
    }

    /// The precommit signatures for `hash` in `round`, for a commit certificate.
    pub fn commit_sigs(&self, round: Round, hash: Hash) -> Vec<CommitSig> {
        self.votes_for(round, VoteType::Precommit, Some(hash))
            .map(|v| CommitSig {
                validator: v.vote.validator,
                signature: v.signature,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_types::{ChainId, Height, Keypair, Vote};

    fn vote(seed: u8, t: VoteType, round: u32, value: Option<u8>) -> SignedVote {
        let k = Keypair::from_seed([seed; 32]);
        Vote {
            vote_type: t,
            height: Height(1),
            round: Round(round),
            block_hash: value.map(|b| Hash([b; 32])),
            validator: k.public_key(),
        }
        .sign(&ChainId::new("t").unwrap(), &k)
    }

    #[test]
    fn counts_by_value_and_detects_equivocation() {
        let mut k = VoteKeeper::default();
        assert_eq!(
            k.add(vote(1, VoteType::Prevote, 0, Some(7)), 10),
            VoteOutcome::Added
        );
        assert_eq!(
            k.add(vote(2, VoteType::Prevote, 0, None), 5),
            VoteOutcome::Added
        );
        assert_eq!(
            k.add(vote(1, VoteType::Prevote, 0, Some(7)), 10),
            VoteOutcome::Duplicate
        );
        assert!(matches!(
            k.add(vote(1, VoteType::Prevote, 0, Some(8)), 10),
            VoteOutcome::Equivocation(_)
        ));
        assert_eq!(
            k.power_for(Round(0), VoteType::Prevote, Some(Hash([7; 32]))),
            10
        );
        // The conflicting vote counts for its own value, not twice overall.
        assert_eq!(
            k.power_for(Round(0), VoteType::Prevote, Some(Hash([8; 32]))),
            10
        );
        assert!(k.contains(&vote(1, VoteType::Prevote, 0, Some(8))));
        assert_eq!(
            k.add(vote(1, VoteType::Prevote, 0, Some(8)), 10),
            VoteOutcome::Duplicate
        );
        assert_eq!(k.power_for(Round(0), VoteType::Prevote, None), 5);
        assert_eq!(k.power_any(Round(0), VoteType::Prevote), 15);
        assert_eq!(k.power_any(Round(0), VoteType::Precommit), 0);
        assert_eq!(k.sender_power(Round(0)), 15);
        // A precommit from a known sender adds no sender power.
        k.add(vote(1, VoteType::Precommit, 0, Some(7)), 10);
        assert_eq!(k.sender_power(Round(0)), 15);
        assert_eq!(k.commit_sigs(Round(0), Hash([7; 32])).len(), 1);
    }
}
