//! What the RPC server needs from a node. The node implements it over its
//! ledger, mempool, network and consensus driver; tests can implement it
//! over anything.

use futures::future::BoxFuture;
use palisade_runtime::smt::Proof;
use palisade_runtime::{Account, Receipt};
use palisade_types::{
    Address, Block, BlockHeader, CommitCertificate, EthTransaction, EvmAddress, Hash, Height,
    SignedTransaction, ValidatorSet,
};
use tokio::sync::broadcast;

use crate::types::{Health, MempoolStatus, NodeStatus};

/// A storage failure inside the node.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// Why a submitted transaction was not admitted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error("transaction is already in the mempool")]
    Duplicate,
    #[error("mempool is full: {0}")]
    Full(String),
    /// Refused by the runtime's checks; `code` is a stable reason.
    #[error("{message}")]
    Rejected { code: &'static str, message: String },
    #[error("{0}")]
    Internal(String),
}

/// A value read from the state tree with the root it was read under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRead {
    pub value: Option<Vec<u8>>,
    pub height: Height,
    pub root: Hash,
    pub proof: Option<Proof>,
}

/// A transaction and, once committed, where.
pub type PoolOrChainTx = (SignedTransaction, Option<TxLocation>);

/// A transaction's committed location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TxLocation {
    pub height: Height,
    pub index: u32,
}

/// The oldest heights a node still has ([`NodeBackend::retained`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retained {
    /// The first height whose block, certificate and transactions are kept.
    pub blocks_from: Height,
    /// The first height whose state is kept (0: genesis on).
    pub state_from: Height,
}

impl Default for Retained {
    fn default() -> Self {
        Retained {
            blocks_from: Height(1),
            state_from: Height(0),
        }
    }
}

impl Retained {
    /// Err(pruned) when block `h` is not kept (genesis, height 0, always is).
    pub fn block(&self, h: Height) -> Result<(), jsonrpsee::types::ErrorObjectOwned> {
        if h != Height::GENESIS && h < self.blocks_from {
            return Err(crate::errors::pruned("blocks", h, self.blocks_from));
        }
        Ok(())
    }

    /// Err(pruned) when the state after `h` is not kept.
    pub fn state(&self, h: Height) -> Result<(), jsonrpsee::types::ErrorObjectOwned> {
        if h < self.state_from {
            return Err(crate::errors::pruned("state", h, self.state_from));
        }
        Ok(())
    }
}

pub trait NodeBackend: Send + Sync + 'static {
    /// What this node still keeps (everything, unless it prunes or started
    /// from a snapshot).
    fn retained(&self) -> Result<Retained, BackendError> {
        Ok(Retained::default())
    }
    fn status(&self) -> Result<NodeStatus, BackendError>;
    /// Whether the node is fit to serve, computed now from its parts'
    /// liveness (never a constant): `system_health` and `GET /health`.
    fn health(&self) -> Health;
    fn latest_height(&self) -> Result<Height, BackendError>;
    fn block(&self, height: Height) -> Result<Option<Block>, BackendError>;
    fn height_of_block(&self, hash: &Hash) -> Result<Option<Height>, BackendError>;
    /// A committed block's header, without its transactions.
    fn block_header(&self, height: Height) -> Result<Option<BlockHeader>, BackendError> {
        Ok(self.block(height)?.map(|b| b.header))
    }
    /// The certificate that commits block `height`: the one the next block
    /// carries once there is one (it may hold precommits that arrived after
    /// this node decided), else this node's own.
    fn commit(&self, height: Height) -> Result<Option<CommitCertificate>, BackendError>;
    /// The positions in block `height` of the transactions execution
    /// refused (in the block, not committed), ascending.
    fn refused(&self, height: Height) -> Result<Vec<u32>, BackendError>;
    /// Transactions that touched `account` (by its EVM address), newest
    /// first, older than `before` when given; `None` when the node keeps
    /// no account index.
    fn account_txs(
        &self,
        account: &EvmAddress,
        before: Option<TxLocation>,
        limit: usize,
    ) -> Result<Option<AccountTxPage>, BackendError>;
    /// The genesis file as JSON.
    fn genesis(&self) -> serde_json::Value;
    /// Admits several transactions, checking their signatures as one batch;
    /// one result per transaction, in order.
    fn submit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, SubmitError>>;
    /// Admits one transaction, as [`NodeBackend::submit_batch`] does. The
    /// future must not block its (async) thread: a node hands the work to
    /// its admission workers and waits for the answer.
    fn submit(&self, tx: SignedTransaction) -> BoxFuture<'static, Result<Hash, SubmitError>>;
    /// A committed transaction, or one pending in the mempool.
    fn tx(
        &self,
        hash: &Hash,
    ) -> Result<Option<(SignedTransaction, Option<TxLocation>)>, BackendError>;
    fn receipt(&self, hash: &Hash) -> Result<Option<(Receipt, TxLocation)>, BackendError>;
    fn account(&self, address: &Address) -> Result<Option<Account>, BackendError>;
    /// The latest value of `key` with the state root it is under (and a
    /// proof if asked), at the latest height.
    fn state_get(&self, key: &[u8], prove: bool) -> Result<StateRead, BackendError>;
    /// The state root after `height`.
    fn state_root(&self, height: Height) -> Result<Option<Hash>, BackendError>;
    fn validators(&self, height: Height) -> Result<Option<ValidatorSet>, BackendError>;
    fn mempool(&self) -> MempoolStatus;
    fn in_mempool(&self, hash: &Hash) -> bool;
    /// Heights as they are committed.
    fn subscribe_commits(&self) -> broadcast::Receiver<Height>;
    /// Counts a request for metrics.
    fn count_request(&self, method: &str);

    /// The node's shared files, if it shares any (`file_*`, `/files/`).
    fn files(&self) -> Option<std::sync::Arc<dyn crate::files::FilesBackend>> {
        None
    }
    /// The state store, for reads under any kept root (the Ethereum
    /// methods run the EVM on it).
    fn store(&self) -> &dyn palisade_runtime::StateStore;
    /// Admits a raw Ethereum transaction (EIP-2718 bytes); its hash is
    /// keccak256 of the bytes. As [`NodeBackend::submit`], the future must
    /// not block its thread.
    fn submit_eth(&self, raw: Vec<u8>) -> BoxFuture<'static, Result<Hash, SubmitError>>;
    /// An Ethereum transaction committed or pending here, with what the
    /// runtime knows of it (sender, fields) and, once committed, where.
    fn eth_tx(&self, hash: &Hash) -> Result<Option<EthTxFound>, BackendError>;
    /// What the runtime knows of each of `raws` (sender, fields), in
    /// order: for a committed block's transactions, without looking each
    /// up again.
    fn eth_inputs(
        &self,
        raws: &[EthTransaction],
    ) -> Result<Vec<palisade_runtime::EthTxInput>, BackendError>;
    /// The next EVM nonce of `address` counting its pending transactions,
    /// given its committed one.
    fn eth_pending_nonce(&self, address: &EvmAddress, committed: u64) -> u64;
    /// The logs bloom of each committed block from `from` to `to` that may
    /// have EVM logs, in height order (blocks without logs are left out).
    fn log_blooms(
        &self,
        from: Height,
        to: Height,
    ) -> Result<Vec<(Height, palisade_runtime::evm::LogsBloom)>, BackendError>;
}

/// An Ethereum transaction, decoded, and where it is once committed.
#[derive(Debug, Clone)]
pub struct EthTxFound {
    pub raw: EthTransaction,
    pub input: palisade_runtime::EthTxInput,
    pub location: Option<TxLocation>,
}

/// A page of an account's transactions, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountTxPage {
    /// Each with its hash, location, and whether it is an Ethereum one.
    pub txs: Vec<(Hash, TxLocation, bool)>,
    /// Where the next (older) page starts.
    pub next: Option<TxLocation>,
    /// The first height the node's index covers.
    pub indexed_from: Height,
}
