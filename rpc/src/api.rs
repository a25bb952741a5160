//! The method set, defined once for server and client.

use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use palisade_types::{Address, Hash};

use crate::types::{
    AccountResponse, BlockId, BlockResponse, BlockTxHashesResponse, CommitResponse, HeadResponse,
    Health, HexBytes, MempoolStatus, MethodsResponse, NodeStatus, ReceiptResponse, StateQuery,
    StateResponse, SubmitOutcome, SubmitResponse, TxResponse, TxStatus, ValidatorSetResponse,
};

pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

#[rpc(server, client)]
pub trait PalisadeApi {
    /// Whether the node is fit to serve, and if not why (also `GET /health`,
    /// which answers 503 when it is not).
    #[method(name = "system_health")]
    async fn system_health(&self) -> RpcResult<Health>;

    #[method(name = "system_status")]
    async fn system_status(&self) -> RpcResult<NodeStatus>;

    /// Every method name this server answers.
    #[method(name = "rpc_methods")]
    async fn rpc_methods(&self) -> RpcResult<MethodsResponse>;

    #[method(name = "chain_getHeight")]
    async fn chain_get_height(&self) -> RpcResult<u64>;

    /// A block by height (number) or hash (`0x`-hex); null if unknown.
    #[method(name = "chain_getBlock")]
    async fn chain_get_block(&self, id: BlockId) -> RpcResult<Option<BlockResponse>>;

    /// The hashes of a block's transactions, in block order, without the
    /// transactions: how a client that follows the chain learns what each
    /// block committed. Null if the block is unknown.
    #[method(name = "chain_getBlockTxHashes")]
    async fn chain_get_block_tx_hashes(
        &self,
        id: BlockId,
    ) -> RpcResult<Option<BlockTxHashesResponse>>;

    #[method(name = "chain_getCommit")]
    async fn chain_get_commit(&self, height: u64) -> RpcResult<Option<CommitResponse>>;

    #[method(name = "chain_getGenesis")]
    async fn chain_get_genesis(&self) -> RpcResult<serde_json::Value>;

    /// Each committed block's header, as it is committed. A subscriber that
    /// reads too slowly skips heads; the next head it gets says how many
    /// (`missed`).
    #[subscription(name = "chain_subscribeNewHeads" => "chain_newHead", unsubscribe = "chain_unsubscribeNewHeads", item = HeadResponse, with_extensions)]
    async fn chain_subscribe_new_heads(&self) -> SubscriptionResult;

    /// Admits a signed transaction (borsh, `0x`-hex) into the mempool.
    #[method(name = "tx_submit")]
    async fn tx_submit(&self, tx: HexBytes) -> RpcResult<SubmitResponse>;

    /// Submits up to [`crate::server::MAX_SUBMIT_BATCH`] transactions in one
    /// call; their signatures are checked as one batch (about half the cost
    /// of checking them one by one). One outcome per transaction, in order:
    /// its hash, or the error `tx_submit` would have given.
    #[method(name = "tx_submitBatch")]
    async fn tx_submit_batch(&self, txs: Vec<HexBytes>) -> RpcResult<Vec<SubmitOutcome>>;

    /// Submits and waits (up to `timeout_ms`, default 10 s, at most 60 s)
    /// for the receipt.
    #[method(name = "tx_submitAndWait")]
    async fn tx_submit_and_wait(
        &self,
        tx: HexBytes,
        timeout_ms: Option<u64>,
    ) -> RpcResult<ReceiptResponse>;

    /// A committed or pending transaction; null if unknown.
    #[method(name = "tx_get")]
    async fn tx_get(&self, hash: Hash) -> RpcResult<Option<TxResponse>>;

    /// The receipt; null until committed.
    #[method(name = "tx_getReceipt")]
    async fn tx_get_receipt(&self, hash: Hash) -> RpcResult<Option<ReceiptResponse>>;

    /// The transaction's status now and at each change until it is
    /// committed or `timeout_ms` (default and most 60 s) has passed; the
    /// last notification is `committed` or `timedOut`, then the
    /// subscription ends.
    #[subscription(name = "tx_subscribeStatus" => "tx_status", unsubscribe = "tx_unsubscribeStatus", item = TxStatus, with_extensions)]
    async fn tx_subscribe_status(&self, hash: Hash, timeout_ms: Option<u64>) -> SubscriptionResult;

    #[method(name = "state_getAccount")]
    async fn state_get_account(&self, address: Address) -> RpcResult<AccountResponse>;

    /// A raw state key (see `docs/state.md`), optionally with a proof.
    #[method(name = "state_get")]
    async fn state_get(&self, key: HexBytes, query: Option<StateQuery>)
        -> RpcResult<StateResponse>;

    /// The validator set deciding `height` (default: the next block).
    #[method(name = "validator_getSet")]
    async fn validator_get_set(&self, height: Option<u64>) -> RpcResult<ValidatorSetResponse>;

    #[method(name = "mempool_status")]
    async fn mempool_status(&self) -> RpcResult<MempoolStatus>;
}
