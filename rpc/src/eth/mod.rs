//! The Ethereum JSON-RPC methods (`eth_`, `net_`, `web3_`) that Ethereum
//! tools use to read the chain's EVM state, call contracts and estimate
//! gas, on the same port as Palisade's own methods. They answer from the
//! same [`NodeBackend`](crate::backend::NodeBackend): state at any kept
//! height through the runtime's EVM, blocks and receipts from the ledger.
//!
//! The Ethereum view of a block holds its EVM transactions only (native
//! `evm_call` and `evm_create` actions); transfers, roles and other native
//! actions are not Ethereum transactions and appear only in Palisade's
//! own methods.

pub mod api;
mod logs;
mod quantity;
mod server;
pub mod types;

pub use api::{EthApiClient, EthApiServer};
pub use server::EthImpl;
