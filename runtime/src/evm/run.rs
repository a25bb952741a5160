//! Running one EVM call or creation.

use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::context_interface::result::{EVMError, ExecutionResult, Output};
use revm::context_interface::transaction::{AccessList, AccessListItem};
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address, Bytes, TxKind, B256, U256};
use revm::state::EvmState;
use revm::{Context, InspectEvm, MainBuilder, MainContext};

use palisade_types::{EvmAddress, Hash};

use super::commit::write_diff;
use super::db::{EvmView, Loaded};
use super::guard::DeployGuard;
use super::reasons;
use super::records::{
    create_address, read_account, write_account, EvmAccount, StateRead, EMPTY_CODE_HASH,
};
use crate::receipt::EvmLog;
use crate::state::Overlay;
use crate::StoreError;

/// The hardfork the chain's EVM follows. Fixed, not revm's default: a new
/// hardfork changes results, so it is a decision of the chain, not of a
/// library upgrade.
pub const SPEC: SpecId = SpecId::OSAKA;

/// The block an EVM transaction runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmEnv {
    /// EIP-155 chain id.
    pub chain_id: u64,
    pub height: u64,
    /// Block time, Unix milliseconds (the EVM sees seconds).
    pub time_ms: u64,
    /// Most gas one transaction may use.
    pub tx_gas_limit: u64,
    /// Most gas one block may use (`max_block_gas`): GASLIMIT, as in the
    /// block's header.
    pub block_gas_limit: u64,
    /// Receives the priority fees (COINBASE).
    pub beneficiary: EvmAddress,
    /// Base fee per gas, burnt: the chain's `min_gas_price`.
    pub base_fee: u64,
}

/// What a transaction calls, or that it creates a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvmTarget {
    Call(EvmAddress),
    Create,
}

/// One EVM transaction, its sender already authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmCall {
    pub caller: EvmAddress,
    pub target: EvmTarget,
    pub value: u128,
    pub data: Vec<u8>,
    pub gas_limit: u64,
    /// Price per gas the sender pays (at least the base fee), with the
    /// part above the base fee going to the beneficiary; for an EIP-1559
    /// transaction its fee cap.
    pub gas_price: u128,
    /// An EIP-1559 transaction's priority fee (its tip).
    pub priority_fee: Option<u128>,
    /// Addresses and slots to warm up first (EIP-2930).
    pub access_list: Vec<(EvmAddress, Vec<[u8; 32]>)>,
    /// Must equal the caller's EVM nonce.
    pub nonce: u64,
}

/// How an executed transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvmStatus {
    Success,
    /// REVERT: the output is the revert data.
    Revert,
    /// Out of gas, an invalid opcode and the like, named by Palisade
    /// (stable across revm versions: receipts carry it).
    Halt(&'static str),
    /// The sender may not create contracts and the transaction tried to:
    /// any creation attempt counts, even one that would have failed or
    /// whose failure the contract would have caught.
    DeployDenied,
}

/// An executed transaction: it is in the block and its sender's nonce
/// moved, whatever the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmOutcome {
    pub status: EvmStatus,
    pub gas_used: u64,
    /// Return data, or revert data.
    pub output: Vec<u8>,
    /// A creation's contract: the one it made, or (when it failed) the
    /// address it would have had.
    pub created: Option<EvmAddress>,
    /// Logs, on success only (a failed call's logs are void).
    pub logs: Vec<EvmLog>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvmError {
    /// The transaction cannot run at all (wrong nonce, gas limit above the
    /// cap or below the intrinsic cost, oversized init code, funds short of
    /// value + gas): nothing changed.
    #[error("EVM transaction not executable: {0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What revm returned, before anything is written.
struct Executed {
    result: ExecutionResult,
    state: EvmState,
    /// The deployer rule refused a creation.
    denied: bool,
    /// The account records revm read.
    loaded: Loaded,
}

/// revm's configuration, block and transaction for `call`. `simulate`: a
/// call or gas estimate (any nonce is accepted), not a transaction.
fn environments(env: &EvmEnv, call: &EvmCall, simulate: bool) -> (CfgEnv, BlockEnv, TxEnv) {
    let mut cfg = CfgEnv::new_with_spec(SPEC);
    cfg.chain_id = env.chain_id;
    cfg.tx_gas_limit_cap = Some(env.tx_gas_limit);
    cfg.disable_nonce_check = simulate;
    let block = BlockEnv {
        number: U256::from(env.height),
        beneficiary: Address::from(env.beneficiary.0),
        timestamp: U256::from(env.time_ms / 1000),
        gas_limit: env.block_gas_limit,
        basefee: env.base_fee,
        difficulty: U256::ZERO,
        // No randomness beacon: PREVRANDAO is zero on every node.
        prevrandao: Some(B256::ZERO),
        ..BlockEnv::default()
    };
    let tx = TxEnv {
        caller: Address::from(call.caller.0),
        kind: match call.target {
            EvmTarget::Call(to) => TxKind::Call(Address::from(to.0)),
            EvmTarget::Create => TxKind::Create,
        },
        value: U256::from(call.value),
        data: Bytes::from(call.data.clone()),
        gas_limit: call.gas_limit,
        gas_price: call.gas_price,
        gas_priority_fee: call.priority_fee,
        // Only the fee rules differ between the types revm is told of.
        tx_type: if call.priority_fee.is_some() {
            2
        } else if call.access_list.is_empty() {
            0
        } else {
            1
        },
        access_list: AccessList(
            call.access_list
                .iter()
                .map(|(a, keys)| AccessListItem {
                    address: Address::from(a.0),
                    storage_keys: keys.iter().map(|k| B256::from(*k)).collect(),
                })
                .collect(),
        ),
        nonce: call.nonce,
        chain_id: Some(env.chain_id),
        ..TxEnv::default()
    };
    (cfg, block, tx)
}

/// Whether the EVM would start `call` on the state `st` reads (revm's own
/// checks before execution: nonce, intrinsic and floor gas, gas caps, fee
/// fields, funds for value and gas, init code size), without running it:
/// what a mempool needs, at a fraction of an execution's cost.
pub fn precheck(st: &impl StateRead, env: &EvmEnv, call: &EvmCall) -> Result<(), EvmError> {
    use revm::handler::{EthFrame, Handler, MainnetHandler};
    let (cfg, block, tx) = environments(env, call, false);
    let mut evm = Context::mainnet()
        .with_ref_db(EvmView::new(st))
        .with_block(block)
        .with_cfg(cfg)
        .with_tx(tx)
        .build_mainnet();
    let handler = MainnetHandler::<_, EVMError<StoreError>, EthFrame>::default();
    match handler.validate(&mut evm) {
        Ok(_) => Ok(()),
        Err(EVMError::Database(e)) => Err(EvmError::Store(e)),
        Err(EVMError::Transaction(e)) => Err(EvmError::Invalid(reasons::invalid(&e))),
        Err(EVMError::Header(_)) => Err(EvmError::Invalid("invalid block environment")),
        Err(EVMError::Custom(_) | EVMError::CustomAny(_)) => {
            Err(EvmError::Invalid("transaction refused by the EVM"))
        }
    }
}

/// Runs `call` on the state `st` reads, writing nothing. `simulate`: a
/// call or gas estimate (any nonce is accepted), not a transaction.
fn execute(
    st: &impl StateRead,
    env: &EvmEnv,
    call: &EvmCall,
    may_deploy: bool,
    simulate: bool,
) -> Result<Executed, EvmError> {
    let (cfg, block, tx) = environments(env, call, simulate);
    let guard = DeployGuard {
        allowed: may_deploy,
        denied: false,
    };
    let mut evm = Context::mainnet()
        .with_ref_db(EvmView::new(st))
        .with_block(block)
        .with_cfg(cfg)
        .build_mainnet_with_inspector(guard);
    let done = match evm.inspect_tx(tx) {
        Ok(done) => done,
        Err(EVMError::Database(e)) => return Err(EvmError::Store(e)),
        Err(EVMError::Transaction(e)) => return Err(EvmError::Invalid(reasons::invalid(&e))),
        Err(EVMError::Header(_)) => return Err(EvmError::Invalid("invalid block environment")),
        Err(EVMError::Custom(_) | EVMError::CustomAny(_)) => {
            return Err(EvmError::Invalid("transaction refused by the EVM"))
        }
    };
    let denied = evm.inspector.denied;
    let loaded = evm.ctx.journaled_state.database.0.loaded.take();
    Ok(Executed {
        result: done.result,
        state: done.state,
        denied,
        loaded,
    })
}

/// The outcome of `call`'s `result`, or of a refused creation. A
/// creation names its address even when it failed, as Ethereum receipts
/// do (the sender's nonce was used either way).
fn outcome(call: &EvmCall, result: ExecutionResult, denied: bool) -> EvmOutcome {
    let gas_used = result.tx_gas_used();
    let would_create = match call.target {
        EvmTarget::Create => Some(create_address(&call.caller, call.nonce)),
        EvmTarget::Call(_) => None,
    };
    let failed = |status, output: Vec<u8>| EvmOutcome {
        status,
        gas_used,
        output,
        created: would_create,
        logs: Vec::new(),
    };
    if denied {
        return failed(EvmStatus::DeployDenied, Vec::new());
    }
    match result {
        ExecutionResult::Success { logs, output, .. } => {
            let (output, created) = match output {
                Output::Call(b) => (b.to_vec(), None),
                Output::Create(b, a) => (b.to_vec(), a.map(|a| EvmAddress(a.0 .0))),
            };
            EvmOutcome {
                status: EvmStatus::Success,
                gas_used,
                output,
                created,
                logs: logs
                    .into_iter()
                    .map(|l| EvmLog {
                        address: EvmAddress(l.address.0 .0),
                        topics: l.data.topics().iter().map(|t| Hash(t.0)).collect(),
                        data: l.data.data.to_vec(),
                    })
                    .collect(),
            }
        }
        ExecutionResult::Revert { output, .. } => failed(EvmStatus::Revert, output.to_vec()),
        ExecutionResult::Halt { reason, .. } => {
            failed(EvmStatus::Halt(reasons::halt(&reason)), Vec::new())
        }
    }
}

/// Runs `call` against `st` and, unless it is not executable, writes what
/// it changed. `may_deploy`: whether the sender holds the right to create
/// contracts (checked at every creation, nested ones included).
pub fn run_evm(
    st: &mut Overlay<'_>,
    env: &EvmEnv,
    call: &EvmCall,
    may_deploy: bool,
) -> Result<EvmOutcome, EvmError> {
    let done = execute(&*st, env, call, may_deploy, false)?;
    if done.denied {
        // Refused as a whole: the sender's nonce moves and it pays for the
        // gas used, nothing else happens.
        bump_nonce(st, &call.caller)?;
        charge_refused(st, env, call, done.result.tx_gas_used())?;
    } else {
        write_diff(st, done.state, &done.loaded)?;
    }
    Ok(outcome(call, done.result, done.denied))
}

/// `call` run on the state `st` reads, as `eth_call` does: nothing is
/// written and the nonce is not checked.
pub fn call_evm(
    st: &impl StateRead,
    env: &EvmEnv,
    call: &EvmCall,
    may_deploy: bool,
) -> Result<EvmOutcome, EvmError> {
    let done = execute(st, env, call, may_deploy, true)?;
    Ok(outcome(call, done.result, done.denied))
}

/// The least gas limit with which `call` succeeds (`eth_estimateGas`), or
/// how it fails with all the gas a transaction may have. A binary search
/// over [`call_evm`]: the gas a successful run used is a lower bound, not
/// the answer, since refunds and the 63/64 rule (EIP-150) need headroom.
pub fn estimate_gas(
    st: &impl StateRead,
    env: &EvmEnv,
    call: &EvmCall,
    may_deploy: bool,
) -> Result<u64, EstimateError> {
    let with = |gas_limit: u64| {
        call_evm(
            st,
            env,
            &EvmCall {
                gas_limit,
                ..call.clone()
            },
            may_deploy,
        )
    };
    // At most the caller's gas limit (as Ethereum nodes cap an estimate by
    // the `gas` asked for), itself at most what a transaction may have.
    let cap = call.gas_limit.min(env.tx_gas_limit);
    let full = with(cap).map_err(EstimateError::Evm)?;
    if full.status != EvmStatus::Success {
        return Err(EstimateError::Fails(full));
    }
    // Invariant: `hi` succeeds; `lo` fails or is below the minimum.
    let (mut lo, mut hi) = (full.gas_used.saturating_sub(1), cap);
    // Usually enough on the first try.
    let guess = full.gas_used.saturating_mul(64) / 63 + 2_300;
    if guess < hi {
        match with(guess) {
            Ok(o) if o.status == EvmStatus::Success => hi = guess,
            Ok(_) | Err(EvmError::Invalid(_)) => lo = guess,
            Err(e @ EvmError::Store(_)) => return Err(EstimateError::Evm(e)),
        }
    }
    // Each step halves the range: at most 24 for a 2^24 cap.
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        match with(mid) {
            Ok(o) if o.status == EvmStatus::Success => hi = mid,
            // Too little gas: out of gas, or below the intrinsic cost.
            Ok(_) | Err(EvmError::Invalid(_)) => lo = mid,
            Err(e @ EvmError::Store(_)) => return Err(EstimateError::Evm(e)),
        }
    }
    Ok(hi)
}

/// Why no gas limit works.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EstimateError {
    #[error(transparent)]
    Evm(EvmError),
    /// It fails even with the most gas a transaction may have: the outcome
    /// says how (revert data included).
    #[error("execution fails: {:?}", .0.status)]
    Fails(EvmOutcome),
}

/// The gas fee of a transaction refused for a creation its sender may not
/// make, taken from the sender and burnt whole (a refused transaction pays
/// no tip): what revm would have charged had it been an ordinary failure,
/// so a refused creation is never a free way to burn gas.
fn charge_refused(
    st: &mut Overlay<'_>,
    env: &EvmEnv,
    call: &EvmCall,
    gas_used: u64,
) -> Result<(), StoreError> {
    let price = match call.priority_fee {
        Some(tip) => call
            .gas_price
            .min(u128::from(env.base_fee).saturating_add(tip)),
        None => call.gas_price,
    };
    let fee = price.saturating_mul(u128::from(gas_used));
    if fee == 0 {
        return Ok(());
    }
    // revm checked the balance covers the whole gas limit at this price.
    let paid = match super::records::read_native(&*st, &call.caller)? {
        Some(native) => {
            let mut a = super::records::read_native_account(&*st, &native)?;
            let paid = fee.min(a.balance);
            a.balance -= paid;
            st.set_account(&native, &a);
            paid
        }
        None => {
            let Some(mut a) = read_account(&*st, &call.caller)? else {
                return Ok(());
            };
            let paid = fee.min(a.balance);
            a.balance -= paid;
            write_account(st, &call.caller, Some(&a));
            paid
        }
    };
    let supply = st
        .supply()?
        .checked_sub(paid)
        .ok_or_else(|| StoreError::Corrupt("supply does not cover a balance".into()))?;
    st.set_supply(supply);
    Ok(())
}

fn bump_nonce(st: &mut Overlay<'_>, a: &EvmAddress) -> Result<(), StoreError> {
    let mut acct = read_account(st, a)?.unwrap_or(EvmAccount {
        balance: 0,
        nonce: 0,
        code_hash: EMPTY_CODE_HASH,
    });
    acct.nonce = acct
        .nonce
        .checked_add(1)
        .ok_or_else(|| StoreError::Corrupt("EVM nonce overflow".into()))?;
    write_account(st, a, Some(&acct));
    Ok(())
}
