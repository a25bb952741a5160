//! Integration tests of `palisade-runtime`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod chain;
mod evm;
mod evm_actions;
mod governance;
mod props;
mod state_vectors;
