//! How EVM accounts, code and storage are kept in the state tree.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::{Address, EvmAddress};

use crate::state::{Account, Overlay};
use crate::{StateStore, StoreError};

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
    /// The native account behind an EVM address: this prefix, the 20-byte
    /// address; the value is the 32-byte native address.
    pub const NATIVE_PREFIX: &[u8] = b"evm/native/";
    /// Roles of an EVM address that is no native account's: this prefix,
    /// the 20-byte address; the value is the role bit set (one byte).
    pub const ROLES_PREFIX: &[u8] = b"evm/roles/";
    /// The hashes of the last 256 blocks (BLOCKHASH): this prefix, the
    /// height modulo 256 (one byte); the value is the 32-byte block hash
    /// and the height (8 bytes, big-endian).
    pub const BLOCK_HASH_PREFIX: &[u8] = b"evm/bh/";

    pub fn account(a: &EvmAddress) -> Vec<u8> {
        [ACCOUNT_PREFIX, a.as_bytes()].concat()
    }
    pub fn code(hash: &[u8; 32]) -> Vec<u8> {
        [CODE_PREFIX, hash.as_slice()].concat()
    }
    pub fn slot(a: &EvmAddress, slot: &[u8; 32]) -> Vec<u8> {
        [SLOT_PREFIX, a.as_bytes(), slot.as_slice()].concat()
    }
    pub fn native(a: &EvmAddress) -> Vec<u8> {
        [NATIVE_PREFIX, a.as_bytes()].concat()
    }
    pub fn roles(a: &EvmAddress) -> Vec<u8> {
        [ROLES_PREFIX, a.as_bytes()].concat()
    }
    pub fn block_hash(height: u64) -> Vec<u8> {
        [BLOCK_HASH_PREFIX, &[(height % 256) as u8]].concat()
    }
}

/// The hash of block `height` if it is among the last 256 recorded.
pub fn read_block_hash(st: &impl StateRead, height: u64) -> Result<Option<[u8; 32]>, StoreError> {
    let Some(v) = st.read(&keys::block_hash(height))? else {
        return Ok(None);
    };
    let (hash, at) = v
        .split_first_chunk::<32>()
        .ok_or_else(|| StoreError::Corrupt("block hash record: not 40 bytes".into()))?;
    let at = <[u8; 8]>::try_from(at)
        .map_err(|_| StoreError::Corrupt("block hash record: not 40 bytes".into()))?;
    Ok((u64::from_be_bytes(at) == height).then_some(*hash))
}

/// The record [`read_block_hash`] reads.
pub fn block_hash_record(hash: &[u8; 32], height: u64) -> Vec<u8> {
    [hash.as_slice(), &height.to_be_bytes()].concat()
}

/// The EVM address of a native account: the last 20 bytes of the keccak256
/// of its 32-byte address (its ed25519 public key), as an Ethereum address
/// is of a secp256k1 key.
///
/// Remembered per account: every block lists both parties of each transfer
/// by this address (the node's account index), and the hash cost a busy
/// node about 1.4% of its CPU, on the path from a decision to the next
/// height. The memo is bounded and simply emptied when full.
pub fn evm_address(a: &Address) -> EvmAddress {
    static MEMO: OnceLock<Mutex<HashMap<Address, EvmAddress>>> = OnceLock::new();
    const MEMO_MAX: usize = 1 << 16;
    let memo = MEMO.get_or_init(Default::default);
    if let Some(e) = memo.lock().ok().and_then(|m| m.get(a).copied()) {
        return e;
    }
    let h = keccak256(a.as_bytes());
    let mut out = [0u8; 20];
    out.copy_from_slice(&h[12..]);
    let e = EvmAddress(out);
    // A poisoned memo is only skipped: it holds nothing but hashes.
    if let Ok(mut m) = memo.lock() {
        if m.len() >= MEMO_MAX {
            m.clear();
        }
        m.insert(*a, e);
    }
    e
}

/// Keccak-256 (Ethereum's hash, not SHA3-256).
pub fn keccak256(bytes: &[u8]) -> [u8; 32] {
    revm::primitives::keccak256(bytes).0
}

/// The address of the contract `sender` creates with its EVM nonce
/// `nonce` (CREATE: `keccak256(rlp([sender, nonce]))[12..]`).
pub fn create_address(sender: &EvmAddress, nonce: u64) -> EvmAddress {
    EvmAddress(revm::primitives::Address::from(sender.0).create(nonce).0 .0)
}

/// An EVM account: balance, nonce and the keccak256 of its code
/// ([`EMPTY_CODE_HASH`] for none). An account that is empty in the sense of
/// EIP-161 (no balance, nonce or code) has no record. For the EVM address
/// of a native account the balance is kept in the native record (`acct/`),
/// this record keeps only the EVM nonce, and its balance field is zero.
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

/// The store's latest committed state (what the mempool checks against).
#[derive(Clone, Copy)]
pub struct Latest<'a>(pub &'a dyn StateStore);

impl std::fmt::Debug for Latest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Latest")
    }
}

impl StateRead for Latest<'_> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key)
    }
}

fn corrupt(key: &[u8], what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("EVM record {}: {what}", hex::encode(key)))
}

pub fn read_account(st: &impl StateRead, a: &EvmAddress) -> Result<Option<EvmAccount>, StoreError> {
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

/// The native account whose EVM address `a` is, if any.
pub fn read_native(st: &impl StateRead, a: &EvmAddress) -> Result<Option<Address>, StoreError> {
    let key = keys::native(a);
    st.read(&key)?
        .map(|b| {
            <[u8; 32]>::try_from(b.as_slice())
                .map(Address)
                .map_err(|_| corrupt(&key, "not 32 bytes"))
        })
        .transpose()
}

pub(crate) fn read_native_account(st: &impl StateRead, a: &Address) -> Result<Account, StoreError> {
    let key = crate::state::keys::account(a);
    match st.read(&key)? {
        Some(b) => borsh::from_slice(&b).map_err(|e| corrupt(&key, e)),
        None => Err(corrupt(&key, "native account of an EVM address is missing")),
    }
}

/// The role bit set of an EVM address: its native account's roles, or
/// those granted to the address itself.
pub fn read_roles(st: &impl StateRead, a: &EvmAddress) -> Result<u8, StoreError> {
    if let Some(native) = read_native(st, a)? {
        return Ok(read_native_account(st, &native)?.roles);
    }
    let key = keys::roles(a);
    match st.read(&key)? {
        None => Ok(0),
        Some(b) => match b.as_slice() {
            [r] => Ok(*r),
            _ => Err(corrupt(&key, "not one byte")),
        },
    }
}

/// A slot's value: 32 bytes big-endian; zero is stored as no entry.
pub fn read_slot(
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

pub fn read_code(st: &impl StateRead, hash: &[u8; 32]) -> Result<Vec<u8>, StoreError> {
    let key = keys::code(hash);
    st.read(&key)?
        .ok_or_else(|| corrupt(&key, "code of an account is missing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The remembered address is the hashed one, on the first call and
    /// after it.
    #[test]
    fn a_remembered_evm_address_is_the_hashed_one() {
        for b in [0u8, 7, 255] {
            let a = Address([b; 32]);
            let hashed = EvmAddress(keccak256(a.as_bytes())[12..].try_into().expect("20 bytes"));
            assert_eq!(evm_address(&a), hashed);
            assert_eq!(evm_address(&a), hashed);
        }
    }
}
