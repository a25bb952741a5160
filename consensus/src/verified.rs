//! Messages whose signatures were checked at the edge: the only kind the
//! state machine takes.
//!
//! The node's network layer checks each consensus message once, as it
//! arrives (before gossip forwards it), and hands consensus a
//! [`Verified`] message; the state machine then decides only what needs
//! its state: whether the signer is a validator of that height, whether a
//! proposal is from that round's proposer. A [`Verified`] value is built
//! only by checking a signature ([`Verified::check`]), so no path can feed
//! the state machine an unchecked one, and none checks one twice.

use std::ops::Deref;

use palisade_types::{Block, ChainId, SignedProposal, SignedVote};

use crate::{Input, Message, MessageError};

/// A `T` whose signature verifies under the key it names. Whether that
/// key is a validator at the message's height is not part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// The checked value.
    pub fn into_inner(self) -> T {
        self.0
    }

    /// What this crate signed itself, or re-wraps after taking apart.
    pub(crate) fn trusted(value: T) -> Verified<T> {
        Verified(value)
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl Verified<Message> {
    /// Checks `message` for chain `chain_id`: the signature under the key
    /// it names, and for a proposal, that it carries the block it names.
    pub fn check(chain_id: &ChainId, message: Message) -> Result<Verified<Message>, MessageError> {
        match &message {
            Message::Vote(v) => vote_signature(chain_id, v)?,
            Message::Proposal { proposal, block } => proposal_and_block(chain_id, proposal, block)?,
        }
        Ok(Verified(message))
    }

    /// The state machine's input for this message.
    pub fn into_input(self) -> Input {
        match self.0 {
            Message::Vote(v) => Input::Vote(Verified(v)),
            Message::Proposal { proposal, block } => Input::Proposal {
                proposal: Verified(proposal),
                block,
            },
        }
    }
}

impl Verified<SignedVote> {
    /// Checks one vote (see [`Verified::<Message>::check`]).
    pub fn vote(
        chain_id: &ChainId,
        vote: SignedVote,
    ) -> Result<Verified<SignedVote>, MessageError> {
        vote_signature(chain_id, &vote)?;
        Ok(Verified(vote))
    }
}

impl Verified<SignedProposal> {
    /// Checks a proposal and the block it carries (see
    /// [`Verified::<Message>::check`]).
    pub fn proposal(
        chain_id: &ChainId,
        proposal: SignedProposal,
        block: &Block,
    ) -> Result<Verified<SignedProposal>, MessageError> {
        proposal_and_block(chain_id, &proposal, block)?;
        Ok(Verified(proposal))
    }
}

fn vote_signature(chain_id: &ChainId, v: &SignedVote) -> Result<(), MessageError> {
    v.verify(chain_id)
        .map_err(|_| MessageError::BadSignature(v.vote.validator))
}

fn proposal_and_block(
    chain_id: &ChainId,
    p: &SignedProposal,
    block: &Block,
) -> Result<(), MessageError> {
    p.verify(chain_id)
        .map_err(|_| MessageError::BadSignature(p.proposal.proposer))?;
    let carried = block.hash();
    if carried != p.proposal.block_hash {
        return Err(MessageError::BlockHashMismatch {
            named: p.proposal.block_hash,
            carried,
        });
    }
    Ok(())
}
