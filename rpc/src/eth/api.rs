//! The Ethereum method set, defined once for server and client.

use jsonrpsee::proc_macros::rpc;
use palisade_types::EvmAddress;

use jsonrpsee::core::SubscriptionResult;

use super::types::{BlockSpec, CallRequest, EthBlock, EthLog, FeeHistory, LogFilter};
use crate::api::RpcResult;

#[rpc(server, client)]
pub trait EthApi {
    /// `palisade/<version>`.
    #[method(name = "web3_clientVersion")]
    async fn web3_client_version(&self) -> RpcResult<String>;

    /// The EIP-155 chain id, in decimal (as Ethereum nodes answer).
    #[method(name = "net_version")]
    async fn net_version(&self) -> RpcResult<String>;

    #[method(name = "net_peerCount")]
    async fn net_peer_count(&self) -> RpcResult<String>;

    /// Always empty: the node holds no Ethereum keys; clients sign.
    #[method(name = "eth_accounts")]
    async fn eth_accounts(&self) -> RpcResult<Vec<String>>;

    #[method(name = "net_listening")]
    async fn net_listening(&self) -> RpcResult<bool>;

    #[method(name = "eth_chainId")]
    async fn eth_chain_id(&self) -> RpcResult<String>;

    #[method(name = "eth_blockNumber")]
    async fn eth_block_number(&self) -> RpcResult<String>;

    /// `false`, or how far block sync has come.
    #[method(name = "eth_syncing")]
    async fn eth_syncing(&self) -> RpcResult<serde_json::Value>;

    /// The chain's `min_gas_price` (the base fee of every block).
    #[method(name = "eth_gasPrice")]
    async fn eth_gas_price(&self) -> RpcResult<String>;

    /// Always `0x0`: no tip buys anything under BFT ordering.
    #[method(name = "eth_maxPriorityFeePerGas")]
    async fn eth_max_priority_fee_per_gas(&self) -> RpcResult<String>;

    #[method(name = "eth_feeHistory")]
    async fn eth_fee_history(
        &self,
        block_count: serde_json::Value,
        newest: BlockSpec,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory>;

    #[method(name = "eth_getBalance")]
    async fn eth_get_balance(
        &self,
        address: EvmAddress,
        block: Option<BlockSpec>,
    ) -> RpcResult<String>;

    /// The EVM nonce (the number of EVM transactions sent from it).
    #[method(name = "eth_getTransactionCount")]
    async fn eth_get_transaction_count(
        &self,
        address: EvmAddress,
        block: Option<BlockSpec>,
    ) -> RpcResult<String>;

    #[method(name = "eth_getCode")]
    async fn eth_get_code(
        &self,
        address: EvmAddress,
        block: Option<BlockSpec>,
    ) -> RpcResult<String>;

    #[method(name = "eth_getStorageAt")]
    async fn eth_get_storage_at(
        &self,
        address: EvmAddress,
        slot: String,
        block: Option<BlockSpec>,
    ) -> RpcResult<String>;

    /// Runs a call on the state after `block` without changing anything.
    #[method(name = "eth_call")]
    async fn eth_call(&self, call: CallRequest, block: Option<BlockSpec>) -> RpcResult<String>;

    #[method(name = "eth_estimateGas")]
    async fn eth_estimate_gas(
        &self,
        call: CallRequest,
        block: Option<BlockSpec>,
    ) -> RpcResult<String>;

    #[method(name = "eth_getBlockByNumber")]
    async fn eth_get_block_by_number(
        &self,
        block: BlockSpec,
        full: bool,
    ) -> RpcResult<Option<EthBlock>>;

    #[method(name = "eth_getBlockByHash")]
    async fn eth_get_block_by_hash(&self, hash: String, full: bool) -> RpcResult<Option<EthBlock>>;

    /// Admits a signed Ethereum transaction (EIP-2718 bytes); answers its
    /// hash, keccak256 of the bytes.
    #[method(name = "eth_sendRawTransaction")]
    async fn eth_send_raw_transaction(&self, raw: String) -> RpcResult<String>;

    /// An EVM transaction committed or pending here; null if unknown.
    #[method(name = "eth_getTransactionByHash")]
    async fn eth_get_transaction_by_hash(
        &self,
        hash: String,
    ) -> RpcResult<Option<serde_json::Value>>;

    /// A committed EVM transaction's receipt; null until committed.
    #[method(name = "eth_getTransactionReceipt")]
    async fn eth_get_transaction_receipt(
        &self,
        hash: String,
    ) -> RpcResult<Option<serde_json::Value>>;

    /// The logs a filter selects from committed blocks: at most
    /// [`MAX_LOG_BLOCKS`](super::logs::MAX_LOG_BLOCKS) blocks and
    /// [`MAX_LOGS`](super::logs::MAX_LOGS) logs (else -32043).
    #[method(name = "eth_getLogs")]
    async fn eth_get_logs(&self, filter: LogFilter) -> RpcResult<Vec<EthLog>>;

    /// `newHeads`: each committed block's header; `logs` (with a filter's
    /// `address` and `topics`): each log of each committed block that it
    /// selects, one notification per log.
    #[subscription(name = "eth_subscribe" => "eth_subscription", unsubscribe = "eth_unsubscribe", item = serde_json::Value, with_extensions)]
    async fn eth_subscribe(&self, kind: String, filter: Option<LogFilter>) -> SubscriptionResult;
}
