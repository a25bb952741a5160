//! The Palisade node: everything with IO around the pure crates — the
//! mempool, the consensus driver, block sync, shared files, metrics,
//! config and the command line — wired to the ledger (`palisade-ledger`),
//! the network (`palisade-network`) and state sync (`palisade-statesync`).
//!
//! Not here: consensus rules (`palisade-consensus`), transaction rules
//! (`palisade-runtime`), wire formats (`palisade-types`).

#![forbid(unsafe_code)]

pub mod admission;
pub mod app;
pub mod background;
pub mod bench;
pub mod bench_erc20;
pub mod cli;
pub mod client;
pub mod config;
pub mod context;
mod deadline;
pub mod dev_eth;
pub mod driver;
pub mod eth_txs;
pub mod file_cmd;
pub mod files;
pub mod genesis_cmd;
pub mod health;
pub mod home;
pub mod intake;
pub mod late_precommits;
pub mod logging;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod proposal;
pub mod rpc_backend;
pub mod snapshot_cmd;
pub mod snapshot_maker;
pub mod supervisor;
pub mod sync;
pub mod verified;
