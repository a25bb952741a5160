//! Hard upper bounds of the wire format. Decoding refuses anything larger
//! before allocating for it. Chain parameters (genesis, `SetParam`) may set
//! lower limits; they can never raise these.

/// Longest chain id, in bytes.
pub const MAX_CHAIN_ID_LEN: usize = 50;
/// Longest key-value namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 64;
/// Longest key-value key, in bytes.
pub const MAX_KEY_LEN: usize = 256;
/// Largest key-value value, in bytes.
pub const MAX_VALUE_LEN: usize = 64 * 1024;
/// Largest encoded signed transaction, in bytes.
pub const MAX_TX_BYTES: usize = 80 * 1024;
/// Most transactions in one block.
pub const MAX_BLOCK_TXS: usize = 100_000;
/// Largest encoded block, in bytes.
pub const MAX_BLOCK_BYTES: usize = 32 * 1024 * 1024;
/// Most validators in a set (and so signatures in a commit certificate).
pub const MAX_VALIDATORS: usize = 1_000;
/// Largest encoded vote or proposal (without the block), in bytes.
pub const MAX_VOTE_BYTES: usize = 1024;
/// Largest encoded commit certificate, in bytes.
pub const MAX_COMMIT_BYTES: usize = 64 + MAX_VALIDATORS * 96;
/// Largest encoded block header, in bytes.
pub const MAX_HEADER_BYTES: usize = 1024;
