//! Sans-IO Tendermint consensus for Palisade.
//!
//! Being built under issue 3; this crate is a pure library: it will take
//! decoded messages and fired timeouts and return what to send, persist and
//! schedule. No IO, clock, randomness or async runtime lives here.

#![forbid(unsafe_code)]
