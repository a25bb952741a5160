use std::collections::{BTreeMap, BTreeSet};

use palisade_types::{
    is_one_third_of, is_quorum_of, CommitSig, Hash, PublicKey, Round, SignedVote, VoteType,
};

use crate::Evidence;

/// Distinct values one validator may be counted for in one (round, type):
/// an equivocator's second vote still counts toward its value (see
/// [`VoteKeeper`]), but a validator signing hundreds of values cannot make
/// us store them all.
const MAX_VALUES_PER_VALIDATOR: usize = 3;

/// A count of one round that crossed its bound. The keeper reports each
/// threshold of each round once, when the message that crosses it arrives;
/// the multiplexer turns it into an event of Algorithm 1.
///
/// Ordered so that, when one vote crosses several at once, those that can
/// move the step (a value, nil) come before those that only start a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Threshold {
    /// More than two thirds of the power voted this value: a polka (lines
    /// 28, 36) or a commit (line 49).
    Value(VoteType, Hash),
    /// More than two thirds voted nil (line 44).
    Nil(VoteType),
    /// More than two thirds voted, whatever their values (lines 34, 47).
    Any(VoteType),
    /// Validators with more than a third of the power sent something in
    /// the round (line 55).
    Skip,
}

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
    /// Thresholds of this round already reported.
    reached: BTreeSet<Threshold>,
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

/// What adding a vote did, and the thresholds it crossed (each reported
/// once per round), in [`Threshold`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub outcome: VoteOutcome,
    pub crossed: Vec<(Round, Threshold)>,
}

/// Counts the votes of one height by round, type and value, weighted by
/// voting power, and reports each threshold once when it is crossed. A
/// validator counts at most once per (round, type, value) and once toward
/// "any value"; a conflicting second vote becomes evidence.
///
/// It also keeps, for line 55, the highest round each validator was seen in
/// beyond the window of rounds whose messages are stored.
#[derive(Debug, Clone, Default)]
pub struct VoteKeeper {
    /// Total voting power of the height's validator set.
    total_power: u64,
    rounds: BTreeMap<Round, RoundVotes>,
    /// Highest far round seen from each validator, with its power.
    far: BTreeMap<PublicKey, (Round, u64)>,
}

impl VoteKeeper {
    /// A keeper for a validator set of `total_power`.
    pub fn new(total_power: u64) -> VoteKeeper {
        VoteKeeper {
            total_power,
            ..VoteKeeper::default()
        }
    }

    /// Adds a vote whose signature and signer the caller has checked;
    /// `power` is the signer's voting power.
    pub fn add(&mut self, vote: SignedVote, power: u64) -> Counted {
        let round = vote.vote.round;
        let t = vote.vote.vote_type;
        let value = vote.vote.block_hash;
        let who = vote.vote.validator;
        let total_power = self.total_power;
        let rv = self.rounds.entry(round).or_default();
        rv.note_sender(who, power);
        let tally = match t {
            VoteType::Prevote => &mut rv.prevotes,
            VoteType::Precommit => &mut rv.precommits,
        };
        let outcome = count(tally, vote, power);
        let mut candidates = Vec::with_capacity(3);
        if let Some(&p) = tally.power_by_value.get(&value) {
            candidates.push((
                is_quorum_of(p, total_power),
                value.map_or(Threshold::Nil(t), |h| Threshold::Value(t, h)),
            ));
        }
        candidates.push((is_quorum_of(tally.total, total_power), Threshold::Any(t)));
        candidates.push((
            is_one_third_of(rv.sender_power, total_power),
            Threshold::Skip,
        ));
        let crossed = candidates
            .into_iter()
            .filter(|&(over, th)| over && rv.reached.insert(th))
            .map(|(_, th)| (round, th))
            .collect();
        Counted { outcome, crossed }
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

    /// Records that `who` sent a proposal in `round` (counts for line 55);
    /// the skip threshold, if this crossed it.
    pub fn note_sender(&mut self, round: Round, who: PublicKey, power: u64) -> Option<Threshold> {
        let rv = self.rounds.entry(round).or_default();
        rv.note_sender(who, power);
        (is_one_third_of(rv.sender_power, self.total_power) && rv.reached.insert(Threshold::Skip))
            .then_some(Threshold::Skip)
    }

    /// Records that `who` sent a message for `round`, beyond the stored
    /// window: only the highest such round of each validator is kept.
    pub fn note_far(&mut self, who: PublicKey, round: Round, power: u64) {
        let e = self.far.entry(who).or_insert((round, power));
        if e.0 < round {
            *e = (round, power);
        }
    }

    /// Whether `threshold` was crossed in `round`.
    pub fn reached(&self, round: Round, threshold: Threshold) -> bool {
        self.rounds
            .get(&round)
            .is_some_and(|rv| rv.reached.contains(&threshold))
    }

    /// The first round in which precommits for `value` reached a quorum.
    pub fn commit_round(&self, value: Hash) -> Option<Round> {
        let th = Threshold::Value(VoteType::Precommit, value);
        self.rounds
            .iter()
            .find(|(_, rv)| rv.reached.contains(&th))
            .map(|(r, _)| *r)
    }

    /// Line 55's target above `current`: the highest round in which
    /// validators with more than a third of the power sent messages. For
    /// validators seen beyond the window, each counts at the highest round
    /// it was seen in: if more than a third are at round r or later, some
    /// honest one is.
    pub fn skip_target(&self, current: Round) -> Option<Round> {
        let near = self
            .rounds
            .iter()
            .rev()
            .find(|(r, rv)| **r > current && rv.reached.contains(&Threshold::Skip))
            .map(|(r, _)| *r);
        let mut by_round: Vec<(Round, u64)> = self
            .far
            .values()
            .filter(|(r, _)| *r > current)
            .copied()
            .collect();
        by_round.sort_by_key(|&(r, _)| std::cmp::Reverse(r));
        let mut acc = 0u64;
        let far = by_round.into_iter().find_map(|(r, p)| {
            acc = acc.saturating_add(p);
            is_one_third_of(acc, self.total_power).then_some(r)
        });
        near.max(far)
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

    /// This validator's (first) vote of type `t` in `round`.
    pub fn vote_of(&self, round: Round, t: VoteType, who: &PublicKey) -> Option<&SignedVote> {
        self.rounds.get(&round)?.tally(t).first.get(who)
    }

    /// The latest round before `before` in which `who` voted.
    pub fn last_round_of(&self, who: &PublicKey, before: Round) -> Option<Round> {
        self.rounds
            .range(..before)
            .rev()
            .find(|(_, rv)| {
                rv.prevotes.first.contains_key(who) || rv.precommits.first.contains_key(who)
            })
            .map(|(r, _)| *r)
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

/// Counts `vote` in `tally`.
fn count(tally: &mut Tally, vote: SignedVote, power: u64) -> VoteOutcome {
    let who = vote.vote.validator;
    let value = vote.vote.block_hash;
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

    fn key(seed: u8) -> PublicKey {
        Keypair::from_seed([seed; 32]).public_key()
    }

    #[test]
    fn counts_by_value_and_detects_equivocation() {
        // Powers 10, 5 and 15 of a total of 30: quorum needs 21, f+1 11.
        let mut k = VoteKeeper::new(30);
        let add = |k: &mut VoteKeeper, seed, t, value, power| k.add(vote(seed, t, 0, value), power);
        let c = add(&mut k, 1, VoteType::Prevote, Some(7), 10);
        assert_eq!(c.outcome, VoteOutcome::Added);
        assert!(c.crossed.is_empty());
        let c = add(&mut k, 2, VoteType::Prevote, None, 5);
        assert_eq!(c.outcome, VoteOutcome::Added);
        assert_eq!(c.crossed, vec![(Round(0), Threshold::Skip)]);
        let c = add(&mut k, 1, VoteType::Prevote, Some(7), 10);
        assert_eq!(c.outcome, VoteOutcome::Duplicate);
        assert!(c.crossed.is_empty());
        let c = add(&mut k, 1, VoteType::Prevote, Some(8), 10);
        assert!(matches!(c.outcome, VoteOutcome::Equivocation(_)));
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
            add(&mut k, 1, VoteType::Prevote, Some(8), 10).outcome,
            VoteOutcome::Duplicate
        );
        assert_eq!(k.power_for(Round(0), VoteType::Prevote, None), 5);
        assert_eq!(k.power_any(Round(0), VoteType::Prevote), 15);
        assert_eq!(k.power_any(Round(0), VoteType::Precommit), 0);
        assert_eq!(k.sender_power(Round(0)), 15);
        // A polka and +2/3 of any value at once: the value comes first.
        let seven = Hash([7; 32]);
        let c = add(&mut k, 3, VoteType::Prevote, Some(7), 15);
        assert_eq!(
            c.crossed,
            vec![
                (Round(0), Threshold::Value(VoteType::Prevote, seven)),
                (Round(0), Threshold::Any(VoteType::Prevote)),
            ]
        );
        assert!(k.reached(Round(0), Threshold::Value(VoteType::Prevote, seven)));
        assert!(!k.reached(Round(0), Threshold::Nil(VoteType::Prevote)));
        // A precommit from a known sender adds no sender power.
        add(&mut k, 1, VoteType::Precommit, Some(7), 10);
        assert_eq!(k.sender_power(Round(0)), 30);
        assert_eq!(k.commit_round(seven), None);
        let c = add(&mut k, 3, VoteType::Precommit, Some(7), 15);
        assert_eq!(
            c.crossed,
            vec![
                (Round(0), Threshold::Value(VoteType::Precommit, seven)),
                (Round(0), Threshold::Any(VoteType::Precommit)),
            ]
        );
        assert_eq!(k.commit_round(seven), Some(Round(0)));
        assert_eq!(k.commit_sigs(Round(0), seven).len(), 2);
    }

    #[test]
    fn skip_target_counts_near_and_far_rounds() {
        let mut k = VoteKeeper::new(30);
        assert_eq!(k.note_sender(Round(3), key(1), 10), None);
        assert_eq!(k.skip_target(Round(0)), None);
        assert_eq!(
            k.note_sender(Round(3), key(2), 5),
            Some(Threshold::Skip),
            "15 of 30 is more than a third"
        );
        assert_eq!(k.note_sender(Round(3), key(3), 15), None, "reported once");
        assert_eq!(k.skip_target(Round(0)), Some(Round(3)));
        assert_eq!(k.skip_target(Round(3)), None);
        // Far rounds: each validator at its highest; 10 + 5 at 40 or later.
        k.note_far(key(1), Round(90), 10);
        assert_eq!(k.skip_target(Round(3)), None);
        k.note_far(key(2), Round(40), 5);
        k.note_far(key(2), Round(30), 5);
        assert_eq!(k.skip_target(Round(3)), Some(Round(40)));
        assert_eq!(k.skip_target(Round(40)), None);
    }
}
