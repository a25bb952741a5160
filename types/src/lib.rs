//! Palisade's core data types and their canonical byte encoding.
//!
//! This crate is the wire and storage contract of the chain: ids with checked
//! arithmetic (`Height`, `Round`), keys and signatures, transactions, blocks,
//! votes, proposals and commit certificates, how each is encoded (borsh, with
//! bounded and canonical decoding), hashed and signed (domain-separated
//! signing bytes that include the chain id), and the Merkle root used for
//! transaction and receipt lists. `docs/spec.md` describes the same layout
//! byte by byte and its test vectors are checked against this code.
//!
//! It is not the state machine (that is `palisade-runtime`), not consensus
//! (`palisade-consensus`) and does no IO.

#![forbid(unsafe_code)]

pub mod batch;
mod block;
mod bounded;
mod chain_id;
mod codec;
mod commit;
mod crypto;
mod eth_tx;
pub mod file;
mod hash;
mod hex_serde;
mod ids;
pub mod limits;
pub mod merkle;
mod set_change;
mod signing;
pub mod test_vectors;
mod tx;
mod validator;
mod verified;
mod vote;

pub use block::{Block, BlockError, BlockHeader};
pub use bounded::{BoundedBytes, BoundedString, BoundedVec};
pub use chain_id::{ChainId, ChainIdError};
pub use codec::{decode, decode_with_limit, encode, encoded_len, hash_encoding, DecodeError, Wire};
pub use commit::{CommitCertificate, CommitError, CommitSig};
pub use crypto::{
    Address, EvmAddress, KeyError, Keypair, PreparedKey, PublicKey, Signature, SignatureError,
};
pub use eth_tx::{keccak256, EthTransaction};
pub use file::{FileName, FileReaders, MediaType};
pub use hash::{sha256, Hash};
pub use hex_serde::{amount_str, bytes_hex, parse_hex, HexError};
pub use ids::{ArithmeticError, Height, Round, Timestamp};
pub use set_change::{SetChange, SetChangeError};
pub use signing::{signing_bytes, Domain};
pub use tx::{
    Action, Amount, DataKey, DataValue, EvmData, Namespace, Param, Role, SignedTransaction,
    Transaction,
};
pub use validator::{
    is_one_third_of, is_quorum_of, Validator, ValidatorSet, ValidatorSetError, MAX_TOTAL_POWER,
};
pub use vote::{Proposal, SignedProposal, SignedVote, Vote, VoteType};
