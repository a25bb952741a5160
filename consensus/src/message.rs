use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::{
    Block, CommitCertificate, Hash, Height, PublicKey, Round, SignedProposal, SignedVote,
    ValidatorSet,
};

use crate::{Evidence, SignerState, Verified};

/// Tendermint's step within a round. Ordered: propose < prevote < precommit.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum Step {
    Propose = 0,
    Prevote = 1,
    Precommit = 2,
}

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeoutKind {
    /// Algorithm 1, line 57: no acceptable proposal in time.
    Propose,
    /// Line 61: prevotes of +2/3 power seen, but no +2/3 for one value.
    Prevote,
    /// Line 65: precommits of +2/3 power seen, but no decision.
    Precommit,
    /// Re-send our own messages of the current round (lossy links).
    Rebroadcast,
}

/// A timer for (`height`, `round`); it is acted on only if still current when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeout {
    pub kind: TimeoutKind,
    pub height: Height,
    pub round: Round,
}

/// A consensus message as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A signed proposal and the block it names.
    Proposal {
        proposal: SignedProposal,
        block: Arc<Block>,
    },
    Vote(SignedVote),
}

impl Message {
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal { proposal, .. } => proposal.proposal.height,
            Message::Vote(v) => v.vote.height,
        }
    }

    pub fn round(&self) -> Round {
        match self {
            Message::Proposal { proposal, .. } => proposal.proposal.round,
            Message::Vote(v) => v.vote.round,
        }
    }

    /// The validator that signed it.
    pub fn signer(&self) -> PublicKey {
        match self {
            Message::Proposal { proposal, .. } => proposal.proposal.proposer,
            Message::Vote(v) => v.vote.validator,
        }
    }
}

/// Everything the node feeds the state machine.
#[derive(Debug, Clone)]
pub enum Input {
    /// Begin `height` with the validator set that decides it. Heights only
    /// move forward.
    StartHeight {
        height: Height,
        validators: ValidatorSet,
        /// Blocks this node saved for this height through
        /// [`Output::PersistBlock`] before a restart; empty otherwise.
        restored_blocks: Vec<Arc<Block>>,
    },
    /// A proposal received from the network (or our own, looped back),
    /// checked at the edge ([`Verified`]).
    Proposal {
        proposal: Verified<SignedProposal>,
        block: Arc<Block>,
    },
    /// A prevote or precommit received from the network, checked at the
    /// edge.
    Vote(Verified<SignedVote>),
    /// A timer scheduled by [`Output::ScheduleTimeout`] fired.
    Timeout(Timeout),
    /// Answer to [`Output::ValidateBlock`].
    BlockValidated {
        height: Height,
        block_hash: Hash,
        valid: bool,
    },
    /// Answer to [`Output::RequestBlock`]: the block this node proposes.
    ProposeBlock {
        height: Height,
        round: Round,
        block: Arc<Block>,
    },
    /// A block and its commit certificate for the current height, obtained
    /// by catch-up; decides the height if the certificate is valid.
    Commit {
        block: Arc<Block>,
        commit: CommitCertificate,
    },
}

/// Everything the state machine asks of the node. Carry them out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Make `signer_state` durable (fsync), then send `message` to all
    /// peers. Never send first: that is what stops double signing after a crash.
    PersistAndBroadcast {
        signer_state: SignerState,
        message: Message,
    },
    /// Durably keep `block` until `height` is decided, and hand it back in
    /// [`Input::StartHeight`] after a restart: this node is locked on it or
    /// may have to re-propose it.
    PersistBlock { height: Height, block: Arc<Block> },
    /// Re-send a message that was already persisted when first signed.
    Broadcast(Message),
    /// Fire `timeout` as an input after `duration_ms`.
    ScheduleTimeout { timeout: Timeout, duration_ms: u64 },
    /// Build a block for (`height`, `round`) and answer with [`Input::ProposeBlock`].
    RequestBlock {
        height: Height,
        round: Round,
        /// This node's consensus key, to put in the header.
        proposer: PublicKey,
    },
    /// Check the block (execute it) and answer with [`Input::BlockValidated`].
    ValidateBlock { height: Height, block: Arc<Block> },
    /// `block` is decided at `height`; `commit` proves it. Persist it, then
    /// start the next height.
    Decided {
        height: Height,
        round: Round,
        block: Arc<Block>,
        commit: CommitCertificate,
    },
    /// Proof that a validator equivocated.
    Evidence(Evidence),
    /// A message from a later height arrived: this node may be behind and
    /// should fetch the commit for its current height (block sync).
    Behind { current: Height, seen: Height },
}

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("signer {0} is not a validator at this height")]
    UnknownValidator(PublicKey),
    #[error("signature of {0} does not verify")]
    BadSignature(PublicKey),
    #[error("proposal from {got}, but the proposer of this round is {expected}")]
    WrongProposer { got: PublicKey, expected: PublicKey },
    #[error("proposal names block {named} but carries block {carried}")]
    BlockHashMismatch { named: Hash, carried: Hash },
    #[error("proposal at height {proposal} carries a block of height {block}")]
    BlockHeightMismatch { proposal: Height, block: Height },
    #[error("proposal's pol_round {pol} is not below its round {round}")]
    BadPolRound { pol: Round, round: Round },
}
