//! Integration tests of `palisade-runtime`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod chain;
mod eth_txs;
mod evm;
mod evm_actions;
mod evm_props;
mod files;
mod governance;
mod props;
mod state_vectors;
