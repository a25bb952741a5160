//! The Ethereum methods over a [`NodeBackend`].

use std::sync::Arc;

use jsonrpsee::core::{async_trait, SubscriptionResult};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{Extensions, PendingSubscriptionSink};
use palisade_runtime::evm::{
    self, AtRoot, EstimateError, EvmCall, EvmError, EvmOutcome, EvmStatus, EvmTarget,
};
use palisade_runtime::{
    evm_env, get_at, max_tx_gas, BlockContext, ChainParams, Receipt, StateStore,
};
use palisade_types::{Action, Block, EvmAddress, Hash, Height, Role};

use super::api::EthApiServer;
use super::logs::{self, Matcher, MAX_LOGS, MAX_LOG_BLOCKS};
use super::quantity::{data, parse_data, parse_q, parse_q64, parse_word, q};
use super::types::{BlockSpec, CallRequest, EthBlock, EthLog, FeeHistory, LogFilter, SyncStatus};
use crate::api::RpcResult;
use crate::backend::{EthTxFound, NodeBackend, SubmitError, TxLocation};
use crate::errors::{self, backend_err, error, error_with, internal, invalid_params, store_err};

/// Most blocks one `eth_feeHistory` covers (as Ethereum nodes allow).
pub const MAX_FEE_HISTORY_BLOCKS: u64 = 1_024;

/// keccak256 of the RLP of an empty list: the uncles hash of every block.
const EMPTY_UNCLES: &str = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347";

/// Serves the Ethereum methods from `backend`.
pub struct EthImpl {
    pub backend: Arc<dyn NodeBackend>,
}

impl std::fmt::Debug for EthImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EthImpl")
    }
}

fn unavailable(what: impl std::fmt::Display) -> ErrorObjectOwned {
    error(
        errors::HEIGHT_UNAVAILABLE,
        format!("block {what} is not available on this node"),
    )
}

/// The error an Ethereum client expects for a call that did not succeed.
/// A 32-byte hash parameter.
fn parse_hash(s: &str, what: &str) -> RpcResult<Hash> {
    s.parse()
        .map_err(|e| invalid_params(format!("{what}: {e}")))
}

fn failed(o: &EvmOutcome) -> ErrorObjectOwned {
    match &o.status {
        EvmStatus::Success => internal("not a failure"),
        EvmStatus::Revert => {
            let message = match evm::revert_reason(&o.output) {
                Some(r) => format!("execution reverted: {r}"),
                None => "execution reverted".to_string(),
            };
            error_with(errors::EXECUTION_REVERTED, message, &data(&o.output))
        }
        EvmStatus::Halt(why) => error(errors::EXECUTION_FAILED, *why),
        EvmStatus::DeployDenied => error(
            errors::EXECUTION_FAILED,
            "the sender lacks the deployer role and the call creates a contract",
        ),
    }
}

fn evm_err(e: EvmError) -> ErrorObjectOwned {
    match e {
        EvmError::Invalid(why) => error(errors::EXECUTION_FAILED, why),
        EvmError::Store(s) => store_err(s),
    }
}

/// Whether a receipt's transaction ran in the EVM and is committed.
fn is_evm(r: &Receipt) -> bool {
    // One execution refused is in the block but not committed (it used no
    // nonce and may still be included): Ethereum clients must not see it
    // as mined. Anything that ran used gas.
    r.evm
        .as_ref()
        .is_some_and(|e| r.is_success() || e.gas_used > 0)
}

/// The position of the block's transaction `index` among its EVM
/// transactions: its `transactionIndex` in the Ethereum view, where only
/// those are listed.
fn evm_position(receipts: &[Receipt], index: usize) -> usize {
    receipts
        .get(..index)
        .unwrap_or_default()
        .iter()
        .filter(|r| is_evm(r))
        .count()
}

impl EthImpl {
    fn latest(&self) -> RpcResult<Height> {
        self.backend.latest_height().map_err(backend_err)
    }

    /// The height `spec` names (the latest when none).
    fn height(&self, spec: Option<&BlockSpec>) -> RpcResult<Height> {
        let latest = self.latest()?;
        let h = self.named_height(spec, latest)?;
        if h > latest {
            return Err(unavailable(h));
        }
        Ok(h)
    }

    /// The height `spec` names, which may be above `latest`.
    fn named_height(&self, spec: Option<&BlockSpec>, latest: Height) -> RpcResult<Height> {
        Ok(match spec {
            None => latest,
            Some(BlockSpec::Tag(t)) => match t.as_str() {
                "latest" | "pending" | "safe" | "finalized" => latest,
                "earliest" => Height::GENESIS,
                n => Height(parse_q64(n, "block")?),
            },
            Some(BlockSpec::Number { block_number }) => Height(parse_q64(block_number, "block")?),
            Some(BlockSpec::Hash { block_hash, .. }) => self
                .height_of_hash(&parse_hash(block_hash, "blockHash")?)?
                .ok_or_else(|| unavailable(block_hash))?,
        })
    }

    /// The height of the committed block `hash`; the genesis hash names
    /// height 0 (block 1's parent), which has no block of its own here.
    fn height_of_hash(&self, hash: &Hash) -> RpcResult<Option<Height>> {
        if let Some(h) = self.backend.height_of_block(hash).map_err(backend_err)? {
            return Ok(Some(h));
        }
        let genesis = self.backend.status().map_err(backend_err)?.genesis_hash;
        Ok((*hash == genesis).then_some(Height::GENESIS))
    }

    /// The Ethereum view of the block at `h` (the genesis at 0), or none.
    fn eth_block_at(&self, h: Height, full: bool) -> RpcResult<Option<EthBlock>> {
        if h == Height::GENESIS {
            return self.genesis_block().map(Some);
        }
        self.retained()?.block(h)?;
        match self.backend.block(h).map_err(backend_err)? {
            Some(b) => Ok(Some(self.eth_block(&b, full)?)),
            None => Ok(None),
        }
    }

    /// The state after `h`, and the chain parameters in it.
    fn state(&self, h: Height) -> RpcResult<(AtRoot<'_>, ChainParams)> {
        self.retained()?.state(h)?;
        let root = self
            .backend
            .state_root(h)
            .map_err(backend_err)?
            .ok_or_else(|| unavailable(h))?;
        let store: &dyn StateStore = self.backend.store();
        let raw = get_at(store, root, palisade_runtime::state::keys::PARAMS)
            .map_err(store_err)?
            .ok_or_else(|| internal("chain parameters missing"))?;
        let params: ChainParams =
            borsh::from_slice(&raw).map_err(|e| internal(format!("chain parameters: {e}")))?;
        Ok((AtRoot { store, root }, params))
    }

    /// The committed block at `h` (one the chain has: -32042 if missing).
    fn retained(&self) -> RpcResult<crate::backend::Retained> {
        self.backend.retained().map_err(backend_err)
    }

    fn block_at(&self, h: Height) -> RpcResult<Block> {
        self.retained()?.block(h)?;
        self.backend
            .block(h)
            .map_err(backend_err)?
            .ok_or_else(|| unavailable(h))
    }

    fn latest_params(&self) -> RpcResult<ChainParams> {
        let h = self.latest()?;
        Ok(self.state(h)?.1)
    }

    fn block_time_ms(&self, h: Height) -> RpcResult<u64> {
        Ok(self
            .backend
            .block(h)
            .map_err(backend_err)?
            .map_or(0, |b| b.header.time.as_millis()))
    }

    /// `call` as the EVM runs it after block `h`, with the caller's right
    /// to deploy.
    fn prepare(
        &self,
        call: &CallRequest,
        h: Height,
    ) -> RpcResult<(AtRoot<'_>, palisade_runtime::evm::EvmEnv, EvmCall, bool)> {
        let (at, params) = self.state(h)?;
        let mut env = evm_env(
            // A call writes nothing, so the parent hash is not needed.
            &BlockContext {
                time_ms: self.block_time_ms(h)?,
                ..BlockContext::from(h)
            },
            &params,
        );
        let caller = match &call.from {
            Some(f) => call_address(f, "from")?,
            None => EvmAddress::default(),
        };
        let target = match &call.to {
            Some(t) => EvmTarget::Call(call_address(t, "to")?),
            None => EvmTarget::Create,
        };
        let input = call_input(call)?;
        let opt = |v: &Option<String>, what| v.as_deref().map(|s| parse_q(s, what)).transpose();
        let max = max_tx_gas(&params);
        let gas_limit = match &call.gas {
            Some(g) => parse_q64(g, "gas")?.min(max),
            None => max,
        };
        let gas_price = opt(&call.gas_price, "gasPrice")?
            .or(opt(&call.max_fee_per_gas, "maxFeePerGas")?)
            .unwrap_or(0);
        // A call that names no price pays none, as on Ethereum nodes.
        if gas_price == 0 {
            env.base_fee = 0;
        }
        let access_list = call_access_list(call)?;
        let may_deploy =
            evm::read_roles(&at, &caller).map_err(store_err)? & (1 << Role::Deployer as u8) != 0;
        let nonce = match &call.nonce {
            Some(n) => parse_q64(n, "nonce")?,
            None => evm::read_account(&at, &caller)
                .map_err(store_err)?
                .map_or(0, |a| a.nonce),
        };
        Ok((
            at,
            env,
            EvmCall {
                caller,
                target,
                value: opt(&call.value, "value")?.unwrap_or(0),
                data: input,
                gas_limit,
                gas_price,
                priority_fee: opt(&call.max_priority_fee_per_gas, "maxPriorityFeePerGas")?,
                access_list,
                nonce,
            },
            may_deploy,
        ))
    }

    /// The sender, recipient, type and effective gas price of the
    /// transaction at `index` in `block` (hash `hash`): a native EVM action
    /// or an Ethereum transaction.
    fn sender_of(
        &self,
        block: &Block,
        index: usize,
        hash: &Hash,
        params: &ChainParams,
    ) -> RpcResult<(EvmAddress, Option<String>, u8, u128)> {
        if let Some(tx) = block.txs.get(index) {
            let to = match &tx.tx.action {
                Action::EvmCall { to, .. } => Some(to.to_string()),
                _ => None,
            };
            return Ok((
                evm::evm_address(&tx.tx.signer),
                to,
                0u8,
                params.min_gas_price,
            ));
        }
        let found = self
            .backend
            .eth_tx(hash)
            .map_err(backend_err)?
            .ok_or_else(|| internal("transaction of a receipt missing"))?;
        let i = &found.input;
        let price = match i.max_priority_fee_per_gas {
            Some(tip) => i
                .max_fee_per_gas
                .min(params.min_gas_price.saturating_add(tip)),
            None => i.max_fee_per_gas,
        };
        Ok((
            i.sender,
            i.to.map(|t| t.to_string()),
            tx_type_of(&found),
            price,
        ))
    }

    /// The receipts of `block`'s transactions, in order.
    fn receipts(&self, block: &Block) -> RpcResult<Vec<Receipt>> {
        block
            .tx_hashes()
            .iter()
            .map(|h| {
                self.backend
                    .receipt(h)
                    .map_err(backend_err)?
                    .map(|(r, _)| r)
                    .ok_or_else(|| internal(format!("receipt of {h} missing")))
            })
            .collect()
    }

    /// Block 0 as Ethereum clients expect it: the genesis, which has no
    /// block of its own here; its hash is the genesis hash (block 1's
    /// parent), its state the genesis state.
    fn genesis_block(&self) -> RpcResult<EthBlock> {
        let status = self.backend.status().map_err(backend_err)?;
        let time_ms = self
            .backend
            .genesis()
            .get("genesis_time_ms")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let (at, params) = self.state(Height::GENESIS)?;
        let empty = palisade_types::merkle::root::<&[u8]>(&[]);
        Ok(EthBlock {
            number: q(0),
            hash: status.genesis_hash.to_string(),
            parent_hash: Hash::ZERO.to_string(),
            timestamp: q((time_ms / 1000).into()),
            gas_limit: q(params.max_block_gas.into()),
            gas_used: q(0),
            base_fee_per_gas: q(params.min_gas_price),
            miner: EvmAddress::default().to_string(),
            state_root: at.root.to_string(),
            transactions_root: empty.to_string(),
            receipts_root: empty.to_string(),
            logs_bloom: data(&evm::LogsBloom::default().0),
            sha3_uncles: EMPTY_UNCLES.into(),
            uncles: Vec::new(),
            difficulty: "0x0".into(),
            total_difficulty: "0x0".into(),
            nonce: "0x0000000000000000".into(),
            mix_hash: Hash::ZERO.to_string(),
            extra_data: "0x".into(),
            size: q(0),
            transactions: Vec::new(),
        })
    }

    fn eth_block(&self, block: &Block, full: bool) -> RpcResult<EthBlock> {
        let h = block.height();
        let receipts = self.receipts(block)?;
        let (_, params) = self.state(h)?;
        let gas_used: u64 = receipts
            .iter()
            .filter_map(|r| r.evm.as_ref())
            .map(|e| e.gas_used)
            .sum();
        let hash = block.hash();
        // Each transaction's index among the block's EVM transactions.
        let positions: Vec<usize> = receipts
            .iter()
            .scan(0usize, |n, r| {
                let at = *n;
                *n += usize::from(is_evm(r));
                Some(at)
            })
            .collect();
        let position = |index: usize| positions.get(index).copied().unwrap_or_default();
        let mut transactions = Vec::new();
        for (index, (tx, r)) in block.txs.iter().zip(&receipts).enumerate() {
            if !is_evm(r) {
                continue;
            }
            transactions.push(if full {
                tx_object(tx, r, &hash, h, position(index), &params)
            } else {
                serde_json::Value::String(r.tx_hash.to_string())
            });
        }
        // Senders of the whole block at once (cached, or recovered as a
        // batch), not a lookup of each transaction.
        let inputs = if full {
            self.backend
                .eth_inputs(&block.eth_txs)
                .map_err(backend_err)?
        } else {
            Vec::new()
        };
        for (k, raw) in block.eth_txs.iter().enumerate() {
            let index = block.txs.len() + k;
            if receipts.get(index).is_some_and(|r| !is_evm(r)) {
                continue;
            }
            transactions.push(match inputs.get(k) {
                Some(input) => {
                    let found = EthTxFound {
                        raw: raw.clone(),
                        input: input.clone(),
                        location: None,
                    };
                    eth_tx_object(&found, Some((&hash, h, position(index))), &params)?
                }
                None => serde_json::Value::String(raw.hash().to_string()),
            });
        }
        let hd = &block.header;
        // A header names its parent's results (deferred execution): an
        // Ethereum client reads `stateRoot` and `receiptsRoot` as the
        // block's own. The node keeps the root after each block whose
        // state it keeps; the next header names it for older ones.
        let state_root = match self.backend.state_root(h).map_err(backend_err)? {
            Some(root) => root,
            None => h
                .next()
                .ok()
                .and_then(|n| self.backend.block(n).ok().flatten())
                .map_or(Hash::ZERO, |b| b.header.state_root),
        };
        Ok(EthBlock {
            number: q(h.get().into()),
            hash: hash.to_string(),
            parent_hash: hd.last_block_hash.to_string(),
            timestamp: q((hd.time.as_millis() / 1000).into()),
            gas_limit: q(params.max_block_gas.into()),
            gas_used: q(gas_used.into()),
            base_fee_per_gas: q(params.min_gas_price),
            miner: EvmAddress::default().to_string(),
            state_root: state_root.to_string(),
            transactions_root: hd.tx_root.to_string(),
            receipts_root: palisade_runtime::receipts_root(&receipts).to_string(),
            logs_bloom: data(&evm::LogsBloom::of_receipts(&receipts).0),
            sha3_uncles: EMPTY_UNCLES.into(),
            uncles: Vec::new(),
            difficulty: "0x0".into(),
            total_difficulty: "0x0".into(),
            nonce: "0x0000000000000000".into(),
            mix_hash: Hash::ZERO.to_string(),
            extra_data: "0x".into(),
            size: q(palisade_types::encoded_len(block) as u128),
            transactions,
        })
    }
}

/// A native EVM action as an Ethereum transaction object: from the
/// signer's EVM address, the native nonce, no secp256k1 signature.
fn tx_object(
    tx: &palisade_types::SignedTransaction,
    r: &Receipt,
    block_hash: &Hash,
    h: Height,
    index: usize,
    params: &ChainParams,
) -> serde_json::Value {
    let (to, value, input, gas) = match &tx.tx.action {
        Action::EvmCall {
            to,
            value,
            data: d,
            gas_limit,
        } => (Some(to.to_string()), *value, d.to_vec(), *gas_limit),
        Action::EvmCreate {
            value,
            code,
            gas_limit,
        } => (None, *value, code.to_vec(), *gas_limit),
        _ => (None, 0, Vec::new(), 0),
    };
    serde_json::json!({
        "hash": r.tx_hash.to_string(),
        "nonce": q(tx.tx.nonce.into()),
        "blockHash": block_hash.to_string(),
        "blockNumber": q(h.get().into()),
        "transactionIndex": q(index as u128),
        "from": evm::evm_address(&tx.tx.signer).to_string(),
        "to": to,
        "value": q(value),
        "gas": q(gas.into()),
        "gasPrice": q(params.min_gas_price),
        "input": data(&input),
        "type": "0x0",
        "chainId": q(params.evm_chain_id.into()),
        "v": "0x0",
        "r": "0x0",
        "s": "0x0",
    })
}

/// A big-endian number of any length as a quantity.
fn q_bytes(b: &[u8]) -> String {
    let digits = hex::encode(b);
    let trimmed = digits.trim_start_matches('0');
    format!("0x{}", if trimmed.is_empty() { "0" } else { trimmed })
}

/// The EIP-2718 type byte of a transaction (legacy: 0).
fn tx_type_of(found: &EthTxFound) -> u8 {
    match found.raw.bytes().first() {
        Some(t @ (1 | 2)) => *t,
        _ => 0,
    }
}

/// An Ethereum transaction as clients read it, with its signature.
fn eth_tx_object(
    found: &EthTxFound,
    at: Option<(&Hash, Height, usize)>,
    params: &ChainParams,
) -> RpcResult<serde_json::Value> {
    let tx = palisade_ethtx::decode(found.raw.bytes(), params.evm_chain_id)
        .map_err(|e| internal(format!("stored transaction: {e}")))?;
    let i = &found.input;
    let ty = tx_type_of(found);
    let v: u128 = match ty {
        0 => u128::from(params.evm_chain_id) * 2 + 35 + u128::from(tx.y_parity),
        _ => u128::from(tx.y_parity),
    };
    let mut o = serde_json::json!({
        "hash": i.hash.to_string(),
        "nonce": q(i.nonce.into()),
        "blockHash": at.map(|(b, _, _)| b.to_string()),
        "blockNumber": at.map(|(_, h, _)| q(h.get().into())),
        "transactionIndex": at.map(|(_, _, k)| q(k as u128)),
        "from": i.sender.to_string(),
        "to": i.to.map(|t| t.to_string()),
        "value": q(i.value),
        "gas": q(i.gas_limit.into()),
        // Mined: the price it paid; pending: its fee cap.
        "gasPrice": q(match (i.max_priority_fee_per_gas, at) {
            (Some(tip), Some(_)) => i
                .max_fee_per_gas
                .min(params.min_gas_price.saturating_add(tip)),
            _ => i.max_fee_per_gas,
        }),
        "input": data(&i.data),
        "type": q(ty.into()),
        "chainId": q(i.chain_id.into()),
        "v": q(v),
        "r": q_bytes(&tx.signature[..32]),
        "s": q_bytes(&tx.signature[32..]),
    });
    if ty != 0 {
        o["yParity"] = serde_json::Value::String(q(u128::from(tx.y_parity)));
        o["accessList"] = serde_json::json!(i
            .access_list
            .iter()
            .map(|(a, keys)| serde_json::json!({
                "address": a.to_string(),
                "storageKeys": keys.iter().map(|k| data(k)).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>());
    }
    if let Some(tip) = i.max_priority_fee_per_gas {
        o["maxFeePerGas"] = serde_json::Value::String(q(i.max_fee_per_gas));
        o["maxPriorityFeePerGas"] = serde_json::Value::String(q(tip));
    }
    Ok(o)
}

/// The methods that run the EVM or read many blocks, run off the async
/// threads (consensus and networking share them).
impl EthImpl {
    fn eth_fee_history_sync(
        &self,
        block_count: serde_json::Value,
        newest: BlockSpec,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        self.backend.count_request("eth_feeHistory");
        let count = match &block_count {
            serde_json::Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| invalid_params("blockCount must be a whole number"))?,
            serde_json::Value::String(s) => parse_q64(s, "blockCount")?,
            _ => return Err(invalid_params("blockCount must be a number or a quantity")),
        };
        if count == 0 || count > MAX_FEE_HISTORY_BLOCKS {
            return Err(invalid_params(format!(
                "blockCount must be 1..={MAX_FEE_HISTORY_BLOCKS}"
            )));
        }
        if let Some(p) = &percentiles {
            if p.len() > 100
                || p.iter().any(|x| !(0.0..=100.0).contains(x))
                || p.windows(2).any(|w| w[0] > w[1])
            {
                return Err(invalid_params(
                    "rewardPercentiles: at most 100 values in 0..=100, ascending",
                ));
            }
        }
        let newest = self.height(Some(&newest))?;
        let oldest = newest.get().saturating_add(1).saturating_sub(count).max(1);
        let mut base = Vec::new();
        let mut ratio = Vec::new();
        let mut reward = Vec::new();
        for h in oldest..=newest.get() {
            let (_, params) = self.state(Height(h))?;
            let block = self.block_at(Height(h))?;
            let used: u64 = self
                .receipts(&block)?
                .iter()
                .filter_map(|r| r.evm.as_ref())
                .map(|e| e.gas_used)
                .sum();
            base.push(q(params.min_gas_price));
            ratio.push(used as f64 / params.max_block_gas as f64);
            if let Some(p) = &percentiles {
                reward.push(vec![q(0); p.len()]);
            }
        }
        // The base fee of the block after the newest.
        base.push(q(self.latest_params()?.min_gas_price));
        Ok(FeeHistory {
            oldest_block: q(oldest.into()),
            base_fee_per_gas: base,
            gas_used_ratio: ratio,
            reward: percentiles.map(|_| reward),
        })
    }

    fn eth_call_sync(&self, call: CallRequest, block: Option<BlockSpec>) -> RpcResult<String> {
        self.backend.count_request("eth_call");
        let h = self.height(block.as_ref())?;
        let (at, env, c, may_deploy) = self.prepare(&call, h)?;
        let out = evm::call_evm(&at, &env, &c, may_deploy).map_err(evm_err)?;
        if out.status != EvmStatus::Success {
            return Err(failed(&out));
        }
        Ok(data(&out.output))
    }

    fn eth_estimate_gas_sync(
        &self,
        call: CallRequest,
        block: Option<BlockSpec>,
    ) -> RpcResult<String> {
        self.backend.count_request("eth_estimateGas");
        let h = self.height(block.as_ref())?;
        let (at, env, c, may_deploy) = self.prepare(&call, h)?;
        match evm::estimate_gas(&at, &env, &c, may_deploy) {
            Ok(gas) => Ok(q(gas.into())),
            Err(EstimateError::Fails(o)) => Err(failed(&o)),
            Err(EstimateError::Evm(e)) => Err(evm_err(e)),
        }
    }

    fn eth_get_block_by_number_sync(
        &self,
        block: BlockSpec,
        full: bool,
    ) -> RpcResult<Option<EthBlock>> {
        self.backend.count_request("eth_getBlockByNumber");
        let h = match self.height(Some(&block)) {
            Ok(h) => h,
            // A number beyond the chain: no such block (null), as
            // Ethereum nodes answer.
            Err(e) if e.code() == errors::HEIGHT_UNAVAILABLE => return Ok(None),
            Err(e) => return Err(e),
        };
        self.eth_block_at(h, full)
    }

    fn eth_get_transaction_receipt_sync(
        &self,
        hash: String,
    ) -> RpcResult<Option<serde_json::Value>> {
        self.backend.count_request("eth_getTransactionReceipt");
        let hash = parse_hash(&hash, "transaction hash")?;
        let Some((r, TxLocation { height, index })) =
            self.backend.receipt(&hash).map_err(backend_err)?
        else {
            return Ok(None);
        };
        let Some(e) = r.evm.as_ref() else {
            return Ok(None);
        };
        let block = self.block_at(height)?;
        let (_, params) = self.state(height)?;
        let receipts = self.receipts(&block)?;
        let index = index as usize;
        let position = evm_position(&receipts, index);
        let before = receipts.get(..index).unwrap_or_default();
        let cumulative: u64 = before
            .iter()
            .chain(std::iter::once(&r))
            .filter_map(|x| x.evm.as_ref())
            .map(|x| x.gas_used)
            .sum();
        let block_hash = block.hash();
        let (from, to, tx_type, price) = self.sender_of(&block, index, &hash, &params)?;
        let logs: Vec<EthLog> = logs::block_logs(&block_hash, height, &receipts)
            .filter(|(i, _, _)| *i == index)
            .map(|(_, _, view)| view)
            .collect();
        Ok(Some(serde_json::json!({
            "transactionHash": hash.to_string(),
            "transactionIndex": q(position as u128),
            "blockHash": block_hash.to_string(),
            "blockNumber": q(height.get().into()),
            "from": from.to_string(),
            "to": to,
            "cumulativeGasUsed": q(cumulative.into()),
            "gasUsed": q(e.gas_used.into()),
            "effectiveGasPrice": q(price),
            "contractAddress": e.contract_address.map(|a| a.to_string()),
            "logs": logs,
            "logsBloom": data(&evm::LogsBloom::of_receipts([&r]).0),
            "status": if r.code == 0 { "0x1" } else { "0x0" },
            "type": q(tx_type.into()),
        })))
    }

    fn eth_get_block_by_hash_sync(&self, hash: String, full: bool) -> RpcResult<Option<EthBlock>> {
        self.backend.count_request("eth_getBlockByHash");
        match self.height_of_hash(&parse_hash(&hash, "block hash")?)? {
            Some(h) => self.eth_block_at(h, full),
            None => Ok(None),
        }
    }

    fn eth_get_transaction_by_hash_sync(
        &self,
        hash: String,
    ) -> RpcResult<Option<serde_json::Value>> {
        self.backend.count_request("eth_getTransactionByHash");
        let hash = parse_hash(&hash, "transaction hash")?;
        let params = self.latest_params()?;
        if let Some(found) = self.backend.eth_tx(&hash).map_err(backend_err)? {
            let at = match &found.location {
                Some(TxLocation { height, index }) => {
                    let block = self.block_at(*height)?;
                    let receipts = self.receipts(&block)?;
                    Some((
                        block.hash(),
                        *height,
                        evm_position(&receipts, *index as usize),
                    ))
                }
                None => None,
            };
            return eth_tx_object(&found, at.as_ref().map(|(b, h, i)| (b, *h, *i)), &params)
                .map(Some);
        }
        // A native EVM action.
        let Some((tx, Some(TxLocation { height, index }))) =
            self.backend.tx(&hash).map_err(backend_err)?
        else {
            return Ok(None);
        };
        let Some((r, _)) = self.backend.receipt(&hash).map_err(backend_err)? else {
            return Ok(None);
        };
        if !is_evm(&r) {
            return Ok(None);
        }
        let block = self.block_at(height)?;
        let receipts = self.receipts(&block)?;
        Ok(Some(tx_object(
            &tx,
            &r,
            &block.hash(),
            height,
            evm_position(&receipts, index as usize),
            &params,
        )))
    }
}

impl EthImpl {
    /// The heights a `getLogs` filter spans.
    fn log_range(&self, filter: &LogFilter) -> RpcResult<(Height, Height)> {
        if let Some(hash) = &filter.block_hash {
            if filter.from_block.is_some() || filter.to_block.is_some() {
                return Err(invalid_params(
                    "blockHash and fromBlock/toBlock are exclusive; give one",
                ));
            }
            let h = self.height(Some(&BlockSpec::Hash {
                block_hash: hash.clone(),
                require_canonical: None,
            }))?;
            return Ok((h, h));
        }
        let tag = |s: &Option<String>| BlockSpec::Tag(s.clone().unwrap_or_else(|| "latest".into()));
        let latest = self.latest()?;
        let from = self.named_height(Some(&tag(&filter.from_block)), latest)?;
        let to = self.named_height(Some(&tag(&filter.to_block)), latest)?;
        if from > to {
            return Err(invalid_params(format!(
                "fromBlock {from} is after toBlock {to}"
            )));
        }
        if to.get() - from.get() >= MAX_LOG_BLOCKS {
            return Err(error(
                errors::TOO_MANY_RESULTS,
                format!(
                    "the range {from}..={to} spans more than {MAX_LOG_BLOCKS} blocks; query a shorter one"
                ),
            ));
        }
        if to > latest {
            return Err(unavailable(to));
        }
        Ok((from, to))
    }

    fn eth_get_logs_sync(&self, filter: LogFilter) -> RpcResult<Vec<EthLog>> {
        self.backend.count_request("eth_getLogs");
        let matcher = Matcher::new(&filter)?;
        let (from, to) = self.log_range(&filter)?;
        self.retained()?.block(from)?;
        let mut out = Vec::new();
        for (h, bloom) in self.backend.log_blooms(from, to).map_err(backend_err)? {
            if !matcher.may_match(&bloom) {
                continue;
            }
            let block = self.block_at(h)?;
            logs::select(&matcher, &block, &self.receipts(&block)?, &mut out);
            if out.len() > MAX_LOGS {
                return Err(error(
                    errors::TOO_MANY_RESULTS,
                    format!(
                        "the query selects more than {MAX_LOGS} logs; narrow the block range or the filter"
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// A committed block's header as `newHeads` sends it (the block
    /// without its transactions).
    fn head_sync(&self, h: Height) -> RpcResult<Option<serde_json::Value>> {
        let Some(block) = self.backend.block(h).map_err(backend_err)? else {
            return Ok(None);
        };
        let mut head = serde_json::to_value(self.eth_block(&block, false)?)
            .map_err(|e| internal(e.to_string()))?;
        if let Some(o) = head.as_object_mut() {
            for field in ["transactions", "uncles", "size", "totalDifficulty"] {
                o.remove(field);
            }
        }
        Ok(Some(head))
    }

    /// The logs of block `h` that `matcher` selects.
    fn block_logs_sync(&self, matcher: &Matcher, h: Height) -> RpcResult<Vec<EthLog>> {
        let mut out = Vec::new();
        for (_, bloom) in self.backend.log_blooms(h, h).map_err(backend_err)? {
            if matcher.may_match(&bloom) {
                let block = self.block_at(h)?;
                logs::select(matcher, &block, &self.receipts(&block)?, &mut out);
            }
        }
        Ok(out)
    }

    /// Runs `f` off the async threads with a handle on the same backend.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&EthImpl) -> RpcResult<T> + Send + 'static,
    ) -> RpcResult<T> {
        let me = EthImpl {
            backend: self.backend.clone(),
        };
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| internal(e.to_string()))?
    }
}

/// What an `eth_subscribe` subscription sends.
enum Subscription {
    NewHeads,
    Logs(Matcher),
}

#[async_trait]
impl EthApiServer for EthImpl {
    async fn web3_client_version(&self) -> RpcResult<String> {
        self.backend.count_request("web3_clientVersion");
        Ok(format!("palisade/{}", env!("CARGO_PKG_VERSION")))
    }

    async fn net_version(&self) -> RpcResult<String> {
        self.backend.count_request("net_version");
        Ok(self.latest_params()?.evm_chain_id.to_string())
    }

    async fn net_peer_count(&self) -> RpcResult<String> {
        self.backend.count_request("net_peerCount");
        let s = self.backend.status().map_err(backend_err)?;
        Ok(q(s.peers as u128))
    }

    async fn eth_accounts(&self) -> RpcResult<Vec<String>> {
        self.backend.count_request("eth_accounts");
        Ok(Vec::new())
    }

    async fn net_listening(&self) -> RpcResult<bool> {
        self.backend.count_request("net_listening");
        Ok(true)
    }

    async fn eth_chain_id(&self) -> RpcResult<String> {
        self.backend.count_request("eth_chainId");
        Ok(q(self.latest_params()?.evm_chain_id.into()))
    }

    async fn eth_block_number(&self) -> RpcResult<String> {
        self.backend.count_request("eth_blockNumber");
        Ok(q(self.latest()?.get().into()))
    }

    async fn eth_syncing(&self) -> RpcResult<serde_json::Value> {
        self.backend.count_request("eth_syncing");
        let s = self.backend.status().map_err(backend_err)?;
        if !s.syncing {
            return Ok(serde_json::Value::Bool(false));
        }
        serde_json::to_value(SyncStatus {
            starting_block: q(0),
            current_block: q(s.latest_height.into()),
            highest_block: q(s.sync_target.into()),
        })
        .map_err(|e| internal(e.to_string()))
    }

    async fn eth_gas_price(&self) -> RpcResult<String> {
        self.backend.count_request("eth_gasPrice");
        Ok(q(self.latest_params()?.min_gas_price))
    }

    async fn eth_max_priority_fee_per_gas(&self) -> RpcResult<String> {
        self.backend.count_request("eth_maxPriorityFeePerGas");
        Ok(q(0))
    }

    async fn eth_fee_history(
        &self,
        block_count: serde_json::Value,
        newest: BlockSpec,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        let me = EthImpl {
            backend: self.backend.clone(),
        };
        tokio::task::spawn_blocking(move || {
            me.eth_fee_history_sync(block_count, newest, percentiles)
        })
        .await
        .map_err(|e| internal(e.to_string()))?
    }

    async fn eth_get_balance(
        &self,
        address: EvmAddress,
        block: Option<BlockSpec>,
    ) -> RpcResult<String> {
        self.backend.count_request("eth_getBalance");
        let (at, _) = self.state(self.height(block.as_ref())?)?;
        let balance = match evm::read_native(&at, &address).map_err(store_err)? {
            Some(native) => get_at(
                at.store,
                at.root,
                &palisade_runtime::state::keys::account(&native),
            )
            .map_err(store_err)?
            .map(|b| borsh::from_slice::<palisade_runtime::Account>(&b))
            .transpose()
            .map_err(|e| internal(e.to_string()))?
            .map_or(0, |a| a.balance),
            None => evm::read_account(&at, &address)
                .map_err(store_err)?
                .map_or(0, |a| a.balance),
        };
        Ok(q(balance))
    }

    async fn eth_get_transaction_count(
        &self,
        address: EvmAddress,
        block: Option<BlockSpec>,
    ) -> RpcResult<String> {
        self.backend.count_request("eth_getTransactionCount");
        let (at, _) = self.state(self.height(block.as_ref())?)?;
        let nonce = evm::read_account(&at, &address)
            .map_err(store_err)?
            .map_or(0, |a| a.nonce);
        let pending = matches!(&block, Some(BlockSpec::Tag(t)) if t == "pending");
        Ok(q(if pending {
            self.backend.eth_pending_nonce(&address, nonce)
        } else {
            nonce
        }
        .into()))
    }

    async fn eth_get_code(
        &self,
        address: EvmAddress,
        block: Option<BlockSpec>,
    ) -> RpcResult<String> {
        self.backend.count_request("eth_getCode");
        let (at, _) = self.state(self.height(block.as_ref())?)?;
        let code = match evm::read_account(&at, &address).map_err(store_err)? {
            Some(a) if a.code_hash != evm::EMPTY_CODE_HASH => {
                evm::read_code(&at, &a.code_hash).map_err(store_err)?
            }
            _ => Vec::new(),
        };
        Ok(data(&code))
    }

    async fn eth_get_storage_at(
        &self,
        address: EvmAddress,
        slot: String,
        block: Option<BlockSpec>,
    ) -> RpcResult<String> {
        self.backend.count_request("eth_getStorageAt");
        let slot = parse_word(&slot, "slot")?;
        let (at, _) = self.state(self.height(block.as_ref())?)?;
        Ok(data(
            &evm::read_slot(&at, &address, &slot).map_err(store_err)?,
        ))
    }

    async fn eth_call(&self, call: CallRequest, block: Option<BlockSpec>) -> RpcResult<String> {
        let me = EthImpl {
            backend: self.backend.clone(),
        };
        tokio::task::spawn_blocking(move || me.eth_call_sync(call, block))
            .await
            .map_err(|e| internal(e.to_string()))?
    }

    async fn eth_estimate_gas(
        &self,
        call: CallRequest,
        block: Option<BlockSpec>,
    ) -> RpcResult<String> {
        let me = EthImpl {
            backend: self.backend.clone(),
        };
        tokio::task::spawn_blocking(move || me.eth_estimate_gas_sync(call, block))
            .await
            .map_err(|e| internal(e.to_string()))?
    }

    async fn eth_get_block_by_number(
        &self,
        block: BlockSpec,
        full: bool,
    ) -> RpcResult<Option<EthBlock>> {
        let me = EthImpl {
            backend: self.backend.clone(),
        };
        tokio::task::spawn_blocking(move || me.eth_get_block_by_number_sync(block, full))
            .await
            .map_err(|e| internal(e.to_string()))?
    }

    async fn eth_send_raw_transaction(&self, raw: String) -> RpcResult<String> {
        self.backend.count_request("eth_sendRawTransaction");
        let bytes = parse_data(&raw, "transaction")?;
        if bytes.len() > palisade_types::limits::MAX_TX_BYTES {
            return Err(error(
                errors::TX_MALFORMED,
                format!(
                    "transaction is {} bytes; at most {}",
                    bytes.len(),
                    palisade_types::limits::MAX_TX_BYTES
                ),
            ));
        }
        match self.backend.submit_eth(bytes).await {
            Ok(h) => Ok(h.to_string()),
            Err(SubmitError::Duplicate) => Err(error(
                errors::TX_DUPLICATE,
                "already known: the transaction is in the mempool",
            )),
            Err(SubmitError::Full(why)) => Err(error(
                errors::MEMPOOL_FULL,
                format!("mempool is full: {why}"),
            )),
            Err(SubmitError::Rejected { code, message }) => Err(error_with(
                errors::TX_REJECTED,
                format!("transaction rejected: {message}"),
                code,
            )),
            Err(SubmitError::Internal(m)) => Err(internal(m)),
        }
    }

    async fn eth_get_transaction_by_hash(
        &self,
        hash: String,
    ) -> RpcResult<Option<serde_json::Value>> {
        let me = EthImpl {
            backend: self.backend.clone(),
        };
        tokio::task::spawn_blocking(move || me.eth_get_transaction_by_hash_sync(hash))
            .await
            .map_err(|e| internal(e.to_string()))?
    }

    async fn eth_get_transaction_receipt(
        &self,
        hash: String,
    ) -> RpcResult<Option<serde_json::Value>> {
        let me = EthImpl {
            backend: self.backend.clone(),
        };
        tokio::task::spawn_blocking(move || me.eth_get_transaction_receipt_sync(hash))
            .await
            .map_err(|e| internal(e.to_string()))?
    }

    async fn eth_get_logs(&self, filter: LogFilter) -> RpcResult<Vec<EthLog>> {
        self.blocking(move |me| me.eth_get_logs_sync(filter)).await
    }

    async fn eth_subscribe(
        &self,
        pending: PendingSubscriptionSink,
        ext: &Extensions,
        kind: String,
        filter: Option<LogFilter>,
    ) -> SubscriptionResult {
        self.backend.count_request("eth_subscribe");
        let what = match (kind.as_str(), &filter) {
            ("newHeads", None) => Ok(Subscription::NewHeads),
            ("newHeads", Some(_)) => Err(invalid_params("newHeads takes no filter")),
            ("logs", f) => {
                let f = f.clone().unwrap_or_default();
                if f.from_block.is_some() || f.to_block.is_some() || f.block_hash.is_some() {
                    Err(invalid_params(
                        "a logs subscription sends logs of blocks committed from now on; \
                         its filter takes address and topics only (use eth_getLogs for past blocks)",
                    ))
                } else {
                    Matcher::new(&f).map(Subscription::Logs)
                }
            }
            (other, _) => Err(invalid_params(format!(
                "unknown subscription {other:?}: this node offers newHeads and logs"
            ))),
        };
        let what = match what {
            Ok(w) => Arc::new(w),
            Err(e) => {
                pending.reject(e).await;
                return Ok(());
            }
        };
        let mut commits = self.backend.subscribe_commits();
        let sink = crate::subscriptions::accept(pending, ext).await?;
        while let Some(height) =
            crate::server::next_commit(&mut commits, &sink, "eth_subscribe").await
        {
            let what = what.clone();
            let items: Vec<serde_json::Value> = self
                .blocking(move |me| match &*what {
                    Subscription::NewHeads => Ok(me.head_sync(height)?.into_iter().collect()),
                    Subscription::Logs(m) => me
                        .block_logs_sync(m, height)?
                        .into_iter()
                        .map(|l| serde_json::to_value(l).map_err(|e| internal(e.to_string())))
                        .collect(),
                })
                .await
                .map_err(|e| e.message().to_string())?;
            for item in items {
                let message = serde_json::value::to_raw_value(&item)?;
                if sink
                    .send(jsonrpsee::SubscriptionMessage::from(message))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn eth_get_block_by_hash(&self, hash: String, full: bool) -> RpcResult<Option<EthBlock>> {
        let me = EthImpl {
            backend: self.backend.clone(),
        };
        tokio::task::spawn_blocking(move || me.eth_get_block_by_hash_sync(hash, full))
            .await
            .map_err(|e| internal(e.to_string()))?
    }
}

fn call_address(s: &str, what: &str) -> RpcResult<EvmAddress> {
    s.parse()
        .map_err(|e| invalid_params(format!("{what}: {e}")))
}

/// A call's input, under either of its two names.
fn call_input(call: &CallRequest) -> RpcResult<Vec<u8>> {
    match (&call.input, &call.data) {
        (Some(i), Some(d)) if i != d => Err(invalid_params("data and input differ; give one")),
        (Some(x), _) | (None, Some(x)) => parse_data(x, "input"),
        (None, None) => Ok(Vec::new()),
    }
}

/// A call's EIP-2930 access list: addresses and their storage keys.
fn call_access_list(call: &CallRequest) -> RpcResult<Vec<(EvmAddress, Vec<[u8; 32]>)>> {
    call.access_list
        .iter()
        .flatten()
        .map(|e| {
            Ok((
                call_address(&e.address, "accessList address")?,
                e.storage_keys
                    .iter()
                    .map(|k| parse_word(k, "storage key"))
                    .collect::<RpcResult<Vec<_>>>()?,
            ))
        })
        .collect()
}
