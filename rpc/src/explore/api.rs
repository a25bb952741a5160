//! The explore method set, defined once for server and client.

use jsonrpsee::proc_macros::rpc;
use palisade_types::EvmAddress;

use super::types::{AccountTxsQuery, AccountTxsResponse, ActivityResponse, EvmAccountResponse};
use crate::api::RpcResult;

#[rpc(server, client)]
pub trait ExploreApi {
    /// Transactions that touched an account, newest first. `account` is a
    /// native address (0x and 64 hex digits) or an EVM address (0x and 40).
    #[method(name = "account_getTransactions")]
    async fn account_get_transactions(
        &self,
        account: String,
        query: Option<AccountTxsQuery>,
    ) -> RpcResult<AccountTxsResponse>;

    /// An EVM address's balance, nonce, code and roles at the latest height.
    #[method(name = "state_getEvmAccount")]
    async fn state_get_evm_account(&self, address: EvmAddress) -> RpcResult<EvmAccountResponse>;

    /// Proposers and precommit signers of the last `window` heights (default
    /// 100, at most 1,000), and each validator's tally over them.
    #[method(name = "validator_getActivity")]
    async fn validator_get_activity(&self, window: Option<u32>) -> RpcResult<ActivityResponse>;
}
