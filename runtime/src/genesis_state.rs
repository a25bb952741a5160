use std::collections::BTreeMap;

use palisade_types::{Address, Amount, EvmAddress, Hash, Role};

use crate::smt::EMPTY;
use crate::state::{Account, Overlay, ValidatorInfo};
use crate::store::{commit_writes, MemStore, StateChanges};
use crate::{ChainParams, StoreError};

/// The initial state a genesis file describes (validated by the genesis crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialState {
    pub params: ChainParams,
    pub accounts: Vec<(Address, Amount, Vec<Role>)>,
    pub validators: Vec<ValidatorInfo>,
    /// Ethereum accounts: address, balance, roles (member and deployer).
    pub evm_accounts: Vec<(EvmAddress, Amount, Vec<Role>)>,
}

/// Writes of the genesis state, with its root. Fails only if the supply
/// overflows (the genesis crate checks that first).
pub fn initial_state(init: &InitialState) -> Result<StateChanges, StoreError> {
    let empty = MemStore::default();
    let mut st = Overlay::new(&empty);
    st.set_params(&init.params);
    let mut supply: Amount = 0;
    let mut admins: u32 = 0;
    let mut accounts: BTreeMap<Address, Account> = BTreeMap::new();
    for (addr, balance, roles) in &init.accounts {
        let a = accounts.entry(*addr).or_default();
        a.balance = a
            .balance
            .checked_add(*balance)
            .ok_or_else(|| StoreError::Corrupt("genesis balance overflows".into()))?;
        supply = supply
            .checked_add(*balance)
            .ok_or_else(|| StoreError::Corrupt("genesis supply overflows".into()))?;
        for r in roles {
            a.grant(*r);
        }
    }
    for (addr, a) in &accounts {
        if a.has(Role::Admin) {
            admins += 1;
        }
        st.set_account(addr, a);
        // Every native account has an EVM face (see `execute::account_or_new`).
        st.put(
            crate::evm::keys::native(&crate::evm::evm_address(addr)),
            addr.as_bytes().to_vec(),
        );
    }
    for (addr, balance, roles) in &init.evm_accounts {
        supply = supply
            .checked_add(*balance)
            .ok_or_else(|| StoreError::Corrupt("genesis supply overflows".into()))?;
        if *balance != 0 {
            let record = crate::evm::EvmAccount {
                balance: *balance,
                nonce: 0,
                code_hash: crate::evm::EMPTY_CODE_HASH,
            };
            st.put(
                crate::evm::keys::account(addr),
                palisade_types::encode(&record),
            );
        }
        let bits = roles.iter().fold(0u8, |b, r| b | 1 << *r as u8);
        if bits != 0 {
            st.put(crate::evm::keys::roles(addr), vec![bits]);
        }
    }
    let mut validators = init.validators.clone();
    validators.sort_by_key(|v| v.consensus_key);
    st.set_validators(&validators);
    st.set_supply(supply);
    st.set_admins(admins);
    st.commit_tx();
    commit_writes(&empty, EMPTY, st.into_writes())
}

/// The root of the genesis state.
pub fn initial_root(init: &InitialState) -> Result<Hash, StoreError> {
    initial_state(init).map(|c| c.root)
}
