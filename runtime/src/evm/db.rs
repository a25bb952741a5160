//! revm's view of the state: a read-only adapter over the block's overlay.

use revm::bytecode::Bytecode;
use revm::database_interface::DBErrorMarker;
use revm::primitives::{Address, Bytes, StorageKey, StorageValue, B256, KECCAK_EMPTY, U256};
use revm::state::AccountInfo;
use revm::DatabaseRef;

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::records::{read_account, read_code, read_slot, EvmAccount, StateRead};
use super::EvmAddress;
use crate::StoreError;

impl DBErrorMarker for StoreError {}

/// The account records revm loaded, as they were before the transaction:
/// every account it touches it loads first, so writing the diff needs no
/// second read of them.
pub(crate) type Loaded = BTreeMap<EvmAddress, Option<EvmAccount>>;

/// What revm reads: accounts, code and storage as the block has them so
/// far (committed state under the block's earlier writes), or as a past
/// block left them.
pub(crate) struct EvmView<'r, R: StateRead> {
    pub st: &'r R,
    pub loaded: RefCell<Loaded>,
}

impl<'r, R: StateRead> EvmView<'r, R> {
    pub fn new(st: &'r R) -> Self {
        EvmView {
            st,
            loaded: RefCell::new(Loaded::new()),
        }
    }
}

impl<R: StateRead> std::fmt::Debug for EvmView<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EvmView")
    }
}

impl<R: StateRead> DatabaseRef for EvmView<'_, R> {
    type Error = StoreError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, StoreError> {
        // `with_code_hash` leaves the code out (the default holds empty
        // code), so revm loads it by hash when a call needs it.
        let record = read_account(self.st, &address.0 .0)?;
        self.loaded.borrow_mut().insert(address.0 .0, record);
        Ok(record.map(|a| {
            AccountInfo {
                balance: U256::from(a.balance),
                nonce: a.nonce,
                ..AccountInfo::default()
            }
            .with_code_hash(B256::from(a.code_hash))
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StoreError> {
        if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
            return Ok(Bytecode::default());
        }
        let bytes = read_code(self.st, &code_hash.0)?;
        Bytecode::new_raw_checked(Bytes::from(bytes))
            .map_err(|e| StoreError::Corrupt(format!("EVM code {code_hash}: {e}")))
    }

    fn storage_ref(&self, address: Address, index: StorageKey) -> Result<StorageValue, StoreError> {
        let v = read_slot(self.st, &address.0 .0, &index.to_be_bytes::<32>())?;
        Ok(U256::from_be_bytes(v))
    }

    /// Block hashes are not part of the state yet: BLOCKHASH gives zero, as
    /// Ethereum does for a height out of its window. Deterministic either way.
    fn block_hash_ref(&self, _number: u64) -> Result<B256, StoreError> {
        Ok(B256::ZERO)
    }
}
