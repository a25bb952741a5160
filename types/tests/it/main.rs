//! Integration tests of `palisade-types`: the spec document's vectors and
//! property tests of the encoding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod proptests;
mod spec_vectors;
mod strategies;
