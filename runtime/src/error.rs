use palisade_types::{Hash, KeyError, Role};

/// Why a transaction was refused or failed. Every variant has a stable
/// numeric code (receipts and JSON-RPC carry it); codes are never reused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("transaction is for chain {found}, this chain is {expected}")]
    WrongChainId { expected: String, found: String },
    #[error("signature does not verify")]
    BadSignature,
    #[error("nonce {got} is not the account's next nonce {expected}")]
    BadNonce { expected: u64, got: u64 },
    #[error("transaction is {size} bytes; the limit is {max}")]
    TooLarge { size: usize, max: usize },
    #[error("signer has no account or no role on this chain")]
    UnknownSigner,
    #[error("signer lacks the {0} role")]
    Unauthorized(&'static str),
    #[error("insufficient funds: balance {balance}, needed {needed}")]
    InsufficientFunds { balance: u128, needed: u128 },
    #[error("amount overflows")]
    Overflow,
    #[error("amount must be greater than zero")]
    ZeroAmount,
    #[error("value is {size} bytes; the limit is {max}")]
    ValueTooLarge { size: usize, max: usize },
    #[error("namespace is owned by another account")]
    NamespaceOwned,
    #[error("key not found")]
    KeyNotFound,
    #[error("namespace must not be empty")]
    EmptyNamespace,
    #[error("the last admin cannot lose the admin role")]
    LastAdmin,
    #[error("a validator with this consensus key exists or is pending")]
    ValidatorExists,
    #[error("no validator with this consensus key")]
    ValidatorNotFound,
    #[error("voting power must be between 1 and {max}")]
    InvalidPower { max: u64 },
    #[error("validator-set change too large: the changes taking effect within any validator_update_delay consecutive heights must move less than a third of the voting power, and leave at least one validator")]
    ValidatorChangeTooLarge,
    #[error("invalid parameter value: {0}")]
    InvalidParam(&'static str),
    #[error("nonce {got} is too far ahead of the account's next nonce {expected}")]
    NonceTooFarAhead { expected: u64, got: u64 },
    #[error("the validator's {key} is not a valid ed25519 public key: {reason}")]
    InvalidValidatorKey { key: &'static str, reason: KeyError },
    #[error("only the validator's operator or an admin may change it")]
    NotValidatorOperator,
    #[error("a validator with this node key exists or is pending")]
    NodeKeyExists,
    #[error("the validator set would have more than {max} members")]
    TooManyValidators { max: usize },
    #[error("the validator set's total power would exceed {max}")]
    TotalPowerTooLarge { max: u64 },
    #[error("conflicts with a validator-set change already pending")]
    ValidatorChangeConflict,
    #[error("role {0} cannot be held by an EVM address (only member and deployer can)")]
    RoleNotForEvmAddress(&'static str),
    #[error("execution reverted{}", revert_suffix(.reason))]
    EvmReverted { reason: Option<String> },
    #[error("EVM execution halted: {0}")]
    EvmHalted(&'static str),
    #[error("EVM transaction not executable: {0}")]
    EvmNotExecutable(&'static str),
    #[error("gas limit {limit} is above the most one transaction may use, {max}")]
    GasLimitTooHigh { limit: u64, max: u64 },
    #[error("the block has {left} gas left, the transaction's gas limit is {limit}")]
    BlockGasExhausted { left: u64, limit: u64 },
    #[error("gas price {price} is below the chain's minimum {min}")]
    GasPriceTooLow { price: u128, min: u128 },
    #[error("not an admissible Ethereum transaction: {0}")]
    EthTxMalformed(String),
    #[error("a file with this root is already on record")]
    FileExists,
    #[error("no file with this root is on record")]
    FileNotFound,
    #[error("file quota exceeded: {used} bytes on record, this file {size}, the quota {quota}")]
    FileQuotaExceeded { used: u64, size: u64, quota: u64 },
    #[error("invalid file record: {0}")]
    FileInvalid(&'static str),
    #[error("the file was already unpublished")]
    FileWithdrawn,
    #[error("only the file's publisher or an admin may unpublish it")]
    NotFilePublisher,
}

fn revert_suffix(reason: &Option<String>) -> String {
    match reason {
        Some(r) => format!(": {r}"),
        None => String::new(),
    }
}

impl TxError {
    /// Stable error code; 0 means success in receipts.
    pub fn code(&self) -> u16 {
        match self {
            TxError::WrongChainId { .. } => 1,
            TxError::BadSignature => 2,
            TxError::BadNonce { .. } => 3,
            TxError::TooLarge { .. } => 4,
            TxError::UnknownSigner => 5,
            TxError::NonceTooFarAhead { .. } => 6,
            TxError::Unauthorized(_) => 10,
            TxError::InsufficientFunds { .. } => 11,
            TxError::Overflow => 12,
            TxError::ZeroAmount => 13,
            TxError::ValueTooLarge { .. } => 14,
            TxError::NamespaceOwned => 15,
            TxError::KeyNotFound => 16,
            TxError::EmptyNamespace => 17,
            TxError::LastAdmin => 18,
            TxError::ValidatorExists => 20,
            TxError::ValidatorNotFound => 21,
            TxError::InvalidPower { .. } => 22,
            TxError::ValidatorChangeTooLarge => 23,
            TxError::InvalidParam(_) => 24,
            TxError::InvalidValidatorKey { .. } => 25,
            TxError::NotValidatorOperator => 26,
            TxError::NodeKeyExists => 27,
            TxError::TooManyValidators { .. } => 28,
            TxError::TotalPowerTooLarge { .. } => 29,
            TxError::ValidatorChangeConflict => 30,
            TxError::RoleNotForEvmAddress(_) => 31,
            TxError::EvmReverted { .. } => 40,
            TxError::EvmHalted(_) => 41,
            TxError::EvmNotExecutable(_) => 42,
            TxError::GasLimitTooHigh { .. } => 43,
            TxError::BlockGasExhausted { .. } => 44,
            TxError::GasPriceTooLow { .. } => 45,
            TxError::EthTxMalformed(_) => 46,
            TxError::FileExists => 50,
            TxError::FileNotFound => 51,
            TxError::FileQuotaExceeded { .. } => 52,
            TxError::FileInvalid(_) => 53,
            TxError::FileWithdrawn => 54,
            TxError::NotFilePublisher => 55,
        }
    }

    pub(crate) fn unauthorized(role: Role) -> TxError {
        TxError::Unauthorized(role.as_str())
    }
}

/// A storage failure or corruption. Not the transaction's fault: the node
/// stops rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("state tree page {0} is missing")]
    MissingPage(Hash),
    #[error("state is corrupt: {0}")]
    Corrupt(String),
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Why a block cannot be executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("transaction {index} ({hash}) is not admissible: {error}")]
    InadmissibleTx {
        index: usize,
        hash: Hash,
        error: TxError,
    },
    #[error("block has {count} transactions; the limit is {max}")]
    TooManyTxs { count: usize, max: usize },
    #[error("block transactions take {bytes} bytes; the limit is {max}")]
    TooManyBytes { bytes: usize, max: usize },
    #[error("transaction {0} appears twice")]
    DuplicateTx(Hash),
    #[error(transparent)]
    Store(#[from] StoreError),
}
