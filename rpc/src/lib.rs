//! Palisade's JSON-RPC API: the method trait ([`api::PalisadeApiServer`] /
//! [`api::PalisadeApiClient`], generated from one definition so server and
//! client cannot drift), the JSON shapes ([`types`]), stable error codes
//! ([`errors`]), and a server with bounded requests, batches, connections
//! and subscriptions ([`server`]) that serves HTTP and WebSocket on one
//! port plus `GET /health`, to browser pages only from the origins it is
//! given ([`origin`]).
//!
//! It is not the node: the server answers from a [`backend::NodeBackend`]
//! the node implements, so this crate has no storage, network or consensus
//! of its own. `docs/rpc.md` documents every method.

#![forbid(unsafe_code)]

pub mod api;
pub mod backend;
pub mod batch;
pub mod errors;
pub mod eth;
pub mod explore;
pub mod explorer;
pub mod files;
pub mod front;
pub mod origin;
pub mod server;
mod subscription_id;
pub mod subscriptions;
pub mod types;

pub use api::{PalisadeApiClient, PalisadeApiServer};
pub use backend::{BackendError, NodeBackend, SubmitError};
pub use origin::AllowedOrigins;
pub use server::{start, RpcLimits, RpcServer};
