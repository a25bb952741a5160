//! Block execution and admission: each transaction's checks (signature,
//! chain, size, role, nonce), its action ([`actions`], the EVM, files), and
//! a block's receipts, writes, post-state root and next validator set.

mod actions;
mod validators;

use std::collections::BTreeSet;

use palisade_types::{
    batch, Action, Address, Amount, ChainId, EvmAddress, Hash, Height, Role, SignedTransaction,
    ValidatorSet,
};

pub use self::validators::to_set;
use crate::applied::{
    evm_applied, evm_env, max_tx_gas, Admit, Applied, BlockContext, NonceRule, MAX_NONCE_GAP,
};
use crate::eth_tx::{admit_eth, apply_eth, precheck_eth, EthAdmit, EthTxInput};
use crate::evm::{self, EvmCall, EvmError, EvmTarget};
use crate::files;
use crate::receipt::{receipts_root, Event, Receipt};
use crate::state::{Account, Overlay, ValidatorInfo};
use crate::store::{commit_writes, StateChanges};
use crate::{BlockError, ChainParams, StateStore, StoreError, TxError};

/// Whether signatures still need checking. Transaction signatures are
/// valid under the cofactored rule of [`palisade_types::batch`], whichever
/// way they are checked, so every choice here gives the same verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signatures {
    /// Verify them (a block's in one batch).
    Verify,
    /// Verify them one at a time (for comparison in benchmarks).
    VerifyEach,
    /// The caller verified them all (for example once at mempool admission,
    /// or in one batch).
    Verified,
}

/// What executing a block produced.
#[derive(Debug, Clone)]
pub struct BlockOutcome {
    pub receipts: Vec<Receipt>,
    pub receipts_root: Hash,
    /// The positions of the transactions execution refused (ascending):
    /// they had no effect, used no nonce, and may still be included later.
    pub refused: Vec<u32>,
    /// Everything to write, including the post-state root.
    pub changes: StateChanges,
    /// Validators for the next height (consensus keys, node keys, power).
    pub next_validators: Vec<ValidatorInfo>,
    pub next_validator_set: ValidatorSet,
}

/// Whether the transaction at `position` ran, given a block's `refused`
/// positions (ascending, as [`BlockOutcome::refused`] and the RPC's lists
/// hold them).
pub fn ran_at(refused: &[u32], position: usize) -> bool {
    u32::try_from(position).map_or(true, |i| refused.binary_search(&i).is_err())
}

/// The state machine of one chain.
#[derive(Debug, Clone)]
pub struct Runtime {
    chain_id: ChainId,
}

/// Largest power of a single validator.
pub const MAX_VALIDATOR_POWER: u64 = 1 << 50;

impl Runtime {
    pub fn new(chain_id: ChainId) -> Runtime {
        Runtime { chain_id }
    }

    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// Mempool admission: everything execution would check, against the
    /// latest committed state, for execution at `height` (the next block).
    /// With the account's next nonce the action itself is also tried
    /// (without effect), so a transaction that would fail is refused here
    /// rather than wasting block space. The outer error is a storage failure.
    /// An EVM action that would revert is admitted (as Ethereum nodes
    /// do: its sender learns why from the receipt); one that would create
    /// a contract its sender may not is refused.
    pub fn check_tx(
        &self,
        store: &dyn StateStore,
        height: Height,
        tx: &SignedTransaction,
        sigs: Signatures,
        nonces: NonceRule,
    ) -> Result<Result<(), TxError>, StoreError> {
        let mut st = Overlay::new(store);
        let params = st.params()?;
        let ctx = BlockContext::from(height);
        let run = |st: &mut Overlay<'_>| -> Result<(), Admit> {
            let acct = self.admit(st, tx, &params, sigs, nonces)?;
            if tx.tx.nonce == acct.nonce {
                let applied = self.apply(st, &ctx, tx, acct, &params, false)?;
                if let Some(e @ TxError::Unauthorized(_)) = applied.failure {
                    return Err(Admit::Tx(e));
                }
            }
            Ok(())
        };
        match run(&mut st) {
            Ok(()) => Ok(Ok(())),
            Err(Admit::Tx(e)) => Ok(Err(e)),
            Err(Admit::Store(e)) => Err(e),
        }
    }

    /// Mempool admission of an Ethereum transaction, as [`Runtime::check_tx`]
    /// for a native one: the checks a block applies, and with the sender's
    /// next EVM nonce a trial run (a revert is admitted, a creation its
    /// sender may not make is not).
    pub fn check_eth_tx(
        &self,
        store: &dyn StateStore,
        height: Height,
        tx: &EthTxInput,
        nonces: NonceRule,
    ) -> Result<Result<(), TxError>, StoreError> {
        let st = Overlay::new(store);
        let params = st.params()?;
        let nonce = match admit_eth(&st, tx, &params, nonces) {
            Ok(n) => n,
            Err(EthAdmit::Tx(e)) => return Ok(Err(e)),
            Err(EthAdmit::Store(e)) => return Err(e),
        };
        // The EVM's own checks, without running it (a run cost as much as
        // executing the transaction, for every admission and re-check).
        if tx.nonce == nonce {
            match precheck_eth(&st, &BlockContext::from(height), &params, tx) {
                Ok(()) => {}
                Err(EthAdmit::Tx(e)) => return Ok(Err(e)),
                Err(EthAdmit::Store(e)) => return Err(e),
            }
        }
        Ok(Ok(()))
    }

    /// Checks that make a transaction admissible at all: chain, size,
    /// signature, a signer that holds some role, and its nonce. Execution
    /// refuses a transaction that fails any of these (it has no effect).
    fn admit(
        &self,
        st: &Overlay<'_>,
        tx: &SignedTransaction,
        params: &ChainParams,
        sigs: Signatures,
        nonces: NonceRule,
    ) -> Result<Account, Admit> {
        if tx.tx.chain_id != self.chain_id {
            return Err(Admit::Tx(TxError::WrongChainId {
                expected: self.chain_id.to_string(),
                found: tx.tx.chain_id.to_string(),
            }));
        }
        let size = tx.encoded_len();
        if size > params.max_tx_bytes as usize {
            return Err(Admit::Tx(TxError::TooLarge {
                size,
                max: params.max_tx_bytes as usize,
            }));
        }
        let acct = st
            .account(&tx.tx.signer)?
            .filter(|a| a.roles != 0)
            .ok_or(Admit::Tx(TxError::UnknownSigner))?;
        let nonce_ok = match nonces {
            NonceRule::Exact => tx.tx.nonce == acct.nonce,
            NonceRule::Window => tx.tx.nonce >= acct.nonce,
        };
        if !nonce_ok {
            return Err(Admit::Tx(TxError::BadNonce {
                expected: acct.nonce,
                got: tx.tx.nonce,
            }));
        }
        if tx.tx.nonce - acct.nonce > MAX_NONCE_GAP {
            return Err(Admit::Tx(TxError::NonceTooFarAhead {
                expected: acct.nonce,
                got: tx.tx.nonce,
            }));
        }
        check_evm_action(&tx.tx.action, &acct, params)?;
        if sigs != Signatures::Verified
            && !batch::verify_cofactored(
                &tx.tx.signer.public_key(),
                &tx.tx.signing_bytes(),
                &tx.signature,
            )
        {
            return Err(Admit::Tx(TxError::BadSignature));
        }
        Ok(acct)
    }

    /// Executes block `block`'s transactions on the state at `root`
    /// (`block`: the height, or the height and time).
    pub fn execute_block(
        &self,
        store: &dyn StateStore,
        root: Hash,
        block: impl Into<BlockContext>,
        txs: &[SignedTransaction],
        sigs: Signatures,
    ) -> Result<BlockOutcome, BlockError> {
        let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
        self.execute_block_hashed(store, root, block, txs, &hashes, sigs)
    }

    /// [`Runtime::execute_block`] with each transaction's hash already
    /// computed (`hashes[i]` is `txs[i].hash()`; missing ones are computed).
    pub fn execute_block_hashed(
        &self,
        store: &dyn StateStore,
        root: Hash,
        block: impl Into<BlockContext>,
        txs: &[SignedTransaction],
        hashes: &[Hash],
        sigs: Signatures,
    ) -> Result<BlockOutcome, BlockError> {
        self.execute_block_full(store, root, block, txs, hashes, sigs, &[])
    }

    /// [`Runtime::execute_block_hashed`] of a block that also carries
    /// Ethereum transactions, which run after the native ones, in order
    /// (their receipts follow the native transactions' receipts).
    #[allow(clippy::too_many_arguments)]
    pub fn execute_block_full(
        &self,
        store: &dyn StateStore,
        root: Hash,
        block: impl Into<BlockContext>,
        txs: &[SignedTransaction],
        hashes: &[Hash],
        sigs: Signatures,
        eth: &[EthTxInput],
    ) -> Result<BlockOutcome, BlockError> {
        let ctx = block.into();
        let mut st = Overlay::new(store);
        let params = st.params()?;
        if let Some(parent) = ctx.height.get().checked_sub(1) {
            st.put(
                evm::keys::block_hash(parent),
                evm::block_hash_record(&ctx.parent_hash.0, parent),
            );
            st.commit_tx();
        }
        let count = txs.len().saturating_add(eth.len());
        let entries = txs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let hash = hashes.get(i).copied().unwrap_or_else(|| t.hash());
                (hash, t.encoded_len())
            })
            .chain(eth.iter().map(|t| (t.hash, t.encoded_len)));
        check_block_bounds(&params, count, entries)?;
        let sigs = verify_all(txs, sigs)?;
        let mut tally = BlockTally::new(params, count);
        self.run_natives(&mut st, &ctx, txs, hashes, sigs, &mut tally)?;
        run_eths(&mut st, &ctx, eth, &mut tally)?;

        // Validator-set changes due at the next height.
        let next = ctx
            .height
            .next()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let validators = validators::apply_due(&mut st, next)?;
        let next_validator_set = to_set(&validators)?;

        let changes = commit_writes(store, root, st.into_writes())?;
        let receipts = tally.receipts;
        Ok(BlockOutcome {
            receipts_root: receipts_root(&receipts),
            receipts,
            refused: tally.refused,
            changes,
            next_validators: validators,
            next_validator_set,
        })
    }

    /// The validator set that decides `height`, as the state `store` holds
    /// it after the block before `height - 1`: its members with the changes
    /// due at `height` applied. Changes wait at least two heights
    /// ([`crate::params::MIN_VALIDATOR_UPDATE_DELAY`]), so executing the
    /// block between cannot change it; a header names it before its own
    /// block is executed (`next_validators_hash`).
    pub fn validators_due(
        &self,
        store: &dyn StateStore,
        height: Height,
    ) -> Result<ValidatorSet, StoreError> {
        let mut st = Overlay::new(store);
        to_set(&validators::apply_due(&mut st, height)?)
    }

    /// Runs the block's native transactions, in order.
    fn run_natives(
        &self,
        st: &mut Overlay<'_>,
        ctx: &BlockContext,
        txs: &[SignedTransaction],
        hashes: &[Hash],
        sigs: Signatures,
        tally: &mut BlockTally,
    ) -> Result<(), BlockError> {
        for (index, tx) in txs.iter().enumerate() {
            let hash = hashes.get(index).copied().unwrap_or_else(|| tx.hash());
            let ran = self.run_native(
                st,
                ctx,
                tx,
                hash,
                &tally.params_now,
                sigs,
                &mut tally.gas_used,
            )?;
            // Parameters may change within the block, but only by
            // SetParam: read them again only after one.
            if matches!(tx.tx.action, Action::SetParam { .. }) {
                tally.params_now = st.params()?;
            }
            tally.push(ran);
        }
        Ok(())
    }

    /// Admits and applies native transaction `tx` (at `index` in the
    /// block, with hash `hash`): its receipt. A transaction this state
    /// does not admit (see [`Runtime::admit`]), or whose gas limit the
    /// block has no room left for, is refused: a receipt with the error
    /// and no effect at all, not even its nonce. Validators vote on a
    /// block before executing it (docs/spec.md, "Deferred execution"), so
    /// admission is a rule of execution, not of block validity.
    #[allow(clippy::too_many_arguments)]
    fn run_native(
        &self,
        st: &mut Overlay<'_>,
        ctx: &BlockContext,
        tx: &SignedTransaction,
        hash: Hash,
        params_now: &ChainParams,
        sigs: Signatures,
        gas_used: &mut u64,
    ) -> Result<Ran, BlockError> {
        let acct = match self.admit(st, tx, params_now, sigs, NonceRule::Exact) {
            Ok(a) => a,
            Err(Admit::Tx(e)) => return Ok(Ran::Refused(refused(hash, &e, None))),
            Err(Admit::Store(s)) => return Err(BlockError::Store(s)),
        };
        // Each EVM transaction's whole gas limit must fit what the
        // block has left, as Ethereum counts it.
        if let Some(limit) = tx.tx.action.evm_gas_limit() {
            let left = params_now.max_block_gas.saturating_sub(*gas_used);
            if limit > left {
                let e = TxError::BlockGasExhausted { left, limit };
                return Ok(Ran::Refused(refused(hash, &e, None)));
            }
        }
        let receipt = match self.apply(st, ctx, tx, acct, params_now, true) {
            Ok(applied) => {
                st.commit_tx();
                applied.receipt(hash, gas_used)
            }
            Err(Admit::Tx(e)) => {
                // No effect but the used nonce.
                st.discard_tx();
                let mut a = acct;
                a.nonce = a.nonce.saturating_add(1);
                st.set_account(&tx.tx.signer, &a);
                st.commit_tx();
                Receipt {
                    tx_hash: hash,
                    code: e.code(),
                    error: e.to_string(),
                    events: Vec::new(),
                    evm: None,
                }
            }
            Err(Admit::Store(s)) => return Err(BlockError::Store(s)),
        };
        Ok(Ran::Done(receipt))
    }

    /// Applies the action (and the nonce bump). Errors leave the tx layer
    /// dirty; the caller discards it. Events are built only when `record`
    /// is set.
    fn apply(
        &self,
        st: &mut Overlay<'_>,
        ctx: &BlockContext,
        tx: &SignedTransaction,
        mut signer: Account,
        params: &ChainParams,
        record: bool,
    ) -> Result<Applied, Admit> {
        signer.nonce = signer.nonce.checked_add(1).ok_or(TxError::Overflow)?;
        let mut a = actions::Act {
            st,
            from: tx.tx.signer,
            signer,
            ctx,
            params,
            record,
        };
        apply_action(&mut a, &tx.tx.action)
    }
}

/// Applies one action: native ones in [`actions`], EVM ones in the EVM as
/// the signer's EVM address.
fn apply_action(a: &mut actions::Act<'_, '_>, action: &Action) -> Result<Applied, Admit> {
    let events = match action {
        Action::Transfer { to, amount } => actions::transfer(a, to, *amount)?,
        Action::Mint { to, amount } => actions::mint(a, to, *amount)?,
        Action::Burn { amount } => actions::burn(a, *amount)?,
        Action::Put {
            namespace,
            key,
            value,
        } => actions::put(a, namespace, key, value)?,
        Action::Delete { namespace, key } => actions::delete(a, namespace, key)?,
        Action::GrantRole { account, role } => actions::grant_role(a, account, *role)?,
        Action::RevokeRole { account, role } => actions::revoke_role(a, account, *role)?,
        Action::GrantEvmRole { address, role } => {
            actions::set_evm_role_of(a, address, *role, true)?
        }
        Action::RevokeEvmRole { address, role } => {
            actions::set_evm_role_of(a, address, *role, false)?
        }
        Action::AddValidator {
            consensus_key,
            node_key,
            power,
        } => actions::add_validator(a, consensus_key, node_key, *power)?,
        Action::RemoveValidator { consensus_key } => actions::remove_validator(a, consensus_key)?,
        Action::SetValidatorPower {
            consensus_key,
            power,
        } => actions::set_validator_power(a, consensus_key, *power)?,
        Action::SetParam { param } => actions::set_param(a, param)?,
        Action::FilePublish {
            root,
            size,
            name,
            media_type,
            readers,
            min_replicas,
        } => {
            a.need(Role::Member)?;
            a.save_signer();
            let p = files::Publish {
                root,
                size: *size,
                name,
                media_type,
                readers,
                min_replicas: *min_replicas,
            };
            files::publish(a.st, &a.from, a.ctx.height, p, a.params)?
        }
        Action::FileUnpublish { root } => {
            a.need(Role::Member).or_else(|_| a.need(Role::Admin))?;
            a.save_signer();
            files::unpublish(a.st, &a.from, &a.signer, a.ctx.height, root)?
        }
        Action::EvmCall {
            to,
            value,
            data,
            gas_limit,
        } => {
            a.save_signer();
            let target = EvmTarget::Call(*to);
            return native_evm(a, target, *value, data, *gas_limit);
        }
        Action::EvmCreate {
            value,
            code,
            gas_limit,
        } => {
            a.save_signer();
            return native_evm(a, EvmTarget::Create, *value, code, *gas_limit);
        }
    };
    Ok(events.into())
}

/// What makes an EVM action inadmissible (execution refuses it):
/// a sender without `member`, a creation by one without `deployer`, a gas
/// limit above the cap. The rest (gas below the intrinsic cost, funds) is
/// found by running it.
fn check_evm_action(action: &Action, acct: &Account, params: &ChainParams) -> Result<(), TxError> {
    let Some(limit) = action.evm_gas_limit() else {
        return Ok(());
    };
    if !acct.has(Role::Member) {
        return Err(TxError::unauthorized(Role::Member));
    }
    if matches!(action, Action::EvmCreate { .. }) && !acct.has(Role::Deployer) {
        return Err(TxError::unauthorized(Role::Deployer));
    }
    let max = max_tx_gas(params);
    if limit > max {
        return Err(TxError::GasLimitTooHigh { limit, max });
    }
    Ok(())
}

/// Runs a native account's `evm_call` or `evm_create` as its EVM address,
/// paying the base fee per gas. The native nonce was bumped by the caller;
/// the EVM nonce moves in the EVM.
fn native_evm(
    a: &mut actions::Act<'_, '_>,
    target: EvmTarget,
    value: Amount,
    data: &[u8],
    gas_limit: u64,
) -> Result<Applied, Admit> {
    let (st, params) = (&mut *a.st, a.params);
    let caller = evm::evm_address(&a.from);
    let nonce = evm::read_account(&*st, &caller)?.map_or(0, |a| a.nonce);
    let env = evm_env(a.ctx, params);
    let call = EvmCall {
        caller,
        target,
        value,
        data: data.to_vec(),
        gas_limit,
        gas_price: params.min_gas_price,
        priority_fee: None,
        access_list: Vec::new(),
        nonce,
    };
    let outcome = match evm::run_evm(st, &env, &call, a.signer.has(Role::Deployer)) {
        Ok(o) => o,
        Err(EvmError::Store(e)) => return Err(Admit::Store(e)),
        Err(EvmError::Invalid(why)) => return Err(TxError::EvmNotExecutable(why).into()),
    };
    Ok(evm_applied(outcome))
}

/// The account at `a`, or a new one: a new account's EVM address is
/// recorded (`evm/native/`), so the EVM sees its balance from then on.
/// Whatever that address received or was granted before the account
/// existed becomes the account's: its EVM balance moves into the native
/// balance (the supply is unchanged) and its roles join the account's.
fn account_or_new(st: &mut Overlay<'_>, a: &Address) -> Result<Account, StoreError> {
    if let Some(acct) = st.account(a)? {
        return Ok(acct);
    }
    let e = evm::evm_address(a);
    st.put(evm::keys::native(&e), a.as_bytes().to_vec());
    let mut acct = Account::default();
    if let Some(mut record) = evm::read_account(&*st, &e)? {
        acct.balance = record.balance;
        record.balance = 0;
        let key = evm::keys::account(&e);
        if record.nonce != 0 || record.code_hash != evm::EMPTY_CODE_HASH {
            st.put(key, palisade_types::encode(&record));
        } else {
            st.delete(key);
        }
    }
    let roles_key = evm::keys::roles(&e);
    if let Some(bits) = st.get(&roles_key)? {
        acct.roles |= bits.first().copied().unwrap_or(0);
        st.delete(roles_key);
    }
    Ok(acct)
}

/// Grants or revokes an EVM role: on the native account behind the
/// address, or on the address itself.
fn set_evm_role(
    st: &mut Overlay<'_>,
    address: &EvmAddress,
    role: Role,
    grant: bool,
) -> Result<(), StoreError> {
    if let Some(native) = evm::read_native(&*st, address)? {
        let mut a = account_or_new(st, &native)?;
        if grant {
            a.grant(role);
        } else {
            a.revoke(role);
        }
        st.set_account(&native, &a);
        return Ok(());
    }
    let mut roles = evm::read_roles(&*st, address)?;
    let bit = 1u8 << role as u8;
    if grant {
        roles |= bit;
    } else {
        roles &= !bit;
    }
    let key = evm::keys::roles(address);
    if roles == 0 {
        st.delete(key);
    } else {
        st.put(key, vec![roles]);
    }
    Ok(())
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

fn ev(record: bool, event: impl FnOnce() -> Event) -> Vec<Event> {
    if record {
        vec![event()]
    } else {
        Vec::new()
    }
}

fn nonzero(amount: u128) -> Result<(), TxError> {
    if amount == 0 {
        return Err(TxError::ZeroAmount);
    }
    Ok(())
}

fn debit(a: &mut Account, amount: u128) -> Result<(), TxError> {
    a.balance = a
        .balance
        .checked_sub(amount)
        .ok_or(TxError::InsufficientFunds {
            balance: a.balance,
            needed: amount,
        })?;
    Ok(())
}

/// Checks every native signature of the block as one batch, unless they
/// were checked before; what the transactions may then be run as.
fn verify_all(txs: &[SignedTransaction], sigs: Signatures) -> Result<Signatures, BlockError> {
    if sigs != Signatures::Verify {
        return Ok(sigs);
    }
    if let Err(index) = batch::verify_transactions(txs) {
        let hash = txs
            .get(index)
            .map(SignedTransaction::hash)
            .unwrap_or_default();
        return Err(BlockError::InadmissibleTx {
            index,
            hash,
            error: TxError::BadSignature,
        });
    }
    Ok(Signatures::Verified)
}

/// Runs the block's Ethereum transactions, after its `natives` native ones.
/// One this state does not admit, or that the block has no gas left for,
/// is refused as in [`Runtime::run_native`]: a receipt, no effect.
fn run_eths(
    st: &mut Overlay<'_>,
    ctx: &BlockContext,
    eth: &[EthTxInput],
    tally: &mut BlockTally,
) -> Result<(), BlockError> {
    for tx in eth {
        let hash = tx.hash;
        let ran = match run_eth(st, ctx, tx, tally) {
            Ok(r) => Ran::Done(r),
            Err(EthAdmit::Tx(e)) => {
                st.discard_tx();
                Ran::Refused(refused(hash, &e, Some(tx)))
            }
            Err(EthAdmit::Store(s)) => return Err(BlockError::Store(s)),
        };
        tally.push(ran);
    }
    Ok(())
}

/// Admits and applies one Ethereum transaction.
fn run_eth(
    st: &mut Overlay<'_>,
    ctx: &BlockContext,
    tx: &EthTxInput,
    tally: &mut BlockTally,
) -> Result<Receipt, EthAdmit> {
    admit_eth(st, tx, &tally.params_now, NonceRule::Exact)?;
    let left = tally
        .params_now
        .max_block_gas
        .saturating_sub(tally.gas_used);
    if tx.gas_limit > left {
        return Err(EthAdmit::Tx(TxError::BlockGasExhausted {
            left,
            limit: tx.gas_limit,
        }));
    }
    let applied = apply_eth(st, ctx, &tally.params_now, tx)?;
    st.commit_tx();
    Ok(applied.receipt(tx.hash, &mut tally.gas_used))
}

/// The receipt of a transaction execution refused: its error, no events,
/// no gas used (an Ethereum transaction's receipt says so, with no
/// contract created and no logs).
fn refused(hash: Hash, e: &TxError, eth: Option<&EthTxInput>) -> Receipt {
    Receipt {
        tx_hash: hash,
        code: e.code(),
        error: e.to_string(),
        events: Vec::new(),
        evm: eth.map(|_| crate::receipt::EvmReceipt {
            gas_used: 0,
            contract_address: None,
            logs: Vec::new(),
            output: Vec::new(),
        }),
    }
}

/// The bounds a block's transactions must keep under `params` (the
/// state before the block): at most `max_block_txs` of them, at most
/// `max_block_bytes` of them together, none twice. The block holds `count`
/// transactions; `txs` gives each one's hash and encoded length, in block
/// order. A validator checks these before it votes: they need no execution.
pub fn check_block_bounds(
    params: &ChainParams,
    count: usize,
    txs: impl IntoIterator<Item = (Hash, usize)>,
) -> Result<(), BlockError> {
    if count > params.max_block_txs as usize {
        return Err(BlockError::TooManyTxs {
            count,
            max: params.max_block_txs as usize,
        });
    }
    let max = params.max_block_bytes as usize;
    let mut seen = BTreeSet::new();
    let mut bytes = 0usize;
    for (hash, len) in txs {
        if !seen.insert(hash) {
            return Err(BlockError::DuplicateTx(hash));
        }
        bytes = bytes.saturating_add(len);
        if bytes > max {
            return Err(BlockError::TooManyBytes { bytes, max });
        }
    }
    Ok(())
}

/// A transaction's receipt, and whether it ran or was refused.
enum Ran {
    Done(Receipt),
    Refused(Receipt),
}

/// What a block's execution accumulates over its transactions.
struct BlockTally {
    /// The parameters now (a SetParam changes them for what follows).
    params_now: ChainParams,
    gas_used: u64,
    receipts: Vec<Receipt>,
    refused: Vec<u32>,
}

impl BlockTally {
    fn new(params: ChainParams, txs: usize) -> BlockTally {
        BlockTally {
            params_now: params,
            gas_used: 0,
            receipts: Vec::with_capacity(txs),
            refused: Vec::new(),
        }
    }

    fn push(&mut self, ran: Ran) {
        let receipt = match ran {
            Ran::Done(r) => r,
            Ran::Refused(r) => {
                // A block holds at most `max_block_txs` (< 2^32).
                self.refused
                    .push(u32::try_from(self.receipts.len()).unwrap_or(u32::MAX));
                r
            }
        };
        self.receipts.push(receipt);
    }
}
