//! Ethereum transactions in the node: decoded and their secp256k1 senders
//! recovered once per node (at admission, or when a block brings one this
//! node has not seen), cached by hash like the ed25519 verdicts, and handed
//! to the runtime as [`EthTxInput`]s.

use std::sync::Mutex;

use palisade_ethtx::{decode, recover_batch, EthTx};
use palisade_runtime::{EthTxInput, TxError};
use palisade_types::{EthTransaction, EvmAddress, Hash};

use palisade_ledger::cache::{DigestHasher, Generations};

/// Weight per generation, in KiB of transaction data (each entry weighs
/// its bytes, rounded up to the KiB): 32 MiB, several full blocks of
/// ordinary transactions, and at most 64 MiB held for all two generations
/// whatever transactions a peer or client sends.
const GENERATION_KIB: usize = 32 * 1024;
/// Entries a generation is sized for.
const GENERATION_ENTRIES: usize = 1 << 15;

/// Most threads that recover a batch of senders (a block's, or a gossip
/// batch's); no more than the machine has cores, where more threads only
/// add switches between them.
const RECOVERY_THREADS: usize = 4;

fn recovery_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(RECOVERY_THREADS))
    })
}

/// Why bytes are not an admissible Ethereum transaction before any state
/// is read: they do not decode, name another chain, or their signature
/// gives no sender.
pub fn malformed(e: impl std::fmt::Display) -> TxError {
    TxError::EthTxMalformed(e.to_string())
}

/// The runtime's view of a decoded transaction from `sender`.
pub fn input(tx: &EthTx, sender: EvmAddress, encoded_len: usize) -> Result<EthTxInput, TxError> {
    let value = u128::try_from(tx.value).map_err(|_| TxError::Overflow)?;
    Ok(EthTxInput {
        hash: Hash(tx.hash.0),
        encoded_len,
        sender,
        chain_id: tx.chain_id,
        nonce: tx.nonce,
        gas_limit: tx.gas_limit,
        max_fee_per_gas: tx.max_fee_per_gas,
        max_priority_fee_per_gas: tx.max_priority_fee_per_gas,
        to: tx.to.map(|a| EvmAddress(a.0 .0)),
        value,
        data: tx.input.clone(),
        access_list: tx
            .access_list
            .iter()
            .map(|(a, keys)| (EvmAddress(a.0 .0), keys.iter().map(|k| k.0).collect()))
            .collect(),
    })
}

/// Decoded transactions with their senders, by hash.
#[derive(Debug)]
pub struct EthSenders {
    cache: Mutex<Generations<Hash, EthTxInput, DigestHasher>>,
}

impl Default for EthSenders {
    fn default() -> Self {
        EthSenders::new()
    }
}

impl EthSenders {
    pub fn new() -> EthSenders {
        EthSenders {
            cache: Mutex::new(Generations::with_hasher(
                GENERATION_KIB,
                GENERATION_ENTRIES,
                DigestHasher::new(),
            )),
        }
    }

    /// Each of `txs` decoded for chain `chain_id` and its sender recovered:
    /// from the cache, or (the rest, in one batch off this thread's
    /// loop) from the bytes. An error names the first transaction that
    /// fails and why.
    pub fn prepare(
        &self,
        txs: &[EthTransaction],
        chain_id: u64,
    ) -> Result<Vec<EthTxInput>, (usize, TxError)> {
        self.prepare_each(txs, chain_id)
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.map_err(|e| (i, e)))
            .collect()
    }

    /// [`EthSenders::prepare`] with one result per transaction, in order:
    /// for batches whose transactions stand alone (clients' submissions,
    /// several gossip messages), where one bad transaction must not fail
    /// the others.
    pub fn prepare_each(
        &self,
        txs: &[EthTransaction],
        chain_id: u64,
    ) -> Vec<Result<EthTxInput, TxError>> {
        let hashes: Vec<Hash> = txs.iter().map(EthTransaction::hash).collect();
        let mut known: Vec<Option<Result<EthTxInput, TxError>>> = match self.cache.lock() {
            Ok(mut c) => hashes.iter().map(|h| c.get(h).map(Ok)).collect(),
            Err(_) => vec![None; txs.len()],
        };
        let mut todo = Vec::new();
        for (i, t) in txs.iter().enumerate() {
            // A cached entry is for this chain: one node serves one chain.
            if known[i].is_none() {
                match decode(t.bytes(), chain_id) {
                    Ok(tx) => todo.push((i, tx)),
                    Err(e) => known[i] = Some(Err(malformed(e))),
                }
            }
        }
        let decoded: Vec<EthTx> = todo.iter().map(|(_, t)| t.clone()).collect();
        let senders = recover_batch(&decoded, recovery_threads());
        let mut fresh = Vec::with_capacity(todo.len());
        for ((i, tx), sender) in todo.into_iter().zip(senders) {
            let inp = sender
                .map_err(malformed)
                .and_then(|s| input(&tx, EvmAddress(s.0 .0), txs[i].bytes().len()));
            if let Ok(inp) = &inp {
                fresh.push(inp.clone());
            }
            known[i] = Some(inp);
        }
        if let Ok(mut c) = self.cache.lock() {
            for inp in fresh {
                let weight = 1 + (inp.data.len() + inp.access_list.len() * 64) / 1024;
                c.insert(inp.hash, inp, weight);
            }
        }
        known
            .into_iter()
            .map(|k| k.unwrap_or_else(|| Err(malformed("sender not recovered"))))
            .collect()
    }
}
