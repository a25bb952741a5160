//! Messages for the next height, kept until this node gets there.
//!
//! Peers that decide a height first send their next height's proposal and
//! votes while we are still committing: dropping them would cost a round.
//! But a message for a height we have not reached cannot be checked against
//! that height's validator set, so what is kept is bounded by who may fill
//! it, not only by a count:
//!
//! - only the next height, and only rounds below [`ROUND_WINDOW`];
//! - only messages signed (and verified) by a member of the current
//!   height's validator set, and a proposal only from the validator that
//!   set makes proposer of its round (validator-set changes take effect at
//!   least one height after they are decided, so the current set is the
//!   next one but for the changes due exactly at the next height; a new
//!   validator's early messages are dropped and come again with its
//!   rebroadcasts);
//! - one message per (round, vote type, validator) and one proposal per
//!   round, the first one kept: a validator fills at most its own
//!   `2 * ROUND_WINDOW` vote slots and its own rounds' proposals;
//! - at most [`MAX_BUFFERED_VOTES`] votes and [`MAX_BUFFERED_PROPOSAL_BYTES`]
//!   of proposals; past that the highest round goes first, so traffic for
//!   far rounds can never push out the round-0 messages honest validators
//!   send.

use std::collections::BTreeMap;
use std::sync::Arc;

use palisade_types::{
    encoded_len, limits, Block, Height, PublicKey, Round, SignedProposal, SignedVote, ValidatorSet,
    VoteType,
};

use crate::driver::ROUND_WINDOW;
use crate::{proposer, Input};

/// Votes kept for the next height. Two per validator per round are
/// `2 * n` a round: round 0 of a 1,000-validator set fits four times over.
pub const MAX_BUFFERED_VOTES: usize = 8_192;
/// Bytes of proposals (with their blocks) kept for the next height: two
/// full-size blocks.
pub const MAX_BUFFERED_PROPOSAL_BYTES: usize = 2 * (limits::MAX_BLOCK_BYTES + 4 * 1024);

/// Why a message for a later height was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not the next height, or a round beyond the window.
    NotNext,
    /// A proposal not from the validator the current set makes proposer
    /// of its round, or carrying a block other than the one it names.
    NotProposer,
    /// This slot is taken already.
    Duplicate,
    /// The buffer is full of messages of lower rounds.
    Full,
}

/// The next height's messages, bounded as the module doc says.
#[derive(Debug, Default)]
pub(crate) struct FutureBuffer {
    votes: BTreeMap<(Round, VoteType, PublicKey), SignedVote>,
    proposals: BTreeMap<Round, (SignedProposal, Arc<Block>, usize)>,
    proposal_bytes: usize,
}

impl FutureBuffer {
    /// Votes and proposals held.
    pub fn len(&self) -> usize {
        self.votes.len() + self.proposals.len()
    }

    /// Bytes held (proposals with their blocks, and votes).
    pub fn bytes(&self) -> usize {
        self.proposal_bytes + self.votes.len() * std::mem::size_of::<SignedVote>()
    }

    /// Takes everything out, lowest round first.
    pub fn drain(&mut self) -> (Vec<(SignedProposal, Arc<Block>)>, Vec<SignedVote>) {
        let taken = std::mem::take(self);
        (
            taken
                .proposals
                .into_values()
                .map(|(sp, b, _)| (sp, b))
                .collect(),
            taken.votes.into_values().collect(),
        )
    }

    /// Whether the slot `input` would fill is taken.
    pub fn holds(&self, input: &Input) -> bool {
        match input {
            Input::Proposal { proposal, .. } => {
                self.proposals.contains_key(&proposal.proposal.round)
            }
            Input::Vote(sv) => {
                let v = &sv.vote;
                self.votes
                    .contains_key(&(v.round, v.vote_type, v.validator))
            }
            _ => false,
        }
    }

    /// Keeps `sv`, a vote for height `next` whose signature the caller
    /// verified against the current validator set.
    pub fn add_vote(&mut self, next: Height, sv: SignedVote) -> Result<(), Refused> {
        let v = &sv.vote;
        if v.height != next || v.round.get() >= ROUND_WINDOW {
            return Err(Refused::NotNext);
        }
        let slot = (v.round, v.vote_type, v.validator);
        if self.votes.contains_key(&slot) {
            return Err(Refused::Duplicate);
        }
        if self.votes.len() >= MAX_BUFFERED_VOTES {
            // Lower rounds first: make room by dropping the highest, unless
            // this vote is of that round or higher.
            match self.votes.last_key_value() {
                Some((&last, _)) if last.0 > v.round => {
                    self.votes.pop_last();
                }
                _ => return Err(Refused::Full),
            }
        }
        self.votes.insert(slot, sv);
        Ok(())
    }

    /// Keeps `sp`, a proposal for height `next` whose signature the caller
    /// verified against `current`, if `current` makes its signer proposer
    /// of its round and it carries the block it names.
    pub fn add_proposal(
        &mut self,
        current: &ValidatorSet,
        next: Height,
        sp: SignedProposal,
        block: Arc<Block>,
    ) -> Result<(), Refused> {
        let p = &sp.proposal;
        if p.height != next || p.round.get() >= ROUND_WINDOW {
            return Err(Refused::NotNext);
        }
        if self.proposals.contains_key(&p.round) {
            return Err(Refused::Duplicate);
        }
        if proposer(current, next, p.round) != p.proposer || block.hash() != p.block_hash {
            return Err(Refused::NotProposer);
        }
        let size = encoded_len(&sp) + encoded_len(block.as_ref());
        while self.proposal_bytes + size > MAX_BUFFERED_PROPOSAL_BYTES {
            match self.proposals.last_key_value() {
                Some((&last, _)) if last > p.round => {
                    if let Some((_, (_, _, n))) = self.proposals.pop_last() {
                        self.proposal_bytes -= n;
                    }
                }
                _ => return Err(Refused::Full),
            }
        }
        self.proposal_bytes += size;
        self.proposals.insert(p.round, (sp, block, size));
        Ok(())
    }
}
