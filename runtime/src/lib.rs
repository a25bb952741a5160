//! Palisade's deterministic transaction state machine.
//!
//! Given the committed state (behind the small [`StateStore`] trait) and a
//! block's transactions, [`Runtime::execute_block`] returns the receipts,
//! every write, the post-state root and the next validator set; the node
//! writes them in one batch. [`Runtime::check_tx`] runs the same checks for
//! mempool admission. State lives in accounts (balance, nonce, roles), a
//! namespaced key-value store, the validator set and chain parameters, all
//! under one sparse Merkle tree ([`smt`]) whose root goes in each block
//! header and whose proofs a client checks with [`smt::verify`].
//!
//! Rules: a transaction must be for this chain, within size limits, signed
//! by an account that holds a role, with exactly the account's next nonce;
//! otherwise the block carrying it is invalid. Each action then needs its
//! role (transfer, burn, put, delete: member; mint: minter; roles and
//! parameters: admin; validator changes: admin, or a validator operator for
//! the validators it added; the whole pending schedule of validator changes
//! is checked with each new one, see `docs/spec.md` section 4.1). A
//! transaction whose action fails gets a receipt with a stable error code
//! and changes nothing but its nonce.
//!
//! It is not an async runtime and does no IO: same inputs, same outputs.

#![forbid(unsafe_code)]

mod applied;
mod error;
mod eth_tx;
pub mod evm;
mod execute;
pub mod files;
mod genesis_state;
pub mod page;
mod params;
mod receipt;
pub mod smt;
pub mod state;
mod store;
pub mod test_vectors;
mod tree_hash;

pub use applied::{
    evm_env, max_tx_gas, BlockContext, NonceRule, MAX_NONCE_GAP, MAX_RECEIPT_OUTPUT,
};
pub use error::{BlockError, StoreError, TxError};
pub use eth_tx::EthTxInput;
pub use execute::{
    check_block_bounds, ran_at, to_set, BlockOutcome, Runtime, Signatures, MAX_VALIDATOR_POWER,
};
pub use genesis_state::{initial_root, initial_state, InitialState};
pub use params::{
    ChainParams, DEFAULT_EVM_CHAIN_ID, MAX_MAX_BLOCK_GAS, MAX_TX_GAS, MAX_VALIDATOR_UPDATE_DELAY,
    MIN_MAX_BLOCK_BYTES, MIN_MAX_BLOCK_GAS, MIN_MAX_TX_BYTES,
};
pub use receipt::{receipts_root, Event, EvmLog, EvmReceipt, Receipt};
pub use state::{Account, ValidatorChange, ValidatorInfo};
pub use store::{commit_writes, get_at, get_with_proof, MemStore, StateChanges, StateStore};
