//! Palisade's JSON-RPC API: the method trait, JSON shapes, server limits and
//! a typed client (issue 6).

#![forbid(unsafe_code)]
