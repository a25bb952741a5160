//! The transactions of a block this node proposes, reaped from the pools
//! within the block's bounds. Each was admissible on its own; one that an
//! earlier transaction of the block makes inadmissible (a role revoked, a
//! parameter lowered, the block's gas used up) is refused when the block
//! executes.

use palisade_runtime::{ChainParams, EthTxInput, StateStore, StoreError};
use palisade_types::{
    Block, BlockHeader, CommitCertificate, EthTransaction, Hash, SignedTransaction,
};

use crate::mempool::Mempool;

/// What a proposal will carry, in block order: native transactions (with
/// their hashes), then Ethereum ones (with their senders).
#[derive(Debug, Default)]
pub struct Candidate {
    pub txs: Vec<SignedTransaction>,
    pub hashes: Vec<Hash>,
    pub eth: Vec<EthTransaction>,
    pub eth_inputs: Vec<EthTxInput>,
}

impl Candidate {
    /// Reaps both pools for a block with `header` and `last_commit` under
    /// `params`: the native transactions first, then the Ethereum ones in
    /// the room (transactions, bytes, gas) they leave.
    pub fn reap(
        mempool: &Mempool,
        store: &dyn StateStore,
        params: &ChainParams,
        header: &BlockHeader,
        last_commit: Option<&CommitCertificate>,
    ) -> Result<Candidate, StoreError> {
        // `max_block_bytes` bounds the transactions' bytes alone (as the
        // runtime counts them); the whole block must also fit the network's
        // bound with this header and last commit.
        let budget =
            (params.max_block_bytes as usize).min(Block::room_for_txs(header, last_commit));
        let max_txs = params.max_block_txs as usize;
        let (hashes, txs): (Vec<Hash>, Vec<SignedTransaction>) = mempool
            .reap_hashed(store, max_txs, budget, params.max_block_gas)?
            .into_iter()
            .map(|(h, t)| (h, (*t).clone()))
            .unzip();
        let native_bytes: usize = txs.iter().map(SignedTransaction::encoded_len).sum();
        // The gas limits of the native EVM actions come first; Ethereum
        // transactions get what is left, so a block is not built only to
        // be cut back.
        let native_gas: u64 = txs
            .iter()
            .filter_map(|t| t.tx.action.evm_gas_limit())
            .fold(0u64, u64::saturating_add);
        let (eth, eth_inputs) = mempool
            .eth
            .reap(
                store,
                max_txs.saturating_sub(txs.len()),
                budget.saturating_sub(native_bytes),
                params.max_block_gas.saturating_sub(native_gas),
            )?
            .into_iter()
            .unzip();
        Ok(Candidate {
            txs,
            hashes,
            eth,
            eth_inputs,
        })
    }

    /// The block's transaction root: native hashes, then Ethereum ones.
    pub fn tx_root(&self) -> Hash {
        let all: Vec<Hash> = self
            .hashes
            .iter()
            .copied()
            .chain(self.eth_inputs.iter().map(|t| t.hash))
            .collect();
        palisade_types::merkle::root(&all)
    }
}
