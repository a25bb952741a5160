//! Writing what an EVM transaction changed into the state.

use revm::primitives::KECCAK_EMPTY;
use revm::state::EvmState;

use palisade_types::{Address, EvmAddress};

use super::db::{load_account, Loaded};
use super::records::{keys, read_native_account, write_account, EvmAccount, EMPTY_CODE_HASH};
use crate::state::{Account, Overlay};
use crate::StoreError;

/// One account's new state, checked and ready to write.
struct Change {
    address: EvmAddress,
    /// `None` removes the `evm/acct/` record.
    account: Option<EvmAccount>,
    /// The native account behind the address, with its new balance: it
    /// is written back, never removed (it holds roles and a nonce of its
    /// own).
    native: Option<(Address, Account)>,
    /// New code to store under its hash.
    code: Option<([u8; 32], Vec<u8>)>,
    /// Changed slots, in slot order: `None` clears one.
    slots: Vec<([u8; 32], Option<[u8; 32]>)>,
}

/// Writes revm's state diff into `st`: accounts by address, then their
/// changed slots by slot (revm's maps iterate in a random order), code
/// under its hash, and the total supply moved by the net change of
/// balances (a contract that destroys itself in its creating transaction,
/// sending its balance to itself, burns it).
///
/// Everything is checked before anything is written, so an error leaves
/// `st` as it was.
/// `loaded`: the records revm read before the transaction (an account
/// missing from it, which revm never leaves out, is read again).
///
/// The EVM address of a native account keeps its balance in the native
/// record: that balance is written there, and only a non-zero EVM nonce
/// in `evm/acct/`.
pub(crate) fn write_diff(
    st: &mut Overlay<'_>,
    state: EvmState,
    loaded: &Loaded,
) -> Result<(), StoreError> {
    let mut touched: Vec<_> = state.into_iter().filter(|(_, a)| a.is_touched()).collect();
    touched.sort_by_key(|(addr, _)| *addr);
    let (mut before, mut after) = (0u128, 0u128);
    let mut changes = Vec::with_capacity(touched.len());
    for (addr, acct) in touched {
        let address = EvmAddress(addr.0 .0);
        let loaded_acct = match loaded.get(&address) {
            Some(l) => *l,
            None => load_account(&*st, &address)?,
        };
        before = before
            .checked_add(loaded_acct.balance())
            .ok_or_else(overflow)?;
        let change = match loaded_acct.native {
            Some((native, _)) => native_change(st, address, native, &acct)?,
            // EIP-6780: only an account created in this transaction can be
            // destroyed, so it has no stored slots to remove. EIP-161: a
            // touched account left empty is removed.
            None if acct.is_selfdestructed() || acct.is_empty() => Change::removed(address),
            None => contract_change(address, &acct, loaded_acct.record)?,
        };
        after = after.checked_add(change.balance()).ok_or_else(overflow)?;
        changes.push(change);
    }
    let supply = supply_after(st, before, after)?;
    for c in changes {
        c.write(st);
    }
    if let Some(s) = supply {
        st.set_supply(s);
    }
    Ok(())
}

fn overflow() -> StoreError {
    StoreError::Corrupt("EVM balances overflow u128".into())
}

/// The change at a native account's address. No code can live there (its
/// creation would collide with a keccak preimage), so it is never created
/// or destroyed: only its balance and nonce move.
fn native_change(
    st: &Overlay<'_>,
    address: EvmAddress,
    native: Address,
    acct: &revm::state::Account,
) -> Result<Change, StoreError> {
    if acct.info.code_hash != KECCAK_EMPTY && acct.info.code_hash.0 != [0; 32] {
        return Err(StoreError::Corrupt(format!(
            "EVM code at native account address {address}"
        )));
    }
    let balance = u128::try_from(acct.info.balance).map_err(|_| overflow())?;
    let mut record = read_native_account(st, &native)?;
    record.balance = balance;
    let nonce = acct.info.nonce;
    Ok(Change {
        address,
        account: (nonce != 0).then_some(EvmAccount {
            balance: 0,
            nonce,
            code_hash: EMPTY_CODE_HASH,
        }),
        native: Some((native, record)),
        code: None,
        slots: Vec::new(),
    })
}

/// The change of a contract or externally owned EVM account that stays.
fn contract_change(
    address: EvmAddress,
    acct: &revm::state::Account,
    old: Option<EvmAccount>,
) -> Result<Change, StoreError> {
    let balance = u128::try_from(acct.info.balance).map_err(|_| overflow())?;
    let code_hash = acct.info.code_hash;
    // Code is stored whenever an account's code hash is new to it (today
    // only by creation), so no record names code that is not there.
    let new_code = code_hash != KECCAK_EMPTY
        && (acct.is_created() || old.is_none_or(|o| o.code_hash != code_hash.0));
    let code = match (&acct.info.code, new_code) {
        (Some(code), true) => Some((code_hash.0, code.original_bytes().to_vec())),
        (None, true) => {
            return Err(StoreError::Corrupt(format!(
                "EVM account {address} has new code {code_hash} but revm gave none"
            )))
        }
        (_, false) => None,
    };
    let mut slots: Vec<_> = acct
        .changed_storage_slots()
        .map(|(k, s)| {
            let value = (!s.present_value.is_zero()).then(|| s.present_value.to_be_bytes::<32>());
            (k.to_be_bytes::<32>(), value)
        })
        .collect();
    slots.sort_by_key(|(k, _)| *k);
    Ok(Change {
        address,
        account: Some(EvmAccount {
            balance,
            nonce: acct.info.nonce,
            code_hash: code_hash.0,
        }),
        native: None,
        code,
        slots,
    })
}

/// The supply after EVM balances moved from `before` to `after` in all
/// (`None`: unchanged). The EVM moves value and may burn it, never creates
/// it: `after` is at most `before`, and the supply covers `before`.
fn supply_after(st: &Overlay<'_>, before: u128, after: u128) -> Result<Option<u128>, StoreError> {
    Ok(match after.cmp(&before) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Less => Some(
            st.supply()?
                .checked_sub(before - after)
                .ok_or_else(|| StoreError::Corrupt("supply does not cover EVM balances".into()))?,
        ),
        std::cmp::Ordering::Greater => Some(
            st.supply()?
                .checked_add(after - before)
                .ok_or_else(overflow)?,
        ),
    })
}

impl Change {
    fn removed(address: EvmAddress) -> Change {
        Change {
            address,
            account: None,
            native: None,
            code: None,
            slots: Vec::new(),
        }
    }

    /// The account's balance after the change, wherever it is kept.
    fn balance(&self) -> u128 {
        match (&self.native, &self.account) {
            (Some((_, record)), _) => record.balance,
            (None, Some(a)) => a.balance,
            (None, None) => 0,
        }
    }

    fn write(self, st: &mut Overlay<'_>) {
        if let Some((native, record)) = &self.native {
            st.set_account(native, record);
        }
        // A native address without an EVM nonce has no record to remove
        // unless it had one (a nonce is never lowered, so it had none).
        if self.native.is_none() || self.account.is_some() {
            write_account(st, &self.address, self.account.as_ref());
        }
        if let Some((hash, code)) = self.code {
            st.put(keys::code(&hash), code);
        }
        for (slot, value) in self.slots {
            let key = keys::slot(&self.address, &slot);
            match value {
                Some(v) => st.put(key, v.to_vec()),
                None => st.delete(key),
            }
        }
    }
}
