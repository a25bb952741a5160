//! Palisade's deterministic transaction state machine (issue 4): accounts,
//! roles, key-value data, validator-set changes, receipts and state root.
//!
//! It is not an async runtime; it does no IO of its own.

#![forbid(unsafe_code)]
