use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::limits::MAX_VOTE_BYTES;
use crate::{
    signing_bytes, ChainId, Domain, Hash, Height, Keypair, PublicKey, Round, Signature,
    SignatureError, Wire,
};

/// The two voting steps of Tendermint.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum VoteType {
    Prevote = 0,
    Precommit = 1,
}

/// A prevote or precommit for a block hash, or for nil (`block_hash: None`).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Vote {
    pub vote_type: VoteType,
    pub height: Height,
    pub round: Round,
    pub block_hash: Option<Hash>,
    pub validator: PublicKey,
}

/// A vote with its validator's signature.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct SignedVote {
    pub vote: Vote,
    pub signature: Signature,
}

impl Vote {
    /// `signing_bytes(Domain::Vote, chain_id, vote)`.
    pub fn signing_bytes(&self, chain_id: &ChainId) -> Vec<u8> {
        signing_bytes(Domain::Vote, chain_id, self)
    }

    pub fn sign(self, chain_id: &ChainId, key: &Keypair) -> SignedVote {
        let signature = key.sign(&self.signing_bytes(chain_id));
        SignedVote {
            vote: self,
            signature,
        }
    }
}

impl SignedVote {
    pub fn verify(&self, chain_id: &ChainId) -> Result<(), SignatureError> {
        self.vote
            .validator
            .verify(&self.vote.signing_bytes(chain_id), &self.signature)
    }
}

/// A proposer's signed claim that `block_hash` is its proposal for
/// (`height`, `round`); `pol_round` is Tendermint's validRound (`None` = -1).
/// The block itself travels beside it.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub block_hash: Hash,
    pub pol_round: Option<Round>,
    pub proposer: PublicKey,
}

/// A proposal with its proposer's signature.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct SignedProposal {
    pub proposal: Proposal,
    pub signature: Signature,
}

impl Proposal {
    /// `signing_bytes(Domain::Proposal, chain_id, proposal)`.
    pub fn signing_bytes(&self, chain_id: &ChainId) -> Vec<u8> {
        signing_bytes(Domain::Proposal, chain_id, self)
    }

    pub fn sign(self, chain_id: &ChainId, key: &Keypair) -> SignedProposal {
        let signature = key.sign(&self.signing_bytes(chain_id));
        SignedProposal {
            proposal: self,
            signature,
        }
    }
}

impl SignedProposal {
    pub fn verify(&self, chain_id: &ChainId) -> Result<(), SignatureError> {
        self.proposal
            .proposer
            .verify(&self.proposal.signing_bytes(chain_id), &self.signature)
    }
}

impl Wire for Vote {
    const NAME: &'static str = "vote";
    const MAX_ENCODED_LEN: usize = MAX_VOTE_BYTES;
}
impl Wire for SignedVote {
    const NAME: &'static str = "signed vote";
    const MAX_ENCODED_LEN: usize = MAX_VOTE_BYTES;
}
impl Wire for Proposal {
    const NAME: &'static str = "proposal";
    const MAX_ENCODED_LEN: usize = MAX_VOTE_BYTES;
}
impl Wire for SignedProposal {
    const NAME: &'static str = "signed proposal";
    const MAX_ENCODED_LEN: usize = MAX_VOTE_BYTES;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_and_proposal_signatures_are_domain_separated() {
        let chain = ChainId::new("c").unwrap();
        let key = Keypair::from_seed([5u8; 32]);
        let vote = Vote {
            vote_type: VoteType::Prevote,
            height: Height(1),
            round: Round(0),
            block_hash: Some(Hash([1; 32])),
            validator: key.public_key(),
        }
        .sign(&chain, &key);
        assert!(vote.verify(&chain).is_ok());
        assert!(vote.verify(&ChainId::new("d").unwrap()).is_err());

        let mut as_precommit = vote.clone();
        as_precommit.vote.vote_type = VoteType::Precommit;
        assert!(as_precommit.verify(&chain).is_err());

        let mut nil = vote.clone();
        nil.vote.block_hash = None;
        assert!(nil.verify(&chain).is_err());

        let proposal = Proposal {
            height: Height(1),
            round: Round(0),
            block_hash: Hash([1; 32]),
            pol_round: None,
            proposer: key.public_key(),
        }
        .sign(&chain, &key);
        assert!(proposal.verify(&chain).is_ok());
        assert!(key
            .public_key()
            .verify(&vote.vote.signing_bytes(&chain), &proposal.signature)
            .is_err());
    }
}
