//! Methods a block explorer needs beyond reading blocks one by one: an
//! account's transactions (from the node's account index), an EVM
//! address's account with its roles, and what each validator did over
//! recent heights. The explorer served under `/explorer/` uses them; any
//! client may.

pub mod api;
mod server;
pub mod types;

pub use server::ExploreImpl;
