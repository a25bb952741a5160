//! The node's side of the JSON-RPC API: [`NodeBackend`] over the ledger,
//! mempool, network and driver.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::future::BoxFuture;
use palisade_rpc::backend::{
    AccountTxPage, BackendError, EthTxFound, NodeBackend, PoolOrChainTx, StateRead, SubmitError,
    TxLocation,
};
use palisade_rpc::types::{Health, MempoolStatus, NodeStatus};
use palisade_runtime::{get_with_proof, Account, Receipt, StateStore, TxError};
use palisade_types::{
    Address, Block, BlockHeader, CommitCertificate, EvmAddress, Hash, Height, SignedTransaction,
    ValidatorSet,
};
use tokio::sync::broadcast;

use crate::context::NodeContext;
use crate::mempool::AddError;

/// Serves the RPC API from a running node.
#[derive(Debug)]
pub struct Backend {
    pub ctx: NodeContext,
    pub moniker: String,
    pub max_txs: usize,
    pub max_bytes: usize,
    /// Committed heights, fed from the driver's commit notifications.
    pub commits: broadcast::Sender<Height>,
}

/// Whether the block at `height` is one the ledger shows as committed. A
/// block's records are in the database a moment before its height is the
/// latest: a transaction found there is not shown until then, so that a
/// client that sees its receipt also sees its effects in "latest" state.
fn committed(ledger: &palisade_ledger::Ledger, height: Height) -> bool {
    ledger.latest_height().is_ok_and(|latest| height <= latest)
}

fn err(e: impl std::fmt::Display) -> BackendError {
    BackendError(e.to_string())
}

/// Stable names for the runtime's rejection reasons (the `data` of the
/// `TX_REJECTED` error).
pub fn reason(e: &TxError) -> &'static str {
    match e {
        TxError::WrongChainId { .. } => "wrong_chain_id",
        TxError::BadSignature => "bad_signature",
        TxError::BadNonce { .. } => "bad_nonce",
        TxError::TooLarge { .. } => "too_large",
        TxError::UnknownSigner => "unknown_signer",
        TxError::NonceTooFarAhead { .. } => "nonce_too_far_ahead",
        TxError::Unauthorized(_) => "unauthorized",
        TxError::InsufficientFunds { .. } => "insufficient_funds",
        TxError::Overflow => "overflow",
        TxError::ZeroAmount => "zero_amount",
        TxError::ValueTooLarge { .. } => "value_too_large",
        TxError::NamespaceOwned => "namespace_owned",
        TxError::KeyNotFound => "key_not_found",
        TxError::EmptyNamespace => "empty_namespace",
        TxError::LastAdmin => "last_admin",
        TxError::ValidatorExists => "validator_exists",
        TxError::ValidatorNotFound => "validator_not_found",
        TxError::InvalidPower { .. } => "invalid_power",
        TxError::ValidatorChangeTooLarge => "validator_change_too_large",
        TxError::InvalidParam(_) => "invalid_param",
        TxError::InvalidValidatorKey { .. } => "invalid_validator_key",
        TxError::NotValidatorOperator => "not_validator_operator",
        TxError::NodeKeyExists => "node_key_exists",
        TxError::TooManyValidators { .. } => "too_many_validators",
        TxError::TotalPowerTooLarge { .. } => "total_power_too_large",
        TxError::ValidatorChangeConflict => "validator_change_conflict",
        TxError::RoleNotForEvmAddress(_) => "role_not_for_evm_address",
        TxError::EvmReverted { .. } => "evm_reverted",
        TxError::EvmHalted(_) => "evm_halted",
        TxError::EvmNotExecutable(_) => "evm_not_executable",
        TxError::GasLimitTooHigh { .. } => "gas_limit_too_high",
        TxError::BlockGasExhausted { .. } => "block_gas_exhausted",
        TxError::GasPriceTooLow { .. } => "gas_price_too_low",
        TxError::EthTxMalformed(_) => "eth_tx_malformed",
        TxError::FileExists => "file_exists",
        TxError::FileNotFound => "file_not_found",
        TxError::FileQuotaExceeded { .. } => "file_quota_exceeded",
        TxError::FileInvalid(_) => "file_invalid",
        TxError::FileWithdrawn => "file_withdrawn",
        TxError::NotFilePublisher => "not_file_publisher",
    }
}

impl NodeBackend for Backend {
    fn files(&self) -> Option<Arc<dyn palisade_rpc::files::FilesBackend>> {
        Some(Arc::new(crate::files::FilesRpc(self.ctx.files.clone())))
    }

    fn store(&self) -> &dyn StateStore {
        self.ctx.app.ledger().as_ref()
    }

    fn submit_eth(&self, raw: Vec<u8>) -> BoxFuture<'static, Result<Hash, SubmitError>> {
        let admitted = self.ctx.submit_eth(raw);
        Box::pin(async move { admitted.await.map_err(submit_error) })
    }

    fn eth_inputs(
        &self,
        raws: &[palisade_types::EthTransaction],
    ) -> Result<Vec<palisade_runtime::EthTxInput>, BackendError> {
        let chain_id = self.ctx.app.params().map_err(err)?.evm_chain_id;
        self.ctx
            .app
            .eth_senders()
            .prepare(raws, chain_id)
            .map_err(|(_, e)| err(e))
    }

    fn eth_tx(&self, hash: &Hash) -> Result<Option<EthTxFound>, BackendError> {
        let ledger = self.ctx.app.ledger();
        if let Some((raw, (height, index))) = ledger
            .eth_tx(hash)
            .map_err(err)?
            .filter(|(_, (h, _))| committed(ledger, *h))
        {
            let chain_id = self.ctx.app.params().map_err(err)?.evm_chain_id;
            let input = self
                .ctx
                .app
                .eth_senders()
                .prepare(std::slice::from_ref(&raw), chain_id)
                .map_err(|(_, e)| err(e))?
                .pop()
                .ok_or_else(|| err("no sender recovered"))?;
            return Ok(Some(EthTxFound {
                raw,
                input,
                location: Some(TxLocation { height, index }),
            }));
        }
        let pool = self
            .ctx
            .mempool
            .lock()
            .map_err(|_| err("mempool lock poisoned"))?;
        Ok(pool.eth.get(hash).map(|(raw, input)| EthTxFound {
            raw: raw.clone(),
            input: input.clone(),
            location: None,
        }))
    }

    fn eth_pending_nonce(&self, address: &EvmAddress, committed: u64) -> u64 {
        self.ctx
            .mempool
            .lock()
            .map(|p| p.eth.pending_nonce(address, committed))
            .unwrap_or(committed)
    }

    fn status(&self) -> Result<NodeStatus, BackendError> {
        let ledger = self.ctx.app.ledger();
        let latest = ledger.latest_height().map_err(err)?;
        let block = if latest.get() > 0 {
            ledger.block(latest).map_err(err)?
        } else {
            None
        };
        let mempool_txs = self.ctx.mempool.lock().map(|p| p.len()).unwrap_or(0);
        Ok(NodeStatus {
            chain_id: self.ctx.genesis.chain_id.to_string(),
            genesis_hash: self.ctx.genesis_hash,
            version: env!("CARGO_PKG_VERSION").to_string(),
            moniker: self.moniker.clone(),
            peer_id: self.ctx.net.local_peer_id().to_string(),
            validator: self.ctx.validator,
            latest_height: latest.get(),
            latest_block_hash: block.as_ref().map(Block::hash),
            latest_block_time: block.as_ref().map(|b| b.header.time.as_millis()),
            syncing: self.ctx.sync.syncing.load(Ordering::Relaxed),
            sync_target: self
                .ctx
                .sync
                .target
                .load(Ordering::Relaxed)
                .max(latest.get()),
            peers: self.ctx.net.peer_count(),
            mempool_txs,
        })
    }

    fn health(&self) -> Health {
        self.ctx.health()
    }

    fn latest_height(&self) -> Result<Height, BackendError> {
        self.ctx.app.ledger().latest_height().map_err(err)
    }

    fn retained(&self) -> Result<palisade_rpc::backend::Retained, BackendError> {
        let ledger = self.ctx.app.ledger();
        Ok(palisade_rpc::backend::Retained {
            blocks_from: ledger.earliest_block().map_err(err)?,
            state_from: ledger.state_from().map_err(err)?,
        })
    }

    fn block(&self, height: Height) -> Result<Option<Block>, BackendError> {
        self.ctx.app.ledger().block(height).map_err(err)
    }

    fn log_blooms(
        &self,
        from: Height,
        to: Height,
    ) -> Result<Vec<(Height, palisade_runtime::evm::LogsBloom)>, BackendError> {
        self.ctx.app.ledger().log_blooms(from, to).map_err(err)
    }

    fn height_of_block(&self, hash: &Hash) -> Result<Option<Height>, BackendError> {
        self.ctx.app.ledger().height_of(hash).map_err(err)
    }

    fn commit(&self, height: Height) -> Result<Option<CommitCertificate>, BackendError> {
        self.ctx.app.ledger().commit(height).map_err(err)
    }

    fn refused(&self, height: Height) -> Result<Vec<u32>, BackendError> {
        self.ctx.app.ledger().refused(height).map_err(err)
    }

    fn block_header(&self, height: Height) -> Result<Option<BlockHeader>, BackendError> {
        self.ctx.app.ledger().block_header(height).map_err(err)
    }

    fn account_txs(
        &self,
        account: &EvmAddress,
        before: Option<TxLocation>,
        limit: usize,
    ) -> Result<Option<AccountTxPage>, BackendError> {
        let ledger = self.ctx.app.ledger();
        let Some(indexed_from) = ledger.account_index_from().map_err(err)? else {
            return Ok(None);
        };
        let page = ledger
            .account_txs(account, before.map(|l| (l.height, l.index)), limit)
            .map_err(err)?;
        Ok(Some(AccountTxPage {
            txs: page
                .txs
                .into_iter()
                .map(|t| {
                    let (height, index) = t.position;
                    (t.hash, TxLocation { height, index }, t.eth)
                })
                .collect(),
            next: page
                .next
                .map(|(height, index)| TxLocation { height, index }),
            indexed_from,
        }))
    }

    fn genesis(&self) -> serde_json::Value {
        serde_json::to_value(&*self.ctx.genesis).unwrap_or(serde_json::Value::Null)
    }

    fn submit(&self, tx: SignedTransaction) -> BoxFuture<'static, Result<Hash, SubmitError>> {
        let admitted = self.ctx.submit(tx);
        Box::pin(async move { admitted.await.map_err(submit_error) })
    }

    fn submit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, SubmitError>> {
        self.ctx
            .submit_batch(txs)
            .into_iter()
            .map(|r| r.map_err(submit_error))
            .collect()
    }

    fn tx(&self, hash: &Hash) -> Result<Option<PoolOrChainTx>, BackendError> {
        let ledger = self.ctx.app.ledger();
        if let Some((height, index)) = ledger
            .tx_location(hash)
            .map_err(err)?
            .filter(|(h, _)| committed(ledger, *h))
        {
            return Ok(ledger
                .tx(hash)
                .map_err(err)?
                .map(|t| (t, Some(TxLocation { height, index }))));
        }
        let pending = self.ctx.mempool.lock().ok().and_then(|p| p.get(hash));
        Ok(pending.map(|t| ((*t).clone(), None)))
    }

    fn receipt(&self, hash: &Hash) -> Result<Option<(Receipt, TxLocation)>, BackendError> {
        let ledger = self.ctx.app.ledger();
        Ok(ledger
            .receipt(hash)
            .map_err(err)?
            .filter(|(_, (h, _))| committed(ledger, *h))
            .map(|(r, (height, index))| (r, TxLocation { height, index })))
    }

    fn account(&self, address: &Address) -> Result<Option<Account>, BackendError> {
        let raw = self
            .ctx
            .app
            .ledger()
            .get(&palisade_runtime::state::keys::account(address))
            .map_err(err)?;
        raw.map(|r| borsh::from_slice::<Account>(&r).map_err(err))
            .transpose()
    }

    fn state_get(&self, key: &[u8], prove: bool) -> Result<StateRead, BackendError> {
        let ledger = self.ctx.app.ledger();
        // Read through the tree from one root: value, root and proof agree
        // even if a block commits meanwhile.
        let latest = ledger.latest_height().map_err(err)?;
        let root = ledger
            .state_root(latest)
            .map_err(err)?
            .ok_or_else(|| BackendError(format!("no state root for height {latest}")))?;
        let (value, proof) = get_with_proof(ledger.as_ref(), root, key).map_err(err)?;
        Ok(StateRead {
            value,
            height: latest,
            root,
            proof: prove.then_some(proof),
        })
    }

    fn state_root(&self, height: Height) -> Result<Option<Hash>, BackendError> {
        self.ctx.app.ledger().state_root(height).map_err(err)
    }

    fn validators(&self, height: Height) -> Result<Option<ValidatorSet>, BackendError> {
        self.ctx.app.ledger().validators(height).map_err(err)
    }

    fn mempool(&self) -> MempoolStatus {
        let (txs, bytes) = self
            .ctx
            .mempool
            .lock()
            .map(|p| (p.len() + p.eth.len(), p.bytes() + p.eth.bytes()))
            .unwrap_or((0, 0));
        MempoolStatus {
            txs,
            bytes,
            max_txs: self.max_txs,
            max_bytes: self.max_bytes,
        }
    }

    fn in_mempool(&self, hash: &Hash) -> bool {
        self.ctx
            .mempool
            .lock()
            .is_ok_and(|p| p.contains(hash) || p.eth.contains(hash))
    }

    fn subscribe_commits(&self) -> broadcast::Receiver<Height> {
        self.commits.subscribe()
    }

    fn count_request(&self, method: &str) {
        self.ctx
            .metrics
            .rpc_requests
            .get_or_create(&vec![("method".to_string(), method.to_string())])
            .inc();
    }
}

fn submit_error(e: AddError) -> SubmitError {
    match e {
        AddError::Duplicate => SubmitError::Duplicate,
        AddError::Full(why) => SubmitError::Full(why.to_string()),
        AddError::NonceTaken => SubmitError::Rejected {
            code: "nonce_pending",
            message: e.to_string(),
        },
        AddError::Rejected(ref t) => SubmitError::Rejected {
            code: reason(t),
            message: t.to_string(),
        },
        AddError::Store(s) => SubmitError::Internal(s.to_string()),
    }
}
