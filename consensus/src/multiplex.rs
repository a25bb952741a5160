//! The multiplexer: turns what just changed (a threshold crossed, a
//! proposal's block judged, the round or step moved) into the events of
//! Algorithm 1 whose conditions now hold, for [`crate::transition::apply`].
//!
//! Every fact it reads only grows within a height (proposals, validity,
//! vote counts; only a verified commit certificate turns a block found
//! invalid into a valid one, and that decides at once), so an event
//! computed now stays true until it is applied; the transition table then
//! takes it or not by the step it finds.

use std::collections::BTreeMap;
use std::sync::Arc;

use palisade_types::{Block, CommitCertificate, Hash, Round, SignedProposal, VoteType};

use crate::transition::{Event, RoundState, StepState};
use crate::votes::{Threshold, VoteKeeper};

/// What the multiplexer reads: the round state and what this height holds.
pub(crate) struct View<'a> {
    pub state: RoundState,
    pub proposals: &'a BTreeMap<Round, SignedProposal>,
    pub blocks: &'a BTreeMap<Hash, Arc<Block>>,
    pub validity: &'a BTreeMap<Hash, bool>,
    pub votes: &'a VoteKeeper,
    /// A verified commit certificate for this height from block sync.
    pub certificate: Option<&'a CommitCertificate>,
}

impl View<'_> {
    /// A threshold of `round` was crossed.
    pub fn on_threshold(&self, round: Round, threshold: Threshold) -> Option<Event> {
        let current = self.state.round;
        match threshold {
            Threshold::Value(VoteType::Prevote, value) if round == current => {
                self.polka_current().filter(
                    |e| matches!(e, Event::ProposalAndPolkaCurrent { value: v, .. } if *v == value),
                )
            }
            // A polka of an earlier round may complete line 28.
            Threshold::Value(VoteType::Prevote, _) if round < current => self.proposal(),
            Threshold::Value(VoteType::Precommit, value) => self.decision(value),
            Threshold::Nil(VoteType::Prevote) if round == current => {
                Some(Event::PolkaNil { round })
            }
            Threshold::Any(VoteType::Prevote) if round == current => {
                Some(Event::PolkaAny { round })
            }
            Threshold::Any(VoteType::Precommit) if round == current => {
                Some(Event::PrecommitAny { round })
            }
            Threshold::Skip if round > current => Some(Event::SkipRound { round }),
            _ => None,
        }
    }

    /// `value`'s block and its validity are both known now.
    pub fn on_value(&self, value: Hash) -> Vec<Event> {
        let mut events = Vec::new();
        events.extend(self.decision(value));
        let current = self.proposals.get(&self.state.round);
        if current.is_some_and(|p| p.proposal.block_hash == value) {
            events.extend(self.proposal());
            events.extend(self.polka_current());
        }
        events
    }

    /// The round or the step just changed: the rules of the new step whose
    /// conditions already hold.
    pub fn on_step(&self) -> Vec<Event> {
        let round = self.state.round;
        let reached = |t| self.votes.reached(round, t);
        match self.state.step {
            StepState::Propose => {
                if let Some(target) = self.votes.skip_target(round) {
                    return vec![Event::SkipRound { round: target }];
                }
                let mut events: Vec<Event> = self.proposal().into_iter().collect();
                if reached(Threshold::Any(VoteType::Precommit)) {
                    events.push(Event::PrecommitAny { round });
                }
                events
            }
            StepState::Prevote => {
                let mut events: Vec<Event> = self.polka_current().into_iter().collect();
                if reached(Threshold::Nil(VoteType::Prevote)) {
                    events.push(Event::PolkaNil { round });
                }
                if reached(Threshold::Any(VoteType::Prevote)) {
                    events.push(Event::PolkaAny { round });
                }
                events
            }
            StepState::Unstarted | StepState::Precommit | StepState::Commit => Vec::new(),
        }
    }

    /// Messages from a validator far ahead were noted: line 55 may hold.
    pub fn on_far_round(&self) -> Option<Event> {
        self.votes
            .skip_target(self.state.round)
            .map(|round| Event::SkipRound { round })
    }

    /// Lines 22 and 28: the current round's proposal, once its validity is
    /// known (line 28 also needs the polka of its validRound).
    fn proposal(&self) -> Option<Event> {
        let round = self.state.round;
        let p = &self.proposals.get(&round)?.proposal;
        let value = p.block_hash;
        let valid = *self.validity.get(&value)?;
        match p.pol_round {
            None => Some(Event::Proposal {
                round,
                value,
                valid,
            }),
            Some(vr) => (vr < round
                && self
                    .votes
                    .reached(vr, Threshold::Value(VoteType::Prevote, value)))
            .then_some(Event::ProposalAndPolkaPrevious {
                round,
                value,
                valid,
                vr,
            }),
        }
    }

    /// Line 36: the current round's proposal is valid and has a polka.
    fn polka_current(&self) -> Option<Event> {
        let round = self.state.round;
        let value = self.proposals.get(&round)?.proposal.block_hash;
        let polka = self
            .votes
            .reached(round, Threshold::Value(VoteType::Prevote, value));
        (polka && self.validity.get(&value) == Some(&true))
            .then_some(Event::ProposalAndPolkaCurrent { round, value })
    }

    /// Line 49: `value`'s block is held and valid, and committed by +2/3
    /// precommits of some round (counted here, or carried by a commit
    /// certificate from block sync).
    fn decision(&self, value: Hash) -> Option<Event> {
        if !self.blocks.contains_key(&value) || self.validity.get(&value) != Some(&true) {
            return None;
        }
        let certified = self
            .certificate
            .filter(|c| c.block_hash == value)
            .map(|c| c.round);
        let round = self.votes.commit_round(value).or(certified)?;
        Some(Event::ProposalAndPrecommitValue { round, value })
    }
}
