//! revm's view of the state: a read-only adapter over the block's overlay.

use revm::bytecode::Bytecode;
use revm::database_interface::DBErrorMarker;
use revm::primitives::{Address, Bytes, StorageKey, StorageValue, B256, KECCAK_EMPTY, U256};
use revm::state::AccountInfo;
use revm::DatabaseRef;

use super::records::{read_account, read_code, read_slot, StateRead};
use crate::StoreError;

impl DBErrorMarker for StoreError {}

/// What revm reads: accounts, code and storage as the block has them so
/// far (committed state under the block's earlier writes), or as a past
/// block left them.
pub(crate) struct EvmView<'r, R: StateRead> {
    pub st: &'r R,
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
        Ok(read_account(self.st, &address.0 .0)?.map(|a| {
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
