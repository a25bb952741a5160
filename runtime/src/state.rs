//! Typed access to the state: key layout, records, and a write overlay.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::{Address, Amount, Height, PublicKey, Role};
use serde::{Deserialize, Serialize};

use crate::{ChainParams, StateStore, StoreError};

/// Key layout. Every key starts with a short tag naming its record kind.
pub mod keys {
    use palisade_types::{Address, Height, PublicKey};

    pub const PARAMS: &[u8] = b"meta/params";
    pub const VALIDATORS: &[u8] = b"meta/validators";
    pub const SUPPLY: &[u8] = b"meta/supply";
    pub const ADMINS: &[u8] = b"meta/admins";

    /// Accounts: this prefix, then the 32-byte address.
    pub const ACCOUNT_PREFIX: &[u8] = b"acct/";

    pub fn account(a: &Address) -> Vec<u8> {
        [ACCOUNT_PREFIX, a.as_bytes()].concat()
    }

    /// `data/` || len(namespace) as one byte || namespace || key.
    pub fn data(namespace: &[u8], key: &[u8]) -> Vec<u8> {
        let len = u8::try_from(namespace.len()).unwrap_or(u8::MAX);
        [b"data/".as_slice(), &[len], namespace, key].concat()
    }

    pub fn namespace_owner(namespace: &[u8]) -> Vec<u8> {
        [b"nsown/".as_slice(), namespace].concat()
    }

    /// Validator-set changes that take effect at `height`.
    pub fn pending_validators(height: Height) -> Vec<u8> {
        [b"meta/pending/".as_slice(), &height.get().to_be_bytes()].concat()
    }

    /// Every height that has a `pending_validators` record, ascending.
    pub const PENDING_HEIGHTS: &[u8] = b"meta/pending_heights";

    /// Power moved by the validator-set changes of recent heights.
    pub const VALIDATOR_HISTORY: &[u8] = b"meta/validator_history";

    /// Operators: this prefix, then the validator's 32-byte consensus key.
    pub const OPERATOR_PREFIX: &[u8] = b"valop/";

    /// The account that operates the validator with `consensus_key`.
    pub fn validator_operator(consensus_key: &PublicKey) -> Vec<u8> {
        [OPERATOR_PREFIX, consensus_key.as_bytes()].concat()
    }
}

/// One account.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Account {
    pub balance: Amount,
    /// Nonce the next transaction must carry.
    pub nonce: u64,
    /// Role bit set: bit `r` set when the account holds `Role` with tag `r`.
    pub roles: u8,
}

impl Account {
    pub fn has(&self, role: Role) -> bool {
        self.roles & (1 << role as u8) != 0
    }

    pub fn grant(&mut self, role: Role) {
        self.roles |= 1 << role as u8;
    }

    pub fn revoke(&mut self, role: Role) {
        self.roles &= !(1 << role as u8);
    }

    pub fn role_list(&self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.has(*r)).collect()
    }
}

/// A validator as the runtime keeps it: consensus key, libp2p node key, power.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct ValidatorInfo {
    pub consensus_key: PublicKey,
    pub node_key: PublicKey,
    pub power: u64,
}

/// A scheduled change of the validator set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ValidatorChange {
    Add(ValidatorInfo),
    Remove(PublicKey),
    SetPower(PublicKey, u64),
}

impl ValidatorChange {
    pub fn key(&self) -> PublicKey {
        match self {
            ValidatorChange::Add(v) => v.consensus_key,
            ValidatorChange::Remove(k) | ValidatorChange::SetPower(k, _) => *k,
        }
    }
}

/// What the validator-set changes that took effect at one height did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AppliedChanges {
    pub height: Height,
    /// Sum over the changes of |new power - old power| (an added
    /// validator's whole power, a removed one's whole power).
    pub moved: u64,
    /// Total power of the set just before them.
    pub total_before: u64,
}

fn decode<T: BorshDeserialize>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    borsh::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("record {}: {e}", String::from_utf8_lossy(key))))
}

fn encode<T: BorshSerialize>(v: &T) -> Vec<u8> {
    palisade_types::encode(v)
}

/// Reads through pending writes to the committed store; collects writes.
/// Two layers: the block's accepted writes, and the current transaction's,
/// which are either merged (`commit_tx`) or dropped (`discard_tx`) so a
/// failed transaction leaves no trace.
pub struct Overlay<'a> {
    store: &'a dyn StateStore,
    block: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    tx: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl std::fmt::Debug for Overlay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("block_writes", &self.block.len())
            .field("tx_writes", &self.tx.len())
            .finish()
    }
}

impl<'a> Overlay<'a> {
    pub fn new(store: &'a dyn StateStore) -> Overlay<'a> {
        Overlay {
            store,
            block: BTreeMap::new(),
            tx: BTreeMap::new(),
        }
    }

    /// All accepted writes (an uncommitted transaction's are dropped).
    pub fn into_writes(self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.block
    }

    pub fn commit_tx(&mut self) {
        let tx = std::mem::take(&mut self.tx);
        self.block.extend(tx);
    }

    pub fn discard_tx(&mut self) {
        self.tx.clear();
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.tx.get(key) {
            return Ok(v.clone());
        }
        match self.block.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.store.get(key),
        }
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.tx.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.tx.insert(key, None);
    }

    fn get_rec<T: BorshDeserialize>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.get(key)?.map(|b| decode(key, &b)).transpose()
    }

    pub fn account(&self, a: &Address) -> Result<Option<Account>, StoreError> {
        self.get_rec(&keys::account(a))
    }

    pub fn set_account(&mut self, a: &Address, acct: &Account) {
        self.put(keys::account(a), encode(acct));
    }

    pub fn params(&self) -> Result<ChainParams, StoreError> {
        self.get_rec(keys::PARAMS)?
            .ok_or_else(|| StoreError::Corrupt("chain parameters missing".into()))
    }

    pub fn set_params(&mut self, p: &ChainParams) {
        self.put(keys::PARAMS.to_vec(), encode(p));
    }

    pub fn validators(&self) -> Result<Vec<ValidatorInfo>, StoreError> {
        self.get_rec(keys::VALIDATORS)?
            .ok_or_else(|| StoreError::Corrupt("validator set missing".into()))
    }

    pub fn set_validators(&mut self, v: &Vec<ValidatorInfo>) {
        self.put(keys::VALIDATORS.to_vec(), encode(v));
    }

    pub fn pending(&self, h: Height) -> Result<Vec<ValidatorChange>, StoreError> {
        Ok(self
            .get_rec(&keys::pending_validators(h))?
            .unwrap_or_default())
    }

    pub fn set_pending(&mut self, h: Height, changes: &Vec<ValidatorChange>) {
        if changes.is_empty() {
            self.delete(keys::pending_validators(h));
        } else {
            self.put(keys::pending_validators(h), encode(changes));
        }
    }

    /// Heights with pending validator-set changes, ascending.
    pub fn pending_heights(&self) -> Result<Vec<Height>, StoreError> {
        Ok(self.get_rec(keys::PENDING_HEIGHTS)?.unwrap_or_default())
    }

    pub fn set_pending_heights(&mut self, heights: &Vec<Height>) {
        if heights.is_empty() {
            self.delete(keys::PENDING_HEIGHTS.to_vec());
        } else {
            self.put(keys::PENDING_HEIGHTS.to_vec(), encode(heights));
        }
    }

    /// Applied validator-set changes of recent heights, ascending.
    pub fn validator_history(&self) -> Result<Vec<AppliedChanges>, StoreError> {
        Ok(self.get_rec(keys::VALIDATOR_HISTORY)?.unwrap_or_default())
    }

    pub fn set_validator_history(&mut self, history: &Vec<AppliedChanges>) {
        if history.is_empty() {
            self.delete(keys::VALIDATOR_HISTORY.to_vec());
        } else {
            self.put(keys::VALIDATOR_HISTORY.to_vec(), encode(history));
        }
    }

    pub fn validator_operator(&self, k: &PublicKey) -> Result<Option<Address>, StoreError> {
        self.get_rec(&keys::validator_operator(k))
    }

    pub fn set_validator_operator(&mut self, k: &PublicKey, operator: Option<&Address>) {
        match operator {
            Some(a) => self.put(keys::validator_operator(k), encode(a)),
            None => self.delete(keys::validator_operator(k)),
        }
    }

    pub fn supply(&self) -> Result<Amount, StoreError> {
        Ok(self.get_rec(keys::SUPPLY)?.unwrap_or(0))
    }

    pub fn set_supply(&mut self, s: Amount) {
        self.put(keys::SUPPLY.to_vec(), encode(&s));
    }

    pub fn admins(&self) -> Result<u32, StoreError> {
        Ok(self.get_rec(keys::ADMINS)?.unwrap_or(0))
    }

    pub fn set_admins(&mut self, n: u32) {
        self.put(keys::ADMINS.to_vec(), encode(&n));
    }

    pub fn namespace_owner(&self, ns: &[u8]) -> Result<Option<Address>, StoreError> {
        self.get_rec(&keys::namespace_owner(ns))
    }

    pub fn set_namespace_owner(&mut self, ns: &[u8], owner: &Address) {
        self.put(keys::namespace_owner(ns), encode(owner));
    }
}
