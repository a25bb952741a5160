//! Sans-IO Tendermint consensus for Palisade.
//!
//! [`Consensus::handle`] takes one [`Input`] (a proposal or vote whose
//! signature was checked at the edge, a [`Verified`] one; a fired timeout,
//! a block-validation result, the start of a height) and
//! returns the [`Output`]s the node must carry out, in order: messages to
//! persist-then-broadcast, timeouts to schedule, blocks to build or
//! validate, decisions with their commit certificates, evidence. It follows
//! Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon,
//! Milosevic, 2018, arXiv:1807.04938) for a weighted validator set.
//!
//! Inside, it is split the way the paper reads:
//! - [`VoteKeeper`] (`votes.rs`) counts votes by round, type and value and
//!   reports each [`Threshold`] once, when it is crossed;
//! - the multiplexer (`multiplex.rs`) turns what changed (a threshold, a
//!   proposal's block judged, a step or round that moved) into the
//!   [`Event`]s of Algorithm 1 whose conditions now hold;
//! - [`apply`] (`transition.rs`) is the paper's rules as one pure table,
//!   `(state, event) -> transition`, one arm per `upon` rule, naming its
//!   [`Line`];
//! - [`Consensus`] (`driver.rs`) stores what arrives, runs events through
//!   the table, carries out the [`Action`]s and keeps a trace of the lines
//!   that fired ([`Consensus::trace`]).
//!
//! What it is not: it does no IO, reads no clock, draws no randomness and
//! runs no async runtime. The node (or the deterministic simulator in
//! `sim`, built with the `sim` feature) owns the network, the timers and the disk. Given the same inputs
//! it produces the same outputs, which is what makes seeded simulation and
//! replay possible.
//!
//! Safety across crashes rests on [`SignerState`]: every signed message comes
//! out as [`Output::PersistAndBroadcast`] carrying the signer state that must
//! be durable before the message leaves the node, and a consensus instance
//! built from a persisted state never signs a message that conflicts with
//! one it signed before.

#![forbid(unsafe_code)]

// The simulator and the Byzantine mocks are test support: a node's build
// leaves them out (feature `sim`, which this crate's tests and the soak
// script turn on).

mod config;
mod driver;
mod evidence;
mod future;
mod message;
#[cfg(feature = "sim")]
pub mod mocks;
mod multiplex;
mod proposer;
mod signer;
#[cfg(feature = "sim")]
pub mod sim;
mod transition;
mod verified;
mod votes;

pub use config::{Config, TimeoutConfig};
pub use driver::{Consensus, Fired, ROUND_WINDOW};
pub use evidence::Evidence;
pub use future::{MAX_BUFFERED_PROPOSAL_BYTES, MAX_BUFFERED_VOTES};
pub use message::{Input, Message, MessageError, Output, Step, Timeout, TimeoutKind};
pub use proposer::proposer;
pub use signer::{SignedMessage, SignerState};
pub use transition::{apply, Action, Event, Line, RoundState, StepState, Transition};
pub use verified::Verified;
pub use votes::{Counted, Threshold, VoteKeeper, VoteOutcome};
