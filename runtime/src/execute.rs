use std::collections::{BTreeMap, BTreeSet};

use palisade_types::limits::MAX_VALIDATORS;
use palisade_types::{
    batch, Action, Address, Amount, ChainId, EvmAddress, Hash, Height, Param, PublicKey, Role,
    SignedTransaction, Validator, ValidatorSet, MAX_TOTAL_POWER,
};

use crate::eth_tx::{admit_eth, apply_eth, precheck_eth, EthAdmit, EthTxInput};
use crate::evm::{self, EvmCall, EvmEnv, EvmError, EvmStatus, EvmTarget};
use crate::files;
use crate::params::{MAX_TX_GAS, MAX_VALIDATOR_UPDATE_DELAY};
use crate::receipt::{receipts_root, Event, EvmReceipt, Receipt};
use crate::state::{Account, AppliedChanges, Overlay, ValidatorChange, ValidatorInfo};
use crate::store::{commit_writes, StateChanges};
use crate::{BlockError, ChainParams, StateStore, StoreError, TxError};

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
    /// Everything to write, including the post-state root.
    pub changes: StateChanges,
    /// Validators for the next height (consensus keys, node keys, power).
    pub next_validators: Vec<ValidatorInfo>,
    pub next_validator_set: ValidatorSet,
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
    events: Vec<Event>,
    evm: Option<EvmReceipt>,
    /// It ran and failed (an EVM revert, halt or refused creation): its
    /// nonces (and gas fee) are used, nothing else changed, and its
    /// receipt carries this error.
    failure: Option<TxError>,
}

impl Applied {
    /// The receipt of transaction `hash`, adding its EVM gas to the
    /// block's `gas_used`.
    fn receipt(self, hash: Hash, gas_used: &mut u64) -> Receipt {
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

/// The state machine of one chain.
#[derive(Debug, Clone)]
pub struct Runtime {
    chain_id: ChainId,
}

/// Most bytes of an EVM transaction's output (return or revert data) its
/// receipt keeps: enough for any revert reason or custom error worth
/// reading; calls that return more are read with `eth_call`.
pub const MAX_RECEIPT_OUTPUT: usize = 4096;

/// Largest power of a single validator.
pub const MAX_VALIDATOR_POWER: u64 = 1 << 50;

impl Runtime {
    pub fn new(chain_id: ChainId) -> Runtime {
        Runtime { chain_id }
    }

    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// Mempool admission: everything a block would check, against the
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
    /// signature, a signer that holds some role, and its nonce. A block
    /// containing a transaction that fails any of these is invalid.
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
        let height = ctx.height;
        let mut st = Overlay::new(store);
        let params = st.params()?;
        if let Some(parent) = height.get().checked_sub(1) {
            st.put(
                evm::keys::block_hash(parent),
                evm::block_hash_record(&ctx.parent_hash.0, parent),
            );
            st.commit_tx();
        }
        let count = txs.len().saturating_add(eth.len());
        if count > params.max_block_txs as usize {
            return Err(BlockError::TooManyTxs {
                count,
                max: params.max_block_txs as usize,
            });
        }
        let mut sigs = sigs;
        if sigs == Signatures::Verify {
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
            sigs = Signatures::Verified;
        }
        let mut seen = BTreeSet::new();
        let mut bytes = 0usize;
        let mut receipts = Vec::with_capacity(txs.len());
        // Parameters may change within the block, but only by SetParam:
        // read them again only after one.
        let mut params_now = params;
        let mut gas_used: u64 = 0;
        for (index, tx) in txs.iter().enumerate() {
            let hash = hashes.get(index).copied().unwrap_or_else(|| tx.hash());
            if !seen.insert(hash) {
                return Err(BlockError::DuplicateTx(hash));
            }
            bytes = bytes.saturating_add(tx.encoded_len());
            if bytes > params.max_block_bytes as usize {
                return Err(BlockError::TooManyBytes {
                    bytes,
                    max: params.max_block_bytes as usize,
                });
            }
            let inadmissible = |e| match e {
                Admit::Tx(error) => BlockError::InadmissibleTx { index, hash, error },
                Admit::Store(s) => BlockError::Store(s),
            };
            let acct = self
                .admit(&st, tx, &params_now, sigs, NonceRule::Exact)
                .map_err(inadmissible)?;
            // Each EVM transaction's whole gas limit must fit what the
            // block has left, as Ethereum counts it.
            if let Some(limit) = evm_gas_limit(&tx.tx.action) {
                let left = params_now.max_block_gas.saturating_sub(gas_used);
                if limit > left {
                    return Err(inadmissible(Admit::Tx(TxError::BlockGasExhausted {
                        left,
                        limit,
                    })));
                }
            }
            let receipt = match self.apply(&mut st, &ctx, tx, acct, &params_now, true) {
                Ok(applied) => {
                    st.commit_tx();
                    applied.receipt(hash, &mut gas_used)
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
            if matches!(tx.tx.action, Action::SetParam { .. }) {
                params_now = st.params()?;
            }
            receipts.push(receipt);
        }
        for (i, tx) in eth.iter().enumerate() {
            let index = txs.len() + i;
            let hash = tx.hash;
            let inadmissible = |e| match e {
                EthAdmit::Tx(error) => BlockError::InadmissibleTx { index, hash, error },
                EthAdmit::Store(s) => BlockError::Store(s),
            };
            if !seen.insert(hash) {
                return Err(BlockError::DuplicateTx(hash));
            }
            bytes = bytes.saturating_add(tx.encoded_len);
            if bytes > params.max_block_bytes as usize {
                return Err(BlockError::TooManyBytes {
                    bytes,
                    max: params.max_block_bytes as usize,
                });
            }
            admit_eth(&st, tx, &params_now, NonceRule::Exact).map_err(inadmissible)?;
            let left = params_now.max_block_gas.saturating_sub(gas_used);
            if tx.gas_limit > left {
                return Err(inadmissible(EthAdmit::Tx(TxError::BlockGasExhausted {
                    left,
                    limit: tx.gas_limit,
                })));
            }
            let applied = apply_eth(&mut st, &ctx, &params_now, tx).map_err(inadmissible)?;
            st.commit_tx();
            receipts.push(applied.receipt(hash, &mut gas_used));
        }

        // Validator-set changes due at the next height.
        let next = height
            .next()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut validators = st.validators()?;
        let due = st.pending(next)?;
        // Written only when something is due: rewriting unchanged values
        // would leave the root as it is but cost tree updates and writes,
        // and make every block look as if it touched the validator set.
        if !due.is_empty() {
            let mut set = SimSet::new(&validators);
            let total_before = set.total;
            let mut moved: u128 = 0;
            for c in &due {
                // Scheduling checked every change against the whole
                // schedule, so none fails here; one that did (state from
                // before the schedule index) is skipped, as it always was.
                if let Ok(m) = set.apply(c) {
                    moved += m;
                }
            }
            validators = set.into_list();
            st.set_pending(next, &Vec::new());
            let mut heights = st.pending_heights()?;
            heights.retain(|h| *h != next);
            st.set_pending_heights(&heights);
            let mut history = st.validator_history()?;
            history
                .retain(|e| e.height.get().saturating_add(MAX_VALIDATOR_UPDATE_DELAY) > next.get());
            history.push(AppliedChanges {
                height: next,
                moved: u64::try_from(moved).unwrap_or(u64::MAX),
                total_before: u64::try_from(total_before).unwrap_or(u64::MAX),
            });
            st.set_validator_history(&history);
            st.set_validators(&validators);
            st.commit_tx();
        }
        let next_validator_set = to_set(&validators)?;

        let changes = commit_writes(store, root, st.into_writes())?;
        Ok(BlockOutcome {
            receipts_root: receipts_root(&receipts),
            receipts,
            changes,
            next_validators: validators,
            next_validator_set,
        })
    }

    /// Applies the action (and the nonce bump). Errors leave the tx layer
    /// dirty; the caller discards it.
    /// Events are built only when `record` is set: a mempool check throws
    /// them away, and formatting them is a good part of a transfer's cost.
    fn apply(
        &self,
        st: &mut Overlay<'_>,
        ctx: &BlockContext,
        tx: &SignedTransaction,
        mut signer: Account,
        params: &ChainParams,
        record: bool,
    ) -> Result<Applied, Admit> {
        let height = ctx.height;
        let from = tx.tx.signer;
        signer.nonce = signer.nonce.checked_add(1).ok_or(TxError::Overflow)?;
        let need = |a: &Account, r: Role| {
            if a.has(r) {
                Ok(())
            } else {
                Err(TxError::unauthorized(r))
            }
        };
        let events = match &tx.tx.action {
            Action::Transfer { to, amount } => {
                need(&signer, Role::Member)?;
                nonzero(*amount)?;
                debit(&mut signer, *amount)?;
                if *to == from {
                    signer.balance = signer
                        .balance
                        .checked_add(*amount)
                        .ok_or(TxError::Overflow)?;
                    st.set_account(&from, &signer);
                } else {
                    st.set_account(&from, &signer);
                    let mut dest = account_or_new(st, to)?;
                    dest.balance = dest.balance.checked_add(*amount).ok_or(TxError::Overflow)?;
                    st.set_account(to, &dest);
                }
                ev(record, || {
                    Event::new(
                        "transfer",
                        &[
                            ("from", from.to_string()),
                            ("to", to.to_string()),
                            ("amount", amount.to_string()),
                        ],
                    )
                })
            }
            Action::Mint { to, amount } => {
                need(&signer, Role::Minter)?;
                nonzero(*amount)?;
                let supply = st.supply()?.checked_add(*amount).ok_or(TxError::Overflow)?;
                st.set_account(&from, &signer);
                let mut dest = account_or_new(st, to)?;
                dest.balance = dest.balance.checked_add(*amount).ok_or(TxError::Overflow)?;
                st.set_account(to, &dest);
                st.set_supply(supply);
                ev(record, || {
                    Event::new(
                        "mint",
                        &[("to", to.to_string()), ("amount", amount.to_string())],
                    )
                })
            }
            Action::Burn { amount } => {
                need(&signer, Role::Member)?;
                nonzero(*amount)?;
                debit(&mut signer, *amount)?;
                // Supply is the sum of all balances, so it covers any balance.
                let supply = st.supply()?.checked_sub(*amount).ok_or(TxError::Overflow)?;
                st.set_account(&from, &signer);
                st.set_supply(supply);
                ev(record, || {
                    Event::new(
                        "burn",
                        &[("from", from.to_string()), ("amount", amount.to_string())],
                    )
                })
            }
            Action::Put {
                namespace,
                key,
                value,
            } => {
                need(&signer, Role::Member)?;
                if namespace.is_empty() {
                    return Err(TxError::EmptyNamespace.into());
                }
                if value.len() > params.max_value_bytes as usize {
                    return Err(TxError::ValueTooLarge {
                        size: value.len(),
                        max: params.max_value_bytes as usize,
                    }
                    .into());
                }
                match st.namespace_owner(namespace)? {
                    Some(owner) if owner != from => return Err(TxError::NamespaceOwned.into()),
                    Some(_) => {}
                    None => st.set_namespace_owner(namespace, &from),
                }
                st.set_account(&from, &signer);
                st.put(crate::state::keys::data(namespace, key), value.to_vec());
                ev(record, || {
                    Event::new(
                        "put",
                        &[("namespace", hex0x(namespace)), ("key", hex0x(key))],
                    )
                })
            }
            Action::Delete { namespace, key } => {
                need(&signer, Role::Member)?;
                if st.namespace_owner(namespace)? != Some(from) {
                    return Err(TxError::NamespaceOwned.into());
                }
                let k = crate::state::keys::data(namespace, key);
                if st.get(&k)?.is_none() {
                    return Err(TxError::KeyNotFound.into());
                }
                st.set_account(&from, &signer);
                st.delete(k);
                ev(record, || {
                    Event::new(
                        "delete",
                        &[("namespace", hex0x(namespace)), ("key", hex0x(key))],
                    )
                })
            }
            Action::GrantRole { account, role } => {
                need(&signer, Role::Admin)?;
                st.set_account(&from, &signer);
                let mut a = account_or_new(st, account)?;
                if *role == Role::Admin && !a.has(Role::Admin) {
                    let n = st.admins()?.checked_add(1).ok_or(TxError::Overflow)?;
                    st.set_admins(n);
                }
                a.grant(*role);
                st.set_account(account, &a);
                ev(record, || {
                    Event::new(
                        "grant",
                        &[
                            ("account", account.to_string()),
                            ("role", role.as_str().into()),
                        ],
                    )
                })
            }
            Action::RevokeRole { account, role } => {
                need(&signer, Role::Admin)?;
                st.set_account(&from, &signer);
                let mut a = account_or_new(st, account)?;
                if *role == Role::Admin && a.has(Role::Admin) {
                    let n = st.admins()?;
                    if n <= 1 {
                        return Err(TxError::LastAdmin.into());
                    }
                    st.set_admins(n - 1);
                }
                a.revoke(*role);
                st.set_account(account, &a);
                ev(record, || {
                    Event::new(
                        "revoke",
                        &[
                            ("account", account.to_string()),
                            ("role", role.as_str().into()),
                        ],
                    )
                })
            }
            Action::AddValidator {
                consensus_key,
                node_key,
                power,
            } => {
                need_operator(&signer)?;
                valid_key("consensus key", consensus_key)?;
                valid_key("node key", node_key)?;
                st.set_account(&from, &signer);
                let change = ValidatorChange::Add(ValidatorInfo {
                    consensus_key: *consensus_key,
                    node_key: *node_key,
                    power: *power,
                });
                let at = schedule(st, height, params, change)?;
                st.set_validator_operator(consensus_key, Some(&from));
                ev(record, || {
                    Event::new(
                        "validator_add",
                        &[
                            ("key", consensus_key.to_string()),
                            ("power", power.to_string()),
                            ("height", at.to_string()),
                        ],
                    )
                })
            }
            Action::RemoveValidator { consensus_key } => {
                need_operator(&signer)?;
                may_change(st, &signer, &from, consensus_key)?;
                st.set_account(&from, &signer);
                let at = schedule(st, height, params, ValidatorChange::Remove(*consensus_key))?;
                st.set_validator_operator(consensus_key, None);
                ev(record, || {
                    Event::new(
                        "validator_remove",
                        &[
                            ("key", consensus_key.to_string()),
                            ("height", at.to_string()),
                        ],
                    )
                })
            }
            Action::SetValidatorPower {
                consensus_key,
                power,
            } => {
                need_operator(&signer)?;
                may_change(st, &signer, &from, consensus_key)?;
                st.set_account(&from, &signer);
                let at = schedule(
                    st,
                    height,
                    params,
                    ValidatorChange::SetPower(*consensus_key, *power),
                )?;
                ev(record, || {
                    Event::new(
                        "validator_power",
                        &[
                            ("key", consensus_key.to_string()),
                            ("power", power.to_string()),
                            ("height", at.to_string()),
                        ],
                    )
                })
            }
            Action::SetParam { param } => {
                need(&signer, Role::Admin)?;
                let next = params.with(*param)?;
                if let Param::ValidatorUpdateDelay(d) = param {
                    if *d > params.validator_update_delay {
                        // Longer windows: the recent and pending changes
                        // must keep to the rule under the new delay too.
                        check_schedule(st, height, *d, &load_schedule(st)?, None).map_err(
                            |e| match e {
                                Admit::Tx(_) => Admit::Tx(TxError::InvalidParam(
                                    "validator_update_delay: recent and pending validator changes would move a third or more of the power within one window of the new delay",
                                )),
                                s => s,
                            },
                        )?;
                    }
                }
                st.set_account(&from, &signer);
                st.set_params(&next);
                ev(record, || {
                    Event::new("set_param", &[("param", format!("{param:?}"))])
                })
            }
            Action::GrantEvmRole { address, role } | Action::RevokeEvmRole { address, role } => {
                need(&signer, Role::Admin)?;
                if !Role::EVM.contains(role) {
                    return Err(TxError::RoleNotForEvmAddress(role.as_str()).into());
                }
                let grant = matches!(tx.tx.action, Action::GrantEvmRole { .. });
                st.set_account(&from, &signer);
                set_evm_role(st, address, *role, grant)?;
                ev(record, || {
                    Event::new(
                        if grant { "grant" } else { "revoke" },
                        &[
                            ("account", address.to_string()),
                            ("role", role.as_str().into()),
                        ],
                    )
                })
            }
            Action::EvmCall {
                to,
                value,
                data,
                gas_limit,
            } => {
                st.set_account(&from, &signer);
                let target = EvmTarget::Call(*to);
                return native_evm(
                    st, ctx, params, &from, &signer, target, *value, data, *gas_limit,
                );
            }
            Action::FilePublish {
                root,
                size,
                name,
                media_type,
                readers,
                min_replicas,
            } => {
                need(&signer, Role::Member)?;
                st.set_account(&from, &signer);
                let p = files::Publish {
                    root,
                    size: *size,
                    name,
                    media_type,
                    readers,
                    min_replicas: *min_replicas,
                };
                files::publish(st, &from, height, p, params)?
            }
            Action::FileUnpublish { root } => {
                need(&signer, Role::Member).or_else(|_| need(&signer, Role::Admin))?;
                st.set_account(&from, &signer);
                files::unpublish(st, &from, &signer, height, root)?
            }
            Action::EvmCreate {
                value,
                code,
                gas_limit,
            } => {
                st.set_account(&from, &signer);
                let target = EvmTarget::Create;
                return native_evm(
                    st, ctx, params, &from, &signer, target, *value, code, *gas_limit,
                );
            }
        };
        Ok(events.into())
    }
}

/// The gas limit of an EVM action.
fn evm_gas_limit(action: &Action) -> Option<u64> {
    match action {
        Action::EvmCall { gas_limit, .. } | Action::EvmCreate { gas_limit, .. } => Some(*gas_limit),
        _ => None,
    }
}

/// Most gas one transaction may use under `params`.
pub fn max_tx_gas(params: &ChainParams) -> u64 {
    MAX_TX_GAS.min(params.max_block_gas)
}

/// What makes an EVM action inadmissible (a block holding it is invalid):
/// a sender without `member`, a creation by one without `deployer`, a gas
/// limit above the cap. The rest (gas below the intrinsic cost, funds) is
/// found by running it.
fn check_evm_action(action: &Action, acct: &Account, params: &ChainParams) -> Result<(), TxError> {
    let Some(limit) = evm_gas_limit(action) else {
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
#[allow(clippy::too_many_arguments)]
fn native_evm(
    st: &mut Overlay<'_>,
    ctx: &BlockContext,
    params: &ChainParams,
    from: &Address,
    signer: &Account,
    target: EvmTarget,
    value: Amount,
    data: &[u8],
    gas_limit: u64,
) -> Result<Applied, Admit> {
    let caller = evm::evm_address(from);
    let nonce = evm::read_account(&*st, &caller)?.map_or(0, |a| a.nonce);
    let env = evm_env(ctx, params);
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
    let outcome = match evm::run_evm(st, &env, &call, signer.has(Role::Deployer)) {
        Ok(o) => o,
        Err(EvmError::Store(e)) => return Err(Admit::Store(e)),
        Err(EvmError::Invalid(why)) => return Err(TxError::EvmNotExecutable(why).into()),
    };
    Ok(evm_applied(outcome))
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

fn need_operator(a: &Account) -> Result<(), TxError> {
    if a.has(Role::Admin) || a.has(Role::ValidatorOperator) {
        Ok(())
    } else {
        Err(TxError::unauthorized(Role::ValidatorOperator))
    }
}

/// An admin may change any validator; an operator only those it added.
fn may_change(
    st: &Overlay<'_>,
    signer: &Account,
    from: &Address,
    key: &PublicKey,
) -> Result<(), Admit> {
    if signer.has(Role::Admin) || st.validator_operator(key)? == Some(*from) {
        Ok(())
    } else {
        Err(TxError::NotValidatorOperator.into())
    }
}

fn valid_key(what: &'static str, key: &PublicKey) -> Result<(), TxError> {
    key.check_point()
        .map_err(|reason| TxError::InvalidValidatorKey { key: what, reason })
}

fn valid_power(p: u64) -> Result<(), TxError> {
    if p == 0 || p > MAX_VALIDATOR_POWER {
        return Err(TxError::InvalidPower {
            max: MAX_VALIDATOR_POWER,
        });
    }
    Ok(())
}

/// A validator set as the schedule changes it, with what the checks need
/// at hand: members by consensus key, the node keys in use, total power.
struct SimSet {
    members: BTreeMap<PublicKey, ValidatorInfo>,
    node_keys: BTreeSet<PublicKey>,
    total: u128,
}

impl SimSet {
    fn new(set: &[ValidatorInfo]) -> SimSet {
        SimSet {
            members: set.iter().map(|v| (v.consensus_key, *v)).collect(),
            node_keys: set.iter().map(|v| v.node_key).collect(),
            total: set.iter().map(|v| u128::from(v.power)).sum(),
        }
    }

    /// Applies `c` if its precondition holds (an added validator's keys
    /// are new, a removed or re-powered one is a member); returns the power
    /// it moves. On error nothing changed.
    fn apply(&mut self, c: &ValidatorChange) -> Result<u128, TxError> {
        match c {
            ValidatorChange::Add(v) => {
                if self.members.contains_key(&v.consensus_key) {
                    return Err(TxError::ValidatorExists);
                }
                if !self.node_keys.insert(v.node_key) {
                    return Err(TxError::NodeKeyExists);
                }
                self.members.insert(v.consensus_key, *v);
                self.total += u128::from(v.power);
                Ok(u128::from(v.power))
            }
            ValidatorChange::Remove(k) => {
                let v = self.members.remove(k).ok_or(TxError::ValidatorNotFound)?;
                self.node_keys.remove(&v.node_key);
                self.total -= u128::from(v.power);
                Ok(u128::from(v.power))
            }
            ValidatorChange::SetPower(k, p) => {
                let v = self.members.get_mut(k).ok_or(TxError::ValidatorNotFound)?;
                let (old, new) = (u128::from(v.power), u128::from(*p));
                v.power = *p;
                self.total = self.total - old + new;
                Ok(old.abs_diff(new))
            }
        }
    }

    /// What [`to_set`] needs (keys are unique by construction, powers
    /// non-zero by [`valid_power`]).
    fn check(&self) -> Result<(), TxError> {
        if self.members.is_empty() {
            return Err(TxError::ValidatorChangeTooLarge);
        }
        if self.members.len() > MAX_VALIDATORS {
            return Err(TxError::TooManyValidators {
                max: MAX_VALIDATORS,
            });
        }
        if self.total > u128::from(MAX_TOTAL_POWER) {
            return Err(TxError::TotalPowerTooLarge {
                max: MAX_TOTAL_POWER,
            });
        }
        Ok(())
    }

    /// Members sorted by consensus key, as `meta/validators` keeps them.
    fn into_list(self) -> Vec<ValidatorInfo> {
        self.members.into_values().collect()
    }
}

/// Every pending height with its changes, ascending.
type Schedule = Vec<(Height, Vec<ValidatorChange>)>;

fn load_schedule(st: &Overlay<'_>) -> Result<Schedule, StoreError> {
    st.pending_heights()?
        .into_iter()
        .map(|h| Ok((h, st.pending(h)?)))
        .collect()
}

/// Schedules `change` for `height + delay` after checking the whole
/// schedule with it (see [`check_schedule`]).
fn schedule(
    st: &mut Overlay<'_>,
    height: Height,
    params: &ChainParams,
    change: ValidatorChange,
) -> Result<Height, Admit> {
    match change {
        ValidatorChange::Add(v) => valid_power(v.power)?,
        ValidatorChange::SetPower(_, p) => valid_power(p)?,
        ValidatorChange::Remove(_) => {}
    }
    let at = height
        .checked_add(params.validator_update_delay)
        .map_err(|_| TxError::Overflow)?;
    let mut sched = load_schedule(st)?;
    let (pos, new_height) = match sched.binary_search_by_key(&at, |(h, _)| *h) {
        Ok(i) => {
            // One change per validator and height, so their order within
            // the height does not matter.
            if sched[i].1.iter().any(|c| c.key() == change.key()) {
                return Err(TxError::ValidatorChangeConflict.into());
            }
            sched[i].1.push(change);
            (i, false)
        }
        Err(i) => {
            sched.insert(i, (at, vec![change]));
            (i, true)
        }
    };
    let new = (pos, sched[pos].1.len() - 1);
    check_schedule(st, height, params.validator_update_delay, &sched, Some(new))?;
    st.set_pending(at, &sched[pos].1);
    if new_height {
        st.set_pending_heights(&sched.iter().map(|(h, _)| *h).collect());
    }
    Ok(at)
}

/// Checks, during block `height`, the pending schedule `sched` from the
/// current set: at every height each change's precondition holds, and the
/// set that results is non-empty, has at most `MAX_VALIDATORS` members and
/// at most `MAX_TOTAL_POWER`, unique consensus and node keys (so
/// [`to_set`] succeeds and every node key is a distinct peer); and the
/// changes taking effect within any `delay` consecutive heights, recent
/// ones included, move less than a third of the power the set had before
/// them (so more than two thirds of every set stay in the sets that follow
/// it within a delay). `new` names the change being added (index in
/// `sched`, index in its list): its own failed precondition is reported as
/// such, another change's as a conflict.
fn check_schedule(
    st: &Overlay<'_>,
    height: Height,
    delay: u64,
    sched: &Schedule,
    new: Option<(usize, usize)>,
) -> Result<(), Admit> {
    let mut set = SimSet::new(&st.validators()?);
    // Only windows that reach a height not yet executed count: earlier
    // ones were checked when their changes were made.
    let mut timeline: Vec<AppliedChanges> = st
        .validator_history()?
        .into_iter()
        .filter(|e| e.height.get().saturating_add(delay) > height.get().saturating_add(1))
        .collect();
    for (i, (h, changes)) in sched.iter().enumerate() {
        let total_before = set.total;
        let mut moved: u128 = 0;
        for (j, c) in changes.iter().enumerate() {
            moved += set.apply(c).map_err(|e| {
                if new == Some((i, j)) {
                    e
                } else {
                    TxError::ValidatorChangeConflict
                }
            })?;
        }
        set.check()?;
        timeline.push(AppliedChanges {
            height: *h,
            moved: u64::try_from(moved).map_err(|_| TxError::TotalPowerTooLarge {
                max: MAX_TOTAL_POWER,
            })?,
            total_before: u64::try_from(total_before).map_err(|_| TxError::TotalPowerTooLarge {
                max: MAX_TOTAL_POWER,
            })?,
        });
    }
    check_windows(&timeline, delay)?;
    Ok(())
}

/// For each entry of `timeline` (ascending heights), the power moved by it
/// and the entries after it within `delay` heights is less than a third of
/// the total before it. Every window of `delay` heights holds a subset of
/// the entries of one such run, and starts with that run's total.
fn check_windows(timeline: &[AppliedChanges], delay: u64) -> Result<(), TxError> {
    let mut end = 0;
    let mut sum: u128 = 0;
    for (i, first) in timeline.iter().enumerate() {
        let limit = first.height.get().saturating_add(delay);
        while let Some(e) = timeline.get(end).filter(|e| e.height.get() < limit) {
            sum += u128::from(e.moved);
            end += 1;
        }
        if sum * 3 >= u128::from(first.total_before) {
            return Err(TxError::ValidatorChangeTooLarge);
        }
        sum -= u128::from(timeline[i].moved);
    }
    Ok(())
}

/// The consensus view of a runtime validator list.
pub fn to_set(validators: &[ValidatorInfo]) -> Result<ValidatorSet, StoreError> {
    ValidatorSet::new(
        validators
            .iter()
            .map(|v| Validator {
                public_key: v.consensus_key,
                power: v.power,
            })
            .collect(),
    )
    .map_err(|e| StoreError::Corrupt(format!("validator set: {e}")))
}
