//! The explore methods over a [`NodeBackend`].

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonrpsee::core::async_trait;
use palisade_runtime::evm::{self, Latest};
use palisade_types::{Address, EvmAddress, Hash, Height, PublicKey, Role};

use super::api::ExploreApiServer;
use super::types::{
    AccountTxEntry, AccountTxsQuery, AccountTxsResponse, ActivityResponse, EvmAccountResponse,
    HeightActivity, Position, TxKind, ValidatorActivity,
};
use crate::api::RpcResult;
use crate::backend::{NodeBackend, TxLocation};
use crate::errors::{backend_err, internal, invalid_params, store_err};

const DEFAULT_PAGE: u32 = 25;
const MAX_PAGE: u32 = 100;
const DEFAULT_WINDOW: u32 = 100;
const MAX_WINDOW: u32 = 1_000;
/// Heights times validators one call may look at: a window of 1,000 over
/// 100 validators, or 100 heights of 1,000 (the answer stays a few MiB).
const MAX_CELLS: u64 = 100_000;
const MISSED_LISTED: usize = 50;

pub struct ExploreImpl {
    pub backend: Arc<dyn NodeBackend>,
}

impl std::fmt::Debug for ExploreImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExploreImpl")
    }
}

/// A native address (32 bytes) as its EVM face, or an EVM address as is.
fn account_key(account: &str) -> RpcResult<EvmAddress> {
    let hex = account.strip_prefix("0x").unwrap_or("");
    match hex.len() {
        64 => account
            .parse::<Address>()
            .map(|a| evm::evm_address(&a))
            .map_err(|e| invalid_params(format!("account {account:?}: {e}"))),
        40 => account
            .parse::<EvmAddress>()
            .map_err(|e| invalid_params(format!("account {account:?}: {e}"))),
        _ => Err(invalid_params(format!(
            "account {account:?}: expected 0x and 64 hex digits (a native address) or 40 (an EVM address)"
        ))),
    }
}

fn role_list(bits: u8) -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|r| bits & (1 << *r as u8) != 0)
        .collect()
}

impl ExploreImpl {
    fn spawn_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn NodeBackend) -> RpcResult<T> + Send + 'static,
    ) -> impl std::future::Future<Output = RpcResult<T>> {
        let backend = self.backend.clone();
        async move {
            tokio::task::spawn_blocking(move || f(backend.as_ref()))
                .await
                .map_err(|e| internal(format!("lookup task failed: {e}")))?
        }
    }
}

fn account_txs(
    backend: &dyn NodeBackend,
    account: EvmAddress,
    query: AccountTxsQuery,
) -> RpcResult<AccountTxsResponse> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(invalid_params(format!(
            "limit must be 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    let before = query.before.map(|p| TxLocation {
        height: Height(p.height),
        index: p.index,
    });
    let page = backend
        .account_txs(&account, before, limit as usize)
        .map_err(backend_err)?
        .ok_or_else(|| {
            crate::errors::error(
                crate::errors::NOT_INDEXED,
                "this node keeps no account index (its ledger.account_index is false)",
            )
        })?;
    Ok(AccountTxsResponse {
        account,
        transactions: page
            .txs
            .into_iter()
            .map(|(hash, at, eth)| AccountTxEntry {
                hash,
                height: at.height.get(),
                index: at.index,
                kind: if eth { TxKind::Eth } else { TxKind::Native },
            })
            .collect(),
        next: page.next.map(|at| Position {
            height: at.height.get(),
            index: at.index,
        }),
        indexed_from: page.indexed_from.get(),
    })
}

fn evm_account(backend: &dyn NodeBackend, address: EvmAddress) -> RpcResult<EvmAccountResponse> {
    let st = Latest(backend.store());
    let native = evm::read_native(&st, &address).map_err(store_err)?;
    let acct = evm::read_account(&st, &address).map_err(store_err)?;
    let balance = match &native {
        // One balance per account: the native account's.
        Some(n) => backend
            .account(n)
            .map_err(backend_err)?
            .map_or(0, |a| a.balance),
        None => acct.as_ref().map_or(0, |a| a.balance),
    };
    let code_hash = acct.as_ref().map_or(evm::EMPTY_CODE_HASH, |a| a.code_hash);
    let code_size = if code_hash == evm::EMPTY_CODE_HASH {
        0
    } else {
        evm::read_code(&st, &code_hash).map_err(store_err)?.len()
    };
    Ok(EvmAccountResponse {
        address,
        balance,
        nonce: acct.as_ref().map_or(0, |a| a.nonce),
        code_hash: Hash(code_hash),
        code_size,
        roles: role_list(evm::read_roles(&st, &address).map_err(store_err)?),
        native,
    })
}

fn activity(backend: &dyn NodeBackend, window: u32) -> RpcResult<ActivityResponse> {
    if window == 0 || window > MAX_WINDOW {
        return Err(invalid_params(format!(
            "window must be 1 to {MAX_WINDOW}, got {window}"
        )));
    }
    let latest = backend.latest_height().map_err(backend_err)?;
    let latest_set = backend.validators(latest).map_err(backend_err)?;
    let set_len = latest_set.as_ref().map_or(1, |s| s.validators().len()) as u64;
    if u64::from(window) * set_len > MAX_CELLS {
        return Err(invalid_params(format!(
            "window {window} over {set_len} validators is more than {MAX_CELLS} heights × validators; ask for at most {}",
            MAX_CELLS / set_len.max(1)
        )));
    }
    let to = latest.get();
    let from = to.saturating_sub(u64::from(window) - 1).max(1);
    let mut tally: BTreeMap<PublicKey, ValidatorActivity> = BTreeMap::new();
    let mut heights = Vec::new();
    // Consecutive heights mostly share one set: read it again only when a
    // header names another.
    let mut set: Option<(Hash, palisade_types::ValidatorSet)> = None;
    for h in (from..=to).rev() {
        let height = Height(h);
        let (Some(header), Some(commit)) = (
            backend.block_header(height).map_err(backend_err)?,
            backend.commit(height).map_err(backend_err)?,
        ) else {
            // Not kept (or not yet written): the window ends here.
            break;
        };
        if set.as_ref().map(|(h, _)| *h) != Some(header.validators_hash) {
            set = backend
                .validators(height)
                .map_err(backend_err)?
                .map(|s| (s.hash(), s));
        }
        let Some((_, set)) = &set else {
            break;
        };
        let signers: Vec<PublicKey> = commit.signatures().iter().map(|s| s.validator).collect();
        // Sorted by key (a certificate's canonical order): a binary search
        // per validator.
        tally_of(&mut tally, header.proposer).proposed += 1;
        // The latest height's certificate may still gain late precommits
        // (the next block carries them): a missing one there is no miss yet.
        let final_certificate = h < to;
        for v in set.validators() {
            let t = tally_of(&mut tally, v.public_key);
            if signers.binary_search(&v.public_key).is_ok() {
                t.signed += 1;
            } else if final_certificate {
                t.missed += 1;
                if t.missed_heights.len() < MISSED_LISTED {
                    t.missed_heights.push(h);
                }
            }
        }
        heights.push(HeightActivity {
            height: h,
            round: commit.round.get(),
            proposer: header.proposer,
            signers,
            final_certificate,
        });
    }
    if let Some(set) = latest_set {
        for v in set.validators() {
            tally_of(&mut tally, v.public_key).power = v.power;
        }
    }
    Ok(ActivityResponse {
        from: heights.last().map_or(to, |a| a.height),
        to,
        validators: tally.into_values().collect(),
        heights,
    })
}

fn tally_of(
    t: &mut BTreeMap<PublicKey, ValidatorActivity>,
    k: PublicKey,
) -> &mut ValidatorActivity {
    t.entry(k).or_insert_with(|| ValidatorActivity {
        public_key: k,
        power: 0,
        proposed: 0,
        signed: 0,
        missed: 0,
        missed_heights: Vec::new(),
    })
}

#[async_trait]
impl ExploreApiServer for ExploreImpl {
    async fn account_get_transactions(
        &self,
        account: String,
        query: Option<AccountTxsQuery>,
    ) -> RpcResult<AccountTxsResponse> {
        self.backend.count_request("account_getTransactions");
        let key = account_key(&account)?;
        self.spawn_blocking(move |b| account_txs(b, key, query.unwrap_or_default()))
            .await
    }

    async fn state_get_evm_account(&self, address: EvmAddress) -> RpcResult<EvmAccountResponse> {
        self.backend.count_request("state_getEvmAccount");
        self.spawn_blocking(move |b| evm_account(b, address)).await
    }

    async fn validator_get_activity(&self, window: Option<u32>) -> RpcResult<ActivityResponse> {
        self.backend.count_request("validator_getActivity");
        let window = window.unwrap_or(DEFAULT_WINDOW);
        self.spawn_blocking(move |b| activity(b, window)).await
    }
}
