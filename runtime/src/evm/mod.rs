//! The EVM inside the runtime (issue 28, first part): revm executes calls
//! and contract creations against the same state tree as everything else,
//! so the state root in each header covers EVM accounts, code and storage.
//!
//! revm sees the state through [`db::EvmView`], a read-only adapter over the
//! block's [`Overlay`](crate::state::Overlay); what a transaction changed
//! comes back as revm's state diff, which [`commit::write_diff`] writes into
//! the overlay in a fixed order. Execution knows nothing of RPC or
//! networking, and nothing here depends on a hash map's iteration order.
//!
//! Not yet wired to transactions: the native `evm_call`/`evm_create`
//! actions, raw Ethereum transactions and the account mapping come next.

mod bloom;
mod commit;
mod db;
mod guard;
mod reasons;
mod records;
mod run;

pub use bloom::{LogsBloom, BLOOM_BYTES};
pub use palisade_types::EvmAddress;
pub use reasons::revert_reason;
pub use records::{
    block_hash_record, create_address, evm_address, keccak256, keys, read_account, read_block_hash,
    read_code, read_native, read_roles, read_slot, AtRoot, EvmAccount, Latest, StateRead,
    EMPTY_CODE_HASH,
};
pub use run::{
    call_evm, estimate_gas, precheck, run_evm, EstimateError, EvmCall, EvmEnv, EvmError,
    EvmOutcome, EvmStatus, EvmTarget, SPEC,
};
