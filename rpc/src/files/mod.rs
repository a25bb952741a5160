//! Shared files over JSON-RPC: the chain's records, who holds a file,
//! starting and following a download, and (for the node's own machine)
//! pins and garbage collection. The bytes themselves move over plain HTTP
//! on the same port ([`http`]): `GET /files/<root>` to read a file this
//! node holds, `PUT /files/<root>` for a publisher to hand it one, both
//! with a read permit.

pub mod api;
mod backend;
pub mod http;
mod server;
pub mod types;

pub use backend::{FileCallError, FilesBackend};
pub use server::{ClientAddr, FilesImpl};
