//! Native actions, one function each: the role it needs, its checks in
//! the order the spec gives them (the first failure is the receipt's
//! error), and its writes. Every one writes the signer back (its nonce
//! already bumped) once its checks have passed.

use palisade_types::{Address, Amount, EvmAddress, Param, PublicKey, Role};

use super::validators::{
    check_schedule, load_schedule, may_change, need_operator, schedule, valid_key,
};
use super::{account_or_new, debit, ev, hex0x, nonzero, set_evm_role};
use crate::applied::{Admit, BlockContext};
use crate::receipt::Event;
use crate::state::{Account, Overlay, ValidatorChange, ValidatorInfo};
use crate::{ChainParams, TxError};

/// One native transaction's action as it is applied.
pub(super) struct Act<'a, 's> {
    pub(super) st: &'a mut Overlay<'s>,
    pub(super) from: Address,
    /// The signer's account, its nonce already bumped.
    pub(super) signer: Account,
    /// The block it runs in.
    pub(super) ctx: &'a BlockContext,
    pub(super) params: &'a ChainParams,
    /// Whether to build events: a mempool check throws them away, and
    /// formatting them is a good part of a transfer's cost.
    pub(super) record: bool,
}

type Events = Result<Vec<Event>, Admit>;

impl Act<'_, '_> {
    pub(super) fn need(&self, r: Role) -> Result<(), TxError> {
        if self.signer.has(r) {
            Ok(())
        } else {
            Err(TxError::unauthorized(r))
        }
    }

    pub(super) fn save_signer(&mut self) {
        self.st.set_account(&self.from, &self.signer);
    }

    fn ev(&self, event: impl FnOnce() -> Event) -> Vec<Event> {
        ev(self.record, event)
    }
}

pub(super) fn transfer(a: &mut Act<'_, '_>, to: &Address, amount: Amount) -> Events {
    a.need(Role::Member)?;
    nonzero(amount)?;
    debit(&mut a.signer, amount)?;
    if *to == a.from {
        a.signer.balance = a
            .signer
            .balance
            .checked_add(amount)
            .ok_or(TxError::Overflow)?;
        a.save_signer();
    } else {
        a.save_signer();
        credit(a.st, to, amount)?;
    }
    let from = a.from;
    Ok(a.ev(|| {
        Event::new(
            "transfer",
            &[
                ("from", from.to_string()),
                ("to", to.to_string()),
                ("amount", amount.to_string()),
            ],
        )
    }))
}

pub(super) fn mint(a: &mut Act<'_, '_>, to: &Address, amount: Amount) -> Events {
    a.need(Role::Minter)?;
    nonzero(amount)?;
    let supply =
        a.st.supply()?
            .checked_add(amount)
            .ok_or(TxError::Overflow)?;
    a.save_signer();
    credit(a.st, to, amount)?;
    a.st.set_supply(supply);
    Ok(a.ev(|| {
        Event::new(
            "mint",
            &[("to", to.to_string()), ("amount", amount.to_string())],
        )
    }))
}

pub(super) fn burn(a: &mut Act<'_, '_>, amount: Amount) -> Events {
    a.need(Role::Member)?;
    nonzero(amount)?;
    debit(&mut a.signer, amount)?;
    // Supply is the sum of all balances, so it covers any balance.
    let supply =
        a.st.supply()?
            .checked_sub(amount)
            .ok_or(TxError::Overflow)?;
    a.save_signer();
    a.st.set_supply(supply);
    let from = a.from;
    Ok(a.ev(|| {
        Event::new(
            "burn",
            &[("from", from.to_string()), ("amount", amount.to_string())],
        )
    }))
}

/// Adds `amount` to `to`'s balance (an account created if need be).
fn credit(st: &mut Overlay<'_>, to: &Address, amount: Amount) -> Result<(), Admit> {
    let mut dest = account_or_new(st, to)?;
    dest.balance = dest.balance.checked_add(amount).ok_or(TxError::Overflow)?;
    st.set_account(to, &dest);
    Ok(())
}

pub(super) fn put(a: &mut Act<'_, '_>, namespace: &[u8], key: &[u8], value: &[u8]) -> Events {
    a.need(Role::Member)?;
    if namespace.is_empty() {
        return Err(TxError::EmptyNamespace.into());
    }
    let max = a.params.max_value_bytes as usize;
    if value.len() > max {
        return Err(TxError::ValueTooLarge {
            size: value.len(),
            max,
        }
        .into());
    }
    match a.st.namespace_owner(namespace)? {
        Some(owner) if owner != a.from => return Err(TxError::NamespaceOwned.into()),
        Some(_) => {}
        None => a.st.set_namespace_owner(namespace, &a.from),
    }
    a.save_signer();
    a.st.put(crate::state::keys::data(namespace, key), value.to_vec());
    Ok(a.ev(|| {
        Event::new(
            "put",
            &[("namespace", hex0x(namespace)), ("key", hex0x(key))],
        )
    }))
}

pub(super) fn delete(a: &mut Act<'_, '_>, namespace: &[u8], key: &[u8]) -> Events {
    a.need(Role::Member)?;
    if a.st.namespace_owner(namespace)? != Some(a.from) {
        return Err(TxError::NamespaceOwned.into());
    }
    let k = crate::state::keys::data(namespace, key);
    if a.st.get(&k)?.is_none() {
        return Err(TxError::KeyNotFound.into());
    }
    a.save_signer();
    a.st.delete(k);
    Ok(a.ev(|| {
        Event::new(
            "delete",
            &[("namespace", hex0x(namespace)), ("key", hex0x(key))],
        )
    }))
}

pub(super) fn grant_role(a: &mut Act<'_, '_>, account: &Address, role: Role) -> Events {
    a.need(Role::Admin)?;
    a.save_signer();
    let mut acct = account_or_new(a.st, account)?;
    if role == Role::Admin && !acct.has(Role::Admin) {
        let n = a.st.admins()?.checked_add(1).ok_or(TxError::Overflow)?;
        a.st.set_admins(n);
    }
    acct.grant(role);
    a.st.set_account(account, &acct);
    Ok(a.ev(|| role_event("grant", account.to_string(), role)))
}

pub(super) fn revoke_role(a: &mut Act<'_, '_>, account: &Address, role: Role) -> Events {
    a.need(Role::Admin)?;
    a.save_signer();
    let mut acct = account_or_new(a.st, account)?;
    if role == Role::Admin && acct.has(Role::Admin) {
        let n = a.st.admins()?;
        if n <= 1 {
            return Err(TxError::LastAdmin.into());
        }
        a.st.set_admins(n - 1);
    }
    acct.revoke(role);
    a.st.set_account(account, &acct);
    Ok(a.ev(|| role_event("revoke", account.to_string(), role)))
}

pub(super) fn set_evm_role_of(
    a: &mut Act<'_, '_>,
    address: &EvmAddress,
    role: Role,
    grant: bool,
) -> Events {
    a.need(Role::Admin)?;
    if !Role::EVM.contains(&role) {
        return Err(TxError::RoleNotForEvmAddress(role.as_str()).into());
    }
    a.save_signer();
    set_evm_role(a.st, address, role, grant)?;
    let name = if grant { "grant" } else { "revoke" };
    Ok(a.ev(|| role_event(name, address.to_string(), role)))
}

fn role_event(name: &str, account: String, role: Role) -> Event {
    Event::new(
        name,
        &[("account", account), ("role", role.as_str().into())],
    )
}

pub(super) fn add_validator(
    a: &mut Act<'_, '_>,
    consensus_key: &PublicKey,
    node_key: &PublicKey,
    power: u64,
) -> Events {
    need_operator(&a.signer)?;
    valid_key("consensus key", consensus_key)?;
    valid_key("node key", node_key)?;
    a.save_signer();
    let change = ValidatorChange::Add(ValidatorInfo {
        consensus_key: *consensus_key,
        node_key: *node_key,
        power,
    });
    let at = schedule(a.st, a.ctx.height, a.params, change)?;
    a.st.set_validator_operator(consensus_key, Some(&a.from));
    Ok(a.ev(|| {
        Event::new(
            "validator_add",
            &[
                ("key", consensus_key.to_string()),
                ("power", power.to_string()),
                ("height", at.to_string()),
            ],
        )
    }))
}

pub(super) fn remove_validator(a: &mut Act<'_, '_>, consensus_key: &PublicKey) -> Events {
    need_operator(&a.signer)?;
    may_change(a.st, &a.signer, &a.from, consensus_key)?;
    a.save_signer();
    let change = ValidatorChange::Remove(*consensus_key);
    let at = schedule(a.st, a.ctx.height, a.params, change)?;
    a.st.set_validator_operator(consensus_key, None);
    Ok(a.ev(|| {
        Event::new(
            "validator_remove",
            &[
                ("key", consensus_key.to_string()),
                ("height", at.to_string()),
            ],
        )
    }))
}

pub(super) fn set_validator_power(
    a: &mut Act<'_, '_>,
    consensus_key: &PublicKey,
    power: u64,
) -> Events {
    need_operator(&a.signer)?;
    may_change(a.st, &a.signer, &a.from, consensus_key)?;
    a.save_signer();
    let change = ValidatorChange::SetPower(*consensus_key, power);
    let at = schedule(a.st, a.ctx.height, a.params, change)?;
    Ok(a.ev(|| {
        Event::new(
            "validator_power",
            &[
                ("key", consensus_key.to_string()),
                ("power", power.to_string()),
                ("height", at.to_string()),
            ],
        )
    }))
}

pub(super) fn set_param(a: &mut Act<'_, '_>, param: &Param) -> Events {
    a.need(Role::Admin)?;
    let next = a.params.with(*param)?;
    if let Param::ValidatorUpdateDelay(d) = param {
        if *d > a.params.validator_update_delay {
            // Longer windows: the recent and pending changes must keep to
            // the rule under the new delay too.
            let sched = load_schedule(a.st)?;
            check_schedule(a.st, a.ctx.height, *d, &sched, None).map_err(|e| match e {
                Admit::Tx(_) => Admit::Tx(TxError::InvalidParam(
                    "validator_update_delay: recent and pending validator changes would move a third or more of the power within one window of the new delay",
                )),
                s => s,
            })?;
        }
    }
    a.save_signer();
    a.st.set_params(&next);
    Ok(a.ev(|| Event::new("set_param", &[("param", format!("{param:?}"))])))
}
