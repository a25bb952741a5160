use palisade_types::{SignedProposal, SignedVote};

/// Proof that a validator signed two conflicting messages. Both halves carry
/// valid signatures, so anyone can check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Two different votes of one type for one height and round.
    DuplicateVote {
        first: Box<SignedVote>,
        second: Box<SignedVote>,
    },
    /// Two different proposals for one height and round.
    DuplicateProposal {
        first: Box<SignedProposal>,
        second: Box<SignedProposal>,
    },
}

impl Evidence {
    pub fn offender(&self) -> palisade_types::PublicKey {
        match self {
            Evidence::DuplicateVote { first, .. } => first.vote.validator,
            Evidence::DuplicateProposal { first, .. } => first.proposal.proposer,
        }
    }
}
