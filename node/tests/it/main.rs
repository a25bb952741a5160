//! Integration tests of the node: storage, signer state, mempool, app,
//! consensus driver and the p2p layer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod background;
mod config_layers;
mod driver;
mod genesis_cmd;
mod health;
mod home;
mod ledger;
mod mempool;
mod p2p;
mod signer_store;
mod sync;
