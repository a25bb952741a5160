//! Ethereum transactions (EIP-2718 bytes signed with secp256k1) in a block:
//! admitted and executed by the rules of the chain's EVM, their sender the
//! 20-byte address recovered from the signature.
//!
//! The runtime takes them decoded and with their sender recovered (the
//! node does both once per transaction, `palisade-ethtx`, and caches the
//! result like its ed25519 verdicts); everything else is checked here, on
//! the block's state, the same on every node.

use palisade_types::{EvmAddress, Hash, Role};

use crate::applied::{
    evm_applied, evm_env, max_tx_gas, Applied, BlockContext, NonceRule, MAX_NONCE_GAP,
};
use crate::evm::{self, EvmCall, EvmError, EvmTarget};
use crate::state::Overlay;
use crate::{ChainParams, StoreError, TxError};

/// An Ethereum transaction, decoded and its sender recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthTxInput {
    /// keccak256 of its bytes: its id.
    pub hash: Hash,
    /// Length of its bytes.
    pub encoded_len: usize,
    pub sender: EvmAddress,
    /// The EIP-155 chain id it was signed for.
    pub chain_id: u64,
    pub nonce: u64,
    pub gas_limit: u64,
    /// Legacy and EIP-2930: the gas price; EIP-1559: the fee cap.
    pub max_fee_per_gas: u128,
    /// EIP-1559 only.
    pub max_priority_fee_per_gas: Option<u128>,
    /// `None` creates a contract.
    pub to: Option<EvmAddress>,
    pub value: u128,
    pub data: Vec<u8>,
    pub access_list: Vec<(EvmAddress, Vec<[u8; 32]>)>,
}

/// Why an Ethereum transaction was not admitted, or the store failed.
pub(crate) enum EthAdmit {
    Tx(TxError),
    Store(StoreError),
}

impl From<TxError> for EthAdmit {
    fn from(e: TxError) -> EthAdmit {
        EthAdmit::Tx(e)
    }
}

impl From<StoreError> for EthAdmit {
    fn from(e: StoreError) -> EthAdmit {
        EthAdmit::Store(e)
    }
}

/// The checks that make an Ethereum transaction admissible (execution
/// refuses one that fails them, without effect): its chain, size, sender's
/// roles (`member`; `deployer` to create), nonce, gas limit and price.
/// Returns the sender's EVM nonce.
pub(crate) fn admit_eth(
    st: &Overlay<'_>,
    tx: &EthTxInput,
    params: &ChainParams,
    nonces: NonceRule,
) -> Result<u64, EthAdmit> {
    if tx.chain_id != params.evm_chain_id {
        return Err(TxError::WrongChainId {
            expected: params.evm_chain_id.to_string(),
            found: tx.chain_id.to_string(),
        }
        .into());
    }
    if tx.encoded_len > params.max_tx_bytes as usize {
        return Err(TxError::TooLarge {
            size: tx.encoded_len,
            max: params.max_tx_bytes as usize,
        }
        .into());
    }
    let roles = evm::read_roles(st, &tx.sender)?;
    let has = |r: Role| roles & (1 << r as u8) != 0;
    if !has(Role::Member) {
        return Err(TxError::unauthorized(Role::Member).into());
    }
    if tx.to.is_none() && !has(Role::Deployer) {
        return Err(TxError::unauthorized(Role::Deployer).into());
    }
    let nonce = evm::read_account(st, &tx.sender)?.map_or(0, |a| a.nonce);
    let nonce_ok = match nonces {
        NonceRule::Exact => tx.nonce == nonce,
        NonceRule::Window => tx.nonce >= nonce,
    };
    if !nonce_ok {
        return Err(TxError::BadNonce {
            expected: nonce,
            got: tx.nonce,
        }
        .into());
    }
    if tx.nonce - nonce > MAX_NONCE_GAP {
        return Err(TxError::NonceTooFarAhead {
            expected: nonce,
            got: tx.nonce,
        }
        .into());
    }
    let max = max_tx_gas(params);
    if tx.gas_limit > max {
        return Err(TxError::GasLimitTooHigh {
            limit: tx.gas_limit,
            max,
        }
        .into());
    }
    if tx.max_fee_per_gas < params.min_gas_price {
        return Err(TxError::GasPriceTooLow {
            price: tx.max_fee_per_gas,
            min: params.min_gas_price,
        }
        .into());
    }
    Ok(nonce)
}

/// Runs an admitted Ethereum transaction. One the EVM will not start
/// (funds short of value plus gas, gas below the intrinsic cost) is
/// inadmissible: unlike a native transaction it has no other nonce to use.
pub(crate) fn apply_eth(
    st: &mut Overlay<'_>,
    ctx: &BlockContext,
    params: &ChainParams,
    tx: &EthTxInput,
) -> Result<Applied, EthAdmit> {
    let may_deploy = evm::read_roles(&*st, &tx.sender)? & (1 << Role::Deployer as u8) != 0;
    match evm::run_evm(st, &evm_env(ctx, params), &eth_call(tx), may_deploy) {
        Ok(outcome) => Ok(evm_applied(outcome)),
        Err(EvmError::Store(e)) => Err(EthAdmit::Store(e)),
        Err(EvmError::Invalid(why)) => Err(TxError::EvmNotExecutable(why).into()),
    }
}

/// Whether the EVM would start an admitted transaction whose nonce is the
/// sender's next, without running it: the checks [`apply_eth`] would fail
/// it on (funds, intrinsic gas, fee fields). A mempool's check; a call
/// that reverts or a factory's refused creation is still admissible (it
/// pays for its gas in the block).
pub(crate) fn precheck_eth(
    st: &Overlay<'_>,
    ctx: &BlockContext,
    params: &ChainParams,
    tx: &EthTxInput,
) -> Result<(), EthAdmit> {
    match evm::precheck(st, &evm_env(ctx, params), &eth_call(tx)) {
        Ok(()) => Ok(()),
        Err(EvmError::Store(e)) => Err(EthAdmit::Store(e)),
        Err(EvmError::Invalid(why)) => Err(TxError::EvmNotExecutable(why).into()),
    }
}

fn eth_call(tx: &EthTxInput) -> EvmCall {
    EvmCall {
        caller: tx.sender,
        target: tx.to.map_or(EvmTarget::Create, EvmTarget::Call),
        value: tx.value,
        data: tx.data.clone(),
        gas_limit: tx.gas_limit,
        gas_price: tx.max_fee_per_gas,
        priority_fee: tx.max_priority_fee_per_gas,
        access_list: tx.access_list.clone(),
        nonce: tx.nonce,
    }
}
