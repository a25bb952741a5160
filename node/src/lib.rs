//! The Palisade node: everything with IO around the pure crates. Today it
//! holds the RocksDB ledger and the durable signer state; the network,
//! mempool, consensus driver, block sync, RPC wiring and CLI arrive with
//! issues 5 and 6.
//!
//! Not here: consensus rules (`palisade-consensus`), transaction rules
//! (`palisade-runtime`), wire formats (`palisade-types`).

#![forbid(unsafe_code)]

pub mod app;
pub mod ledger;
pub mod mempool;
pub mod signer_store;
