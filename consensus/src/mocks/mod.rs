//! Byzantine validator behaviours for the simulator.
//!
//! A mock sits between a validator's (honest) state machine and the network:
//! it rewrites what the validator sends and may react to what it receives.
//! Each mock holds the validator's real key, so what it sends is correctly
//! signed unless the mock's point is to send bad signatures.

mod absurd_rounds;
mod bad_signature;
mod equivocator;
mod invalid_block;
mod silent;

use palisade_types::{ChainId, Keypair};

use crate::Message;

pub use absurd_rounds::AbsurdRounds;
pub use bad_signature::BadSignatures;
pub use equivocator::Equivocator;
pub use invalid_block::InvalidBlocks;
pub use silent::Silent;

/// Where a mock sends a message.
#[derive(Debug, Clone)]
pub enum Send {
    /// To every other node.
    All(Message),
    /// To one node, by index.
    To(usize, Message),
}

/// What a mock knows about its place in the network.
#[derive(Debug)]
pub struct MockCtx<'a> {
    pub chain_id: &'a ChainId,
    pub key: &'a Keypair,
    /// This node's index.
    pub me: usize,
    /// Number of nodes.
    pub nodes: usize,
}

/// A Byzantine behaviour.
pub trait Mock: std::fmt::Debug {
    /// Replaces one outgoing message of the honest state machine.
    fn outgoing(&mut self, ctx: &MockCtx<'_>, msg: Message) -> Vec<Send>;

    /// Extra messages sent in reaction to `msg` received from node `from`.
    fn incoming(&mut self, _ctx: &MockCtx<'_>, _from: usize, _msg: &Message) -> Vec<Send> {
        Vec::new()
    }
}

/// The mocks by name, for scenario tables and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Behavior {
    Silent,
    BadSignatures,
    AbsurdRounds,
    Equivocator,
    InvalidBlocks,
}

impl Behavior {
    pub const ALL: [Behavior; 5] = [
        Behavior::Silent,
        Behavior::BadSignatures,
        Behavior::AbsurdRounds,
        Behavior::Equivocator,
        Behavior::InvalidBlocks,
    ];

    pub fn build(self) -> Box<dyn Mock> {
        match self {
            Behavior::Silent => Box::new(Silent),
            Behavior::BadSignatures => Box::new(BadSignatures),
            Behavior::AbsurdRounds => Box::new(AbsurdRounds),
            Behavior::Equivocator => Box::new(Equivocator),
            Behavior::InvalidBlocks => Box::new(InvalidBlocks),
        }
    }
}
