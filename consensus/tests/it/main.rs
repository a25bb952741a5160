//! Integration tests of `palisade-consensus`: step-by-step transitions of
//! Algorithm 1 and seeded multi-node simulations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod future;
mod sim;
mod steps;
mod transitions;
