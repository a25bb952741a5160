//! Integration tests of `palisade-network`: wire formats against
//! `docs/p2p.md`, bounded decoding, and real libp2p nodes on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod p2p;
