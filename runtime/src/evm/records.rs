//! How EVM accounts, code and storage are kept in the state tree.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::state::Overlay;
use crate::{StateStore, StoreError};

use super::EvmAddress;

/// keccak256 of empty code: the code hash of an account without code.
pub const EMPTY_CODE_HASH: [u8; 32] = revm::primitives::KECCAK_EMPTY.0;

/// State keys of the EVM's records.
pub mod keys {
    use super::EvmAddress;

    /// Accounts: this prefix, then the 20-byte address.
    pub const ACCOUNT_PREFIX: &[u8] = b"evm/acct/";
    /// Contract code: this prefix, then its 32-byte keccak256.
    pub const CODE_PREFIX: &[u8] = b"evm/code/";
    /// Storage: this prefix, the 20-byte address, the 32-byte slot.
    pub const SLOT_PREFIX: &[u8] = b"evm/slot/";

    pub fn account(a: &EvmAddress) -> Vec<u8> {
        [ACCOUNT_PREFIX, a.as_slice()].concat()
    }
    pub fn code(hash: &[u8; 32]) -> Vec<u8> {
        [CODE_PREFIX, hash.as_slice()].concat()
    }
    pub fn slot(a: &EvmAddress, slot: &[u8; 32]) -> Vec<u8> {
        [SLOT_PREFIX, a.as_slice(), slot.as_slice()].concat()
    }
}

/// An EVM account: balance, nonce and the keccak256 of its code
/// ([`EMPTY_CODE_HASH`] for none). An account that is empty in the sense of
/// EIP-161 (no balance, nonce or code) has no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EvmAccount {
    pub balance: u128,
    pub nonce: u64,
    pub code_hash: [u8; 32],
}

/// Where the EVM reads state from: a block being executed (its overlay),
/// or the committed state at some root (calls and gas estimates against a
/// past block).
pub trait StateRead {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
}

impl StateRead for Overlay<'_> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(key)
    }
}

/// The committed state under `root` (which the store must still hold).
#[derive(Clone, Copy)]
pub struct AtRoot<'a> {
    pub store: &'a dyn StateStore,
    pub root: palisade_types::Hash,
}

impl std::fmt::Debug for AtRoot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AtRoot({})", self.root)
    }
}

impl StateRead for AtRoot<'_> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        crate::get_at(self.store, self.root, key)
    }
}

fn corrupt(key: &[u8], what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("EVM record {}: {what}", hex::encode(key)))
}

pub(crate) fn read_account(
    st: &impl StateRead,
    a: &EvmAddress,
) -> Result<Option<EvmAccount>, StoreError> {
    let key = keys::account(a);
    st.read(&key)?
        .map(|b| borsh::from_slice(&b).map_err(|e| corrupt(&key, e)))
        .transpose()
}

pub(crate) fn write_account(st: &mut Overlay<'_>, a: &EvmAddress, acct: Option<&EvmAccount>) {
    match acct {
        Some(acct) => st.put(keys::account(a), palisade_types::encode(acct)),
        None => st.delete(keys::account(a)),
    }
}

/// A slot's value: 32 bytes big-endian; zero is stored as no entry.
pub(crate) fn read_slot(
    st: &impl StateRead,
    a: &EvmAddress,
    slot: &[u8; 32],
) -> Result<[u8; 32], StoreError> {
    let key = keys::slot(a, slot);
    match st.read(&key)? {
        None => Ok([0; 32]),
        Some(v) => <[u8; 32]>::try_from(v.as_slice()).map_err(|_| corrupt(&key, "not 32 bytes")),
    }
}

pub(crate) fn read_code(st: &impl StateRead, hash: &[u8; 32]) -> Result<Vec<u8>, StoreError> {
    let key = keys::code(hash);
    st.read(&key)?
        .ok_or_else(|| corrupt(&key, "code of an account is missing"))
}
