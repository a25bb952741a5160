//! Integration tests of `palisade-ethtx`: third-party vectors, transactions
//! signed here of every supported type, and each refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod decode;
