//! revm's view of the state: a read-only adapter over the block's overlay.

use revm::bytecode::Bytecode;
use revm::database_interface::DBErrorMarker;
use revm::primitives::{Address, Bytes, StorageKey, StorageValue, B256, KECCAK_EMPTY, U256};
use revm::state::AccountInfo;
use revm::DatabaseRef;

use std::cell::RefCell;
use std::collections::BTreeMap;

use palisade_types::{Address as NativeAddress, EvmAddress};

use super::records::{
    read_account, read_block_hash, read_code, read_native, read_native_account, read_slot,
    EvmAccount, StateRead,
};
use crate::StoreError;

impl DBErrorMarker for StoreError {}

/// An account as revm loaded it, before the transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadedAccount {
    /// Its `evm/acct/` record.
    pub record: Option<EvmAccount>,
    /// For the EVM address of a native account: that account and the
    /// balance it had (the one revm saw).
    pub native: Option<(NativeAddress, u128)>,
}

impl LoadedAccount {
    /// The balance revm saw.
    pub fn balance(&self) -> u128 {
        match self.native {
            Some((_, b)) => b,
            None => self.record.map_or(0, |r| r.balance),
        }
    }
}

/// The accounts revm loaded: every account it touches it loads first, so
/// writing the diff needs no second read of them.
pub(crate) type Loaded = BTreeMap<EvmAddress, LoadedAccount>;

/// Reads the account at `a` as revm sees it: a native account's balance
/// with its EVM nonce, or an EVM account's record.
pub(crate) fn load_account(
    st: &impl StateRead,
    a: &EvmAddress,
) -> Result<LoadedAccount, StoreError> {
    let record = read_account(st, a)?;
    let native = match read_native(st, a)? {
        Some(n) => Some((n, read_native_account(st, &n)?.balance)),
        None => None,
    };
    Ok(LoadedAccount { record, native })
}

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
        let a = EvmAddress(address.0 .0);
        let loaded = load_account(self.st, &a)?;
        self.loaded.borrow_mut().insert(a, loaded);
        if loaded.record.is_none() && loaded.native.is_none() {
            return Ok(None);
        }
        let (nonce, code_hash) = loaded
            .record
            .map_or((0, KECCAK_EMPTY), |r| (r.nonce, B256::from(r.code_hash)));
        Ok(Some(
            AccountInfo {
                balance: U256::from(loaded.balance()),
                nonce,
                ..AccountInfo::default()
            }
            .with_code_hash(code_hash),
        ))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StoreError> {
        if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
            return Ok(Bytecode::default());
        }
        if let Some(code) = analysed::get(&code_hash) {
            return Ok(code);
        }
        let bytes = read_code(self.st, &code_hash.0)?;
        let code = Bytecode::new_raw_checked(Bytes::from(bytes))
            .map_err(|e| StoreError::Corrupt(format!("EVM code {code_hash}: {e}")))?;
        analysed::put(code_hash, &code);
        Ok(code)
    }

    fn storage_ref(&self, address: Address, index: StorageKey) -> Result<StorageValue, StoreError> {
        let v = read_slot(
            self.st,
            &EvmAddress(address.0 .0),
            &index.to_be_bytes::<32>(),
        )?;
        Ok(U256::from_be_bytes(v))
    }

    /// The last 256 block hashes are in the state (revm asks only for
    /// those: older and future heights are zero without a read).
    fn block_hash_ref(&self, number: u64) -> Result<B256, StoreError> {
        Ok(read_block_hash(self.st, number)?.map_or(B256::ZERO, B256::from))
    }
}

/// Contracts' code as revm analysed it (jump destinations), by code hash.
/// Code is addressed by its keccak256, so an entry can never be stale; a
/// fresh EVM runs each transaction, and without this every call analysed
/// the same contract again.
mod analysed {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use revm::bytecode::Bytecode;
    use revm::primitives::B256;

    /// Bytes of code kept (about 32 contracts of the 24 KiB maximum, or
    /// hundreds of typical ones); when full, it starts again empty.
    const MAX_BYTES: usize = 1 << 20;

    #[derive(Default)]
    struct Cache {
        codes: HashMap<B256, Bytecode>,
        bytes: usize,
    }

    fn cache() -> &'static Mutex<Cache> {
        static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
        CACHE.get_or_init(Mutex::default)
    }

    pub fn get(hash: &B256) -> Option<Bytecode> {
        cache().lock().ok()?.codes.get(hash).cloned()
    }

    pub fn put(hash: B256, code: &Bytecode) {
        let Ok(mut c) = cache().lock() else {
            return;
        };
        let len = code.len();
        if c.bytes + len > MAX_BYTES {
            c.codes.clear();
            c.bytes = 0;
        }
        if c.codes.insert(hash, code.clone()).is_none() {
            c.bytes += len;
        }
    }
}
