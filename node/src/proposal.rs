//! The transactions of a block this node proposes: reaped from the pools
//! within the block's bounds, then cut back until every one is admissible
//! in order ([`Candidate::leave_out`]).

use palisade_runtime::{ChainParams, EthTxInput, StateStore, StoreError, TxError};
use palisade_types::{
    Action, Block, BlockHeader, CommitCertificate, EthTransaction, Hash, SignedTransaction,
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
            .reap_hashed(store, max_txs, budget)?
            .into_iter()
            .map(|(h, t)| (h, (*t).clone()))
            .unzip();
        let native_bytes: usize = txs.iter().map(SignedTransaction::encoded_len).sum();
        // The gas limits of the native EVM actions come first; Ethereum
        // transactions get what is left, so a block is not built only to
        // be cut back.
        let native_gas: u64 = txs
            .iter()
            .filter_map(|t| match &t.tx.action {
                Action::EvmCall { gas_limit, .. } | Action::EvmCreate { gas_limit, .. } => {
                    Some(*gas_limit)
                }
                _ => None,
            })
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

    /// Each transaction was admissible on its own, but one earlier in the
    /// block can make a later one inadmissible (a role revoked, a parameter
    /// lowered, the block's gas used up). Leaves out the one at `index`
    /// that execution refused with `error`, with the same sender's later
    /// ones (their nonces now have a gap); when the block's gas is used up,
    /// everything from `index` on waits for the next block (one pass, not
    /// one per transaction that no longer fits). Returns whether it left
    /// anything out: each call that does removes at least one, so retrying
    /// ends.
    pub fn leave_out(&mut self, index: usize, hash: Hash, error: &TxError) -> bool {
        let n = self.txs.len();
        if index >= n + self.eth.len() {
            return false;
        }
        if matches!(error, TxError::BlockGasExhausted { .. }) {
            if index < n {
                self.txs.truncate(index);
                self.hashes.truncate(index);
                self.eth.clear();
                self.eth_inputs.clear();
            } else {
                self.eth.truncate(index - n);
                self.eth_inputs.truncate(index - n);
            }
            return true;
        }
        tracing::debug!(tx = %hash, %error, "left out of the proposal");
        if index < n {
            let signer = self.txs[index].tx.signer;
            (self.txs, self.hashes) = std::mem::take(&mut self.txs)
                .into_iter()
                .zip(std::mem::take(&mut self.hashes))
                .enumerate()
                .filter(|(i, (t, _))| *i < index || t.tx.signer != signer)
                .map(|(_, kept)| kept)
                .unzip();
        } else {
            let k = index - n;
            let sender = self.eth_inputs[k].sender;
            (self.eth, self.eth_inputs) = std::mem::take(&mut self.eth)
                .into_iter()
                .zip(std::mem::take(&mut self.eth_inputs))
                .enumerate()
                .filter(|(i, (_, inp))| *i < k || inp.sender != sender)
                .map(|(_, kept)| kept)
                .unzip();
        }
        true
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
