//! Integration tests of the node's storage: ledger and signer state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod ledger;
mod mempool;
mod signer_store;
