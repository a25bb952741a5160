//! What applying one transaction gives (its events, its EVM receipt, or
//! why it is refused), and the block it applies in: shared by the native
//! actions ([`crate::execute`]), Ethereum transactions ([`crate::eth_tx`])
//! and shared files ([`crate::files`]).

use palisade_types::{EvmAddress, Hash, Height, Role};

use crate::evm::{self, EvmEnv, EvmStatus};
use crate::params::MAX_TX_GAS;
use crate::receipt::{Event, EvmReceipt, Receipt};
use crate::{ChainParams, StoreError, TxError};

/// How far ahead of an account's nonce the mempool accepts transactions.
pub const MAX_NONCE_GAP: u64 = 1_024;

/// Which nonces a check accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceRule {
    /// Exactly the account's next nonce (block execution).
    Exact,
    /// The next nonce or up to [`MAX_NONCE_GAP`] beyond it (mempool: later
    /// nonces wait for earlier ones).
    Window,
}

/// The block a transaction runs in, as the EVM sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockContext {
    pub height: Height,
    /// The header's time, Unix milliseconds (TIMESTAMP is its seconds).
    pub time_ms: u64,
    /// The previous block's hash (the genesis hash for block 1): recorded
    /// for BLOCKHASH before the block's transactions run.
    pub parent_hash: Hash,
}

impl From<Height> for BlockContext {
    /// A block at `height` with time zero (tests, and mempool checks whose
    /// verdict no contract's view of the time may change: a revert is not
    /// a refusal).
    fn from(height: Height) -> BlockContext {
        BlockContext {
            height,
            time_ms: 0,
            parent_hash: Hash::ZERO,
        }
    }
}

/// What a transaction's action did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub(crate) events: Vec<Event>,
    pub(crate) evm: Option<EvmReceipt>,
    /// It ran and failed (an EVM revert, halt or refused creation): its
    /// nonces (and gas fee) are used, nothing else changed, and its
    /// receipt carries this error.
    pub(crate) failure: Option<TxError>,
}

impl Applied {
    /// The receipt of transaction `hash`, adding its EVM gas to the
    /// block's `gas_used`.
    pub(crate) fn receipt(self, hash: Hash, gas_used: &mut u64) -> Receipt {
        if let Some(e) = &self.evm {
            *gas_used = gas_used.saturating_add(e.gas_used);
        }
        let (code, error) = self
            .failure
            .map_or((0, String::new()), |e| (e.code(), e.to_string()));
        Receipt {
            tx_hash: hash,
            code,
            error,
            events: self.events,
            evm: self.evm,
        }
    }
}

impl From<Vec<Event>> for Applied {
    fn from(events: Vec<Event>) -> Applied {
        Applied {
            events,
            ..Applied::default()
        }
    }
}

/// Most bytes of an EVM transaction's output (return or revert data) its
/// receipt keeps: enough for any revert reason or custom error worth
/// reading; calls that return more are read with `eth_call`.
pub const MAX_RECEIPT_OUTPUT: usize = 4096;

/// Most gas one transaction may use under `params`.
pub fn max_tx_gas(params: &ChainParams) -> u64 {
    MAX_TX_GAS.min(params.max_block_gas)
}

/// The EVM environment of a block under `params`.
pub fn evm_env(ctx: &BlockContext, params: &ChainParams) -> EvmEnv {
    EvmEnv {
        chain_id: params.evm_chain_id,
        height: ctx.height.get(),
        time_ms: ctx.time_ms,
        tx_gas_limit: max_tx_gas(params),
        block_gas_limit: params.max_block_gas,
        // Fees above the base fee go to no one's key: gas on a
        // permissioned chain pays for nothing a proposer provides.
        beneficiary: EvmAddress::default(),
        // `validate` keeps it within 64 bits.
        base_fee: u64::try_from(params.min_gas_price).unwrap_or(u64::MAX),
    }
}

/// A receipt's part of an executed EVM transaction.
pub(crate) fn evm_applied(o: evm::EvmOutcome) -> Applied {
    let failure = match o.status {
        EvmStatus::Success => None,
        EvmStatus::Revert => Some(TxError::EvmReverted {
            reason: evm::revert_reason(&o.output),
        }),
        EvmStatus::Halt(why) => Some(TxError::EvmHalted(why)),
        EvmStatus::DeployDenied => Some(TxError::unauthorized(Role::Deployer)),
    };
    let mut output = o.output;
    output.truncate(MAX_RECEIPT_OUTPUT);
    Applied {
        events: Vec::new(),
        evm: Some(EvmReceipt {
            gas_used: o.gas_used,
            contract_address: o.created,
            logs: o.logs,
            output,
        }),
        failure,
    }
}

/// Admission failure: the transaction's fault, or the store's.
#[derive(Debug)]
pub(crate) enum Admit {
    Tx(TxError),
    Store(StoreError),
}

impl From<TxError> for Admit {
    fn from(e: TxError) -> Admit {
        Admit::Tx(e)
    }
}

impl From<StoreError> for Admit {
    fn from(e: StoreError) -> Admit {
        Admit::Store(e)
    }
}
