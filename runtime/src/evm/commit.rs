//! Writing what an EVM transaction changed into the state.

use revm::primitives::KECCAK_EMPTY;
use revm::state::EvmState;

use super::records::{keys, read_account, write_account, EvmAccount};
use crate::state::Overlay;
use crate::StoreError;

/// Writes revm's state diff into `st`: accounts by address, then their
/// changed slots by slot (revm's maps iterate in a random order), new code
/// by hash, and the total supply moved by the net change of balances (a
/// contract that destroys itself in its creating transaction, sending its
/// balance to itself, burns it).
pub(crate) fn write_diff(st: &mut Overlay<'_>, state: EvmState) -> Result<(), StoreError> {
    let mut touched: Vec<_> = state.into_iter().filter(|(_, a)| a.is_touched()).collect();
    touched.sort_by_key(|(addr, _)| *addr);
    let (mut before, mut after) = (0u128, 0u128);
    let overflow = || StoreError::Corrupt("EVM balances overflow u128".into());
    for (addr, acct) in touched {
        let a = addr.0 .0;
        let old = read_account(st, &a)?;
        before = before
            .checked_add(old.map_or(0, |o| o.balance))
            .ok_or_else(overflow)?;
        // EIP-6780: only an account created in this transaction can be
        // destroyed, so it has no stored slots to remove. EIP-161: a
        // touched account left empty is removed.
        if acct.is_selfdestructed() || acct.is_empty() {
            write_account(st, &a, None);
            continue;
        }
        let balance = u128::try_from(acct.info.balance).map_err(|_| overflow())?;
        after = after.checked_add(balance).ok_or_else(overflow)?;
        let code_hash = acct.info.code_hash;
        if code_hash != KECCAK_EMPTY {
            if let Some(code) = &acct.info.code {
                if acct.is_created() {
                    st.put(keys::code(&code_hash.0), code.original_bytes().to_vec());
                }
            }
        }
        write_account(
            st,
            &a,
            Some(&EvmAccount {
                balance,
                nonce: acct.info.nonce,
                code_hash: code_hash.0,
            }),
        );
        let mut slots: Vec<_> = acct.changed_storage_slots().collect();
        slots.sort_by_key(|(k, _)| **k);
        for (k, slot) in slots {
            let key = keys::slot(&a, &k.to_be_bytes::<32>());
            if slot.present_value.is_zero() {
                st.delete(key);
            } else {
                st.put(key, slot.present_value.to_be_bytes::<32>().to_vec());
            }
        }
    }
    if before != after {
        let supply = st.supply()?;
        let supply = supply
            .checked_add(after)
            .and_then(|s| s.checked_sub(before))
            .ok_or_else(|| StoreError::Corrupt("supply does not cover EVM balances".into()))?;
        st.set_supply(supply);
    }
    Ok(())
}
