//! Palisade's genesis file (`genesis.json`): its format, validation with
//! clear errors, the genesis hash, and the initial state and validator set
//! it describes.
//!
//! ```json
//! {
//!   "chain_id": "palisade-devnet",
//!   "genesis_time_ms": 1700000000000,
//!   "consensus": { "propose_ms": 1000, "propose_delta_ms": 500, "prevote_ms": 500,
//!                  "prevote_delta_ms": 250, "precommit_ms": 500, "precommit_delta_ms": 250,
//!                  "max_timeout_ms": 30000, "block_interval_ms": 250 },
//!   "params": { "max_block_txs": 20000, "max_block_bytes": 8388608, "max_tx_bytes": 65536,
//!               "max_value_bytes": 16384, "validator_update_delay": 2 },
//!   "validators": [ { "name": "v0", "consensus_key": "0x…", "node_key": "0x…", "power": 10 } ],
//!   "accounts": [ { "address": "0x…", "balance": "1000000", "roles": ["admin", "member"] } ]
//! }
//! ```
//!
//! `consensus` and `params` may be left out (defaults apply). The genesis
//! hash is SHA-256 of the canonical borsh encoding of the validated file
//! (validators sorted by consensus key, accounts by address, roles sorted),
//! so two files that say the same thing have the same hash however they
//! are formatted. It is the `last_block_hash` of block 1.
//!
//! Not here: reading keys, writing node homes (that is the node's CLI).

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::Path;

use borsh::BorshSerialize;
use palisade_runtime::{initial_state, ChainParams, InitialState, StateChanges, ValidatorInfo};
use palisade_types::{
    sha256, Address, Amount, ChainId, EvmAddress, Hash, KeyError, PublicKey, Role, Timestamp,
    Validator, ValidatorSet, MAX_TOTAL_POWER,
};
use serde::{Deserialize, Serialize};

/// Consensus timing for the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, BorshSerialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    pub propose_ms: u64,
    pub propose_delta_ms: u64,
    pub prevote_ms: u64,
    pub prevote_delta_ms: u64,
    pub precommit_ms: u64,
    pub precommit_delta_ms: u64,
    pub max_timeout_ms: u64,
    /// Least time from the start of one height to the start of the next
    /// (a height that took longer to decide is followed at once). The
    /// default, 100 ms, was chosen by measurement (docs/benchmarks.md,
    /// "Block interval"): against 50 ms it adds about 30 ms of latency at
    /// low load and takes 10-30% less CPU per transaction; against 200 ms
    /// it takes 60-90 ms off p50 latency, at low load and at 6,000
    /// transfers a second alike.
    pub block_interval_ms: u64,
}

impl Default for ConsensusParams {
    fn default() -> Self {
        ConsensusParams {
            propose_ms: 1_000,
            propose_delta_ms: 500,
            prevote_ms: 500,
            prevote_delta_ms: 250,
            precommit_ms: 500,
            precommit_delta_ms: 250,
            max_timeout_ms: 30_000,
            block_interval_ms: 100,
        }
    }
}

/// A genesis validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// Operator-chosen label for logs (not part of consensus).
    #[serde(default)]
    pub name: String,
    pub consensus_key: PublicKey,
    /// ed25519 key of the validator's libp2p identity (its PeerId).
    pub node_key: PublicKey,
    pub power: u64,
}

/// A genesis account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    pub address: Address,
    #[serde(with = "amount")]
    pub balance: Amount,
    #[serde(default)]
    pub roles: Vec<Role>,
}

/// A genesis EVM account: an Ethereum (secp256k1) address funded and given
/// roles at genesis, as `palisade dev` does for the standard development
/// accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisEvmAccount {
    pub address: EvmAddress,
    #[serde(with = "amount")]
    pub balance: Amount,
    /// `member` and `deployer` only (an EVM address can send nothing else).
    #[serde(default)]
    pub roles: Vec<Role>,
}

mod amount {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(format!(
                "balance {s:?} must be a decimal string of digits"
            )));
        }
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("balance {s} is too large")))
    }
}

/// A parsed and validated genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: ChainId,
    pub genesis_time_ms: u64,
    #[serde(default)]
    pub consensus: ConsensusParams,
    #[serde(default)]
    pub params: ChainParams,
    pub validators: Vec<GenesisValidator>,
    pub accounts: Vec<GenesisAccount>,
    /// Ethereum accounts (20-byte addresses); optional.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evm_accounts: Vec<GenesisEvmAccount>,
}

fn read(path: &Path) -> Result<String, GenesisError> {
    std::fs::read_to_string(path).map_err(|source| GenesisError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// What is wrong with a genesis file.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("genesis.json is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("genesis has no validators")]
    NoValidators,
    #[error("validator {0} has zero power")]
    ZeroPower(String),
    #[error("validator {0} has power above {max}", max = palisade_runtime::MAX_VALIDATOR_POWER)]
    PowerTooLarge(String),
    #[error("total validator power exceeds {MAX_TOTAL_POWER}")]
    TotalPowerTooLarge,
    #[error("consensus key {0} is used by more than one validator")]
    DuplicateConsensusKey(PublicKey),
    #[error("node key {0} is used by more than one validator")]
    DuplicateNodeKey(PublicKey),
    #[error("{what} {key} of validator {name} is not a valid ed25519 public key: {reason}")]
    InvalidKey {
        what: &'static str,
        key: PublicKey,
        name: String,
        reason: KeyError,
    },
    #[error("account {0} is listed more than once")]
    DuplicateAccount(Address),
    #[error("account {0} lists a role twice")]
    DuplicateRole(Address),
    #[error("EVM account {0} is listed more than once")]
    DuplicateEvmAccount(EvmAddress),
    #[error("EVM account {0} lists a role twice")]
    DuplicateEvmRole(EvmAddress),
    #[error("EVM account {address} cannot hold the {role} role (only member and deployer)")]
    RoleNotForEvmAccount {
        address: EvmAddress,
        role: &'static str,
    },
    #[error("EVM account {evm} is the EVM address of account {native}: list that account instead")]
    EvmAccountIsNative { evm: EvmAddress, native: Address },
    #[error(
        "no account has the admin role: nobody could ever manage roles, validators or parameters"
    )]
    NoAdmin,
    #[error("total supply overflows")]
    SupplyOverflow,
    #[error("invalid chain parameters: {0}")]
    Params(String),
    #[error("invalid consensus timing: {0}")]
    Consensus(&'static str),
    #[error("too many validators: {0} (limit {max})", max = palisade_types::limits::MAX_VALIDATORS)]
    TooManyValidators(usize),
}

impl Genesis {
    /// Parses and validates `genesis.json` text.
    pub fn from_json(text: &str) -> Result<Genesis, GenesisError> {
        let mut g: Genesis = serde_json::from_str(text)?;
        g.validate()?;
        g.canonicalize();
        Ok(g)
    }

    pub fn from_file(path: &Path) -> Result<Genesis, GenesisError> {
        Genesis::from_json(&read(path)?)
    }

    /// Parses `genesis.json` text that may still be incomplete: a file being
    /// assembled in a genesis ceremony (`palisade genesis new`, then
    /// validators and accounts added one by one) may have no validators or
    /// no admin account yet. Everything else is checked as
    /// [`Genesis::validate`] checks it ([`Genesis::check_draft`]). The order
    /// of validators and accounts is kept as written, so an edited file
    /// differs from its original only where it was edited.
    pub fn from_json_draft(text: &str) -> Result<Genesis, GenesisError> {
        let g: Genesis = serde_json::from_str(text)?;
        g.check_draft()?;
        Ok(g)
    }

    /// [`Genesis::from_json_draft`] of a file.
    pub fn from_file_draft(path: &Path) -> Result<Genesis, GenesisError> {
        Genesis::from_json_draft(&read(path)?)
    }

    /// Pretty JSON, as written to `config/genesis.json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks everything a node relies on, with the first problem found.
    pub fn validate(&self) -> Result<(), GenesisError> {
        self.check(true)
    }

    /// [`Genesis::validate`] except what only a finished file has: at least
    /// one validator and an admin account. What a genesis ceremony's tools
    /// check after each edit.
    pub fn check_draft(&self) -> Result<(), GenesisError> {
        self.check(false)
    }

    fn check(&self, complete: bool) -> Result<(), GenesisError> {
        if complete && self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        self.check_validators()?;
        let (native_supply, admin) = self.check_accounts()?;
        let evm_supply = self.check_evm_accounts()?;
        native_supply
            .checked_add(evm_supply)
            .ok_or(GenesisError::SupplyOverflow)?;
        if complete && !admin {
            return Err(GenesisError::NoAdmin);
        }
        self.params
            .validate()
            .map_err(|e| GenesisError::Params(e.to_string()))?;
        let c = &self.consensus;
        if c.propose_ms == 0 || c.prevote_ms == 0 || c.precommit_ms == 0 {
            return Err(GenesisError::Consensus(
                "base timeouts must be greater than zero",
            ));
        }
        if c.max_timeout_ms < c.propose_ms.max(c.prevote_ms).max(c.precommit_ms) {
            return Err(GenesisError::Consensus(
                "max_timeout_ms must be at least every base timeout",
            ));
        }
        Ok(())
    }

    /// The validators: how many, their powers and keys, none twice.
    fn check_validators(&self) -> Result<(), GenesisError> {
        if self.validators.len() > palisade_types::limits::MAX_VALIDATORS {
            return Err(GenesisError::TooManyValidators(self.validators.len()));
        }
        let mut ckeys = BTreeSet::new();
        let mut nkeys = BTreeSet::new();
        let mut total: u64 = 0;
        for v in &self.validators {
            let name = if v.name.is_empty() {
                v.consensus_key.to_string()
            } else {
                v.name.clone()
            };
            if v.power == 0 {
                return Err(GenesisError::ZeroPower(name));
            }
            if v.power > palisade_runtime::MAX_VALIDATOR_POWER {
                return Err(GenesisError::PowerTooLarge(name));
            }
            for (what, key) in [("consensus key", v.consensus_key), ("node key", v.node_key)] {
                // The rule the runtime applies to `AddValidator`.
                if let Err(reason) = key.check_point() {
                    return Err(GenesisError::InvalidKey {
                        what,
                        key,
                        name: name.clone(),
                        reason,
                    });
                }
            }
            if !ckeys.insert(v.consensus_key) {
                return Err(GenesisError::DuplicateConsensusKey(v.consensus_key));
            }
            if !nkeys.insert(v.node_key) {
                return Err(GenesisError::DuplicateNodeKey(v.node_key));
            }
            total = total
                .checked_add(v.power)
                .filter(|t| *t <= MAX_TOTAL_POWER)
                .ok_or(GenesisError::TotalPowerTooLarge)?;
        }
        Ok(())
    }

    /// The native accounts, none twice nor with a role twice; their
    /// supply, and whether one is an admin.
    fn check_accounts(&self) -> Result<(Amount, bool), GenesisError> {
        let mut addrs = BTreeSet::new();
        let mut supply: Amount = 0;
        let mut admin = false;
        for a in &self.accounts {
            if !addrs.insert(a.address) {
                return Err(GenesisError::DuplicateAccount(a.address));
            }
            let roles: BTreeSet<Role> = a.roles.iter().copied().collect();
            if roles.len() != a.roles.len() {
                return Err(GenesisError::DuplicateRole(a.address));
            }
            admin |= roles.contains(&Role::Admin);
            supply = supply
                .checked_add(a.balance)
                .ok_or(GenesisError::SupplyOverflow)?;
        }
        Ok((supply, admin))
    }

    /// The EVM accounts: none twice, none at a native account's address,
    /// only roles an EVM account can hold; their supply.
    fn check_evm_accounts(&self) -> Result<Amount, GenesisError> {
        let natives: std::collections::BTreeMap<EvmAddress, Address> = self
            .accounts
            .iter()
            .map(|a| (palisade_runtime::evm::evm_address(&a.address), a.address))
            .collect();
        let mut evm_addrs = BTreeSet::new();
        let mut supply: Amount = 0;
        for a in &self.evm_accounts {
            if !evm_addrs.insert(a.address) {
                return Err(GenesisError::DuplicateEvmAccount(a.address));
            }
            if let Some(native) = natives.get(&a.address) {
                return Err(GenesisError::EvmAccountIsNative {
                    evm: a.address,
                    native: *native,
                });
            }
            let roles: BTreeSet<Role> = a.roles.iter().copied().collect();
            if roles.len() != a.roles.len() {
                return Err(GenesisError::DuplicateEvmRole(a.address));
            }
            if let Some(r) = roles.iter().find(|r| !Role::EVM.contains(r)) {
                return Err(GenesisError::RoleNotForEvmAccount {
                    address: a.address,
                    role: r.as_str(),
                });
            }
            supply = supply
                .checked_add(a.balance)
                .ok_or(GenesisError::SupplyOverflow)?;
        }
        Ok(supply)
    }

    /// Sorts validators, accounts and roles into the one canonical order.
    fn canonicalize(&mut self) {
        self.validators.sort_by_key(|v| v.consensus_key);
        self.accounts.sort_by_key(|a| a.address);
        for a in &mut self.accounts {
            a.roles.sort();
        }
        self.evm_accounts.sort_by_key(|a| a.address);
        for a in &mut self.evm_accounts {
            a.roles.sort();
        }
    }

    /// SHA-256 of the canonical encoding.
    pub fn hash(&self) -> Hash {
        let mut g = self.clone();
        g.canonicalize();
        sha256(&palisade_types::encode(&g))
    }

    pub fn time(&self) -> Timestamp {
        Timestamp(self.genesis_time_ms)
    }

    /// The validator set that decides height 1.
    pub fn validator_set(&self) -> Result<ValidatorSet, GenesisError> {
        ValidatorSet::new(
            self.validators
                .iter()
                .map(|v| Validator {
                    public_key: v.consensus_key,
                    power: v.power,
                })
                .collect(),
        )
        .map_err(|e| GenesisError::Params(e.to_string()))
    }

    pub fn initial(&self) -> InitialState {
        InitialState {
            params: self.params,
            accounts: self
                .accounts
                .iter()
                .map(|a| (a.address, a.balance, a.roles.clone()))
                .collect(),
            evm_accounts: self
                .evm_accounts
                .iter()
                .map(|a| (a.address, a.balance, a.roles.clone()))
                .collect(),
            validators: self
                .validators
                .iter()
                .map(|v| ValidatorInfo {
                    consensus_key: v.consensus_key,
                    node_key: v.node_key,
                    power: v.power,
                })
                .collect(),
        }
    }

    /// The writes of the initial state, with its root.
    pub fn initial_state(&self) -> Result<StateChanges, GenesisError> {
        initial_state(&self.initial()).map_err(|e| GenesisError::Params(e.to_string()))
    }
}
