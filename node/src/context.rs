//! What the RPC layer and tests reach into a running node through: its
//! parts, its health, and client transaction admission.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use palisade_genesis::Genesis;
use palisade_runtime::{Signatures, StoreError, TxError};
use palisade_types::{Hash, Height, SignedTransaction};
use tokio::sync::{broadcast, mpsc};

use crate::app::App;
use crate::background::Background;
use crate::driver::Committed;
use crate::files::FileService;
use crate::health::{assess, Facts, NodeHealth};
use crate::intake::{Admitted, Intake};
use crate::mempool::{AddError, Mempool};
use crate::metrics::{gauge_value, Metrics};
use crate::sync::SyncStatus;
use palisade_network::{NetworkHandle, Verdict};

/// What the RPC layer and tests reach into a running node through.
#[derive(Debug, Clone)]
pub struct NodeContext {
    pub genesis: Arc<Genesis>,
    pub genesis_hash: Hash,
    pub app: Arc<App>,
    pub mempool: Arc<Mutex<Mempool>>,
    pub net: NetworkHandle,
    pub files: Arc<FileService>,
    pub metrics: Arc<Metrics>,
    pub committed: broadcast::Sender<Committed>,
    pub height: Arc<AtomicU64>,
    pub sync: Arc<SyncStatus>,
    pub validator: Option<palisade_types::PublicKey>,
    /// Liveness of the node's parts, for [`NodeContext::health`].
    pub health: Arc<NodeHealth>,
    /// The snapshots this node offers peers that state-sync.
    pub snapshots: Arc<palisade_statesync::shelf::Shelf>,
    pub(crate) tx_gossip: mpsc::Sender<Arc<SignedTransaction>>,
    pub(crate) eth_gossip: mpsc::Sender<palisade_types::EthTransaction>,
    /// Where clients' transactions are checked and admitted: below the
    /// priority of block processing (see [`crate::background`]).
    pub(crate) client_admission: Background,
    /// Clients' one-per-call submissions waiting to be admitted together.
    pub(crate) tx_intake: Arc<Intake<SignedTransaction>>,
    pub(crate) eth_intake: Arc<Intake<Vec<u8>>>,
}

impl NodeContext {
    /// Whether the node is fit to serve now (`system_health`, `GET
    /// /health`): see [`crate::health`].
    pub fn health(&self) -> palisade_rpc::types::Health {
        let mut reasons = Vec::new();
        let ledger = self.app.ledger();
        let height = match ledger.latest_height() {
            Ok(h) => h.get(),
            Err(e) => {
                reasons.push(format!("ledger unreadable: {e}"));
                self.height.load(Ordering::Relaxed)
            }
        };
        let commits_alone = self.commits_alone().unwrap_or_else(|e| {
            reasons.push(format!("ledger unreadable: {e}"));
            false
        });
        let facts = Facts {
            height,
            peers: self.net.peer_count(),
            syncing: self.sync.syncing.load(Ordering::Relaxed),
            sync_target: self.sync.target.load(Ordering::Relaxed).max(height),
            commits_alone,
            block_age: self.health.block_age(),
            max_block_age: self.health.max_block_age(),
        };
        reasons.extend(assess(&self.health.tasks(), &facts));
        palisade_rpc::types::Health {
            ok: reasons.is_empty(),
            height,
            peers: facts.peers,
            syncing: facts.syncing,
            last_block_age_ms: u64::try_from(facts.block_age.as_millis()).unwrap_or(u64::MAX),
            reasons,
        }
    }

    /// Whether this node's own votes are a quorum for the next block (one
    /// validator holding more than two thirds of the power, as in
    /// `palisade dev`): it then commits without any peer.
    fn commits_alone(&self) -> Result<bool, String> {
        let Some(key) = self.validator else {
            return Ok(false);
        };
        let ledger = self.app.ledger();
        let next = ledger
            .latest_height()
            .map_err(|e| e.to_string())?
            .next()
            .map_err(|e| e.to_string())?;
        let Some(set) = ledger.validators(next).map_err(|e| e.to_string())? else {
            return Ok(false);
        };
        let mine: u128 = set
            .validators()
            .iter()
            .filter(|v| v.public_key == key)
            .map(|v| u128::from(v.power))
            .sum();
        Ok(mine * 3 > u128::from(set.total_power()) * 2)
    }

    /// Admits transactions from a client into the mempool and queues them
    /// for gossip, one result per transaction in order. Runs on the
    /// client-admission workers; the calling thread blocks until they are
    /// done, so call it from a thread that may block.
    pub fn submit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, AddError>> {
        let n = txs.len();
        let ctx = self.clone();
        self.client_admission
            .run_blocking(move || ctx.admit_submitted(txs))
            .unwrap_or_else(|| {
                let e = AddError::Store(StoreError::Backend(
                    "the transaction admission workers stopped".into(),
                ));
                vec![Err(e); n]
            })
    }

    /// Admits one transaction from a client, together with whatever other
    /// clients submit meanwhile (see [`crate::intake`]): one signature
    /// batch, one trip to the admission workers.
    pub fn submit(&self, tx: SignedTransaction) -> impl Future<Output = Admitted> + Send + 'static {
        let ctx = self.clone();
        self.tx_intake
            .submit(tx, &self.client_admission, move |txs| {
                ctx.admit_submitted(txs)
            })
    }

    /// [`NodeContext::submit_batch`] on the calling thread. Signatures are
    /// checked as one batch (each alone only if the batch fails, to name
    /// the bad ones) before the pool is locked, so the consensus driver
    /// never waits behind them.
    fn admit_submitted(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, AddError>> {
        let store = |e: &dyn std::fmt::Display| AddError::Store(StoreError::Backend(e.to_string()));
        let ledger = self.app.ledger();
        let next = match ledger.latest_height() {
            Ok(h) => h.next().map_err(|e| store(&e)),
            Err(e) => Err(store(&e)),
        };
        let next = match next {
            Ok(n) => n,
            Err(e) => return txs.iter().map(|_| Err(e.clone())).collect(),
        };
        let signed_ok: Vec<bool> = if palisade_types::batch::verify_transactions(&txs).is_ok() {
            vec![true; txs.len()]
        } else {
            txs.iter()
                .map(|t| {
                    palisade_types::batch::verify_transactions(std::slice::from_ref(t)).is_ok()
                })
                .collect()
        };
        let mut gossip = Vec::new();
        // The state checks run before the pool is locked, and the pool is
        // locked per transaction, not for the whole batch: the consensus
        // driver (proposals, post-block updates) takes the same lock, and
        // this thread runs at a lower priority; preempted while holding
        // the lock, it would hold the driver up.
        let results: Vec<Result<Hash, AddError>> = txs
            .into_iter()
            .zip(signed_ok)
            .map(|(tx, ok)| {
                if !ok {
                    return Err(AddError::Rejected(TxError::BadSignature));
                }
                let checked = Mempool::check(
                    tx,
                    self.app.runtime(),
                    ledger.as_ref(),
                    next,
                    Signatures::Verified,
                )?;
                let mut pool = self
                    .mempool
                    .lock()
                    .map_err(|_| store(&"mempool lock poisoned"))?;
                let h = pool.insert_checked(checked, ledger.as_ref())?;
                gossip.extend(pool.get(&h));
                self.metrics.mempool_txs.set(gauge_value(pool.len() as u64));
                self.metrics
                    .mempool_bytes
                    .set(gauge_value(pool.bytes() as u64));
                Ok(h)
            })
            .collect();
        for t in gossip {
            // Gossip is best effort: a full queue means peers get it from
            // the block instead.
            let _ = self.tx_gossip.try_send(t);
        }
        results
    }
}

impl NodeContext {
    /// Admits a raw Ethereum transaction from a client into the Ethereum
    /// pool: decoded and its sender recovered (once; cached), then the
    /// runtime's checks. Runs on the client-admission workers, together
    /// with whatever other clients submit meanwhile (see
    /// [`crate::intake`]).
    pub fn submit_eth(&self, raw: Vec<u8>) -> impl Future<Output = Admitted> + Send + 'static {
        let ctx = self.clone();
        self.eth_intake
            .submit(raw, &self.client_admission, move |raws| ctx.admit_eth(raws))
    }

    fn admit_eth(&self, raws: Vec<Vec<u8>>) -> Vec<Admitted> {
        let store = |e: &dyn std::fmt::Display| AddError::Store(StoreError::Backend(e.to_string()));
        let n = raws.len();
        let prepared = (|| {
            let next = self
                .app
                .ledger()
                .latest_height()
                .map_err(|e| store(&e))?
                .next()
                .map_err(|e| store(&e))?;
            let chain_id = self.app.params().map_err(|e| store(&e))?.evm_chain_id;
            Ok((next, chain_id))
        })();
        let (next, chain_id) = match prepared {
            Ok(p) => p,
            Err(e) => return vec![Err(e); n],
        };
        // Each raw one's place: its size error, or its slot among `txs`.
        let mut txs = Vec::with_capacity(n);
        let places: Vec<Result<(), AddError>> = raws
            .into_iter()
            .map(|raw| {
                let bytes = palisade_types::BoundedBytes::new(raw).map_err(|len| {
                    AddError::Rejected(TxError::TooLarge {
                        size: len,
                        max: palisade_types::limits::MAX_TX_BYTES,
                    })
                })?;
                txs.push(palisade_types::EthTransaction(bytes));
                Ok(())
            })
            .collect();
        let inputs = self.app.eth_senders().prepare_each(&txs, chain_id);
        let mut prepared = txs.into_iter().zip(inputs);
        places
            .into_iter()
            .map(|place| {
                place?;
                let (tx, input) = prepared
                    .next()
                    .ok_or_else(|| store(&"no sender recovered"))?;
                let hash =
                    self.admit_eth_checked(tx.clone(), input.map_err(AddError::Rejected)?, next)?;
                // Best effort: a full queue means peers get it from the block.
                let _ = self.eth_gossip.try_send(tx);
                Ok(hash)
            })
            .collect()
    }

    /// Admits gossiped messages of Ethereum transactions, their senders
    /// recovered as one batch; one verdict per message, in order. A
    /// message is invalid when one of its transactions does not decode or
    /// its signature gives no sender (only a faulty or malicious peer
    /// sends those), and none of it is admitted; one the state refuses (a
    /// used nonce, a lost role) is only not admitted, as it may have been
    /// valid where the peer checked it.
    pub fn admit_gossiped_eth(
        &self,
        messages: Vec<Vec<palisade_types::EthTransaction>>,
    ) -> Vec<Verdict> {
        let unchecked = vec![Verdict::Unchecked; messages.len()];
        let Ok(params) = self.app.params() else {
            return unchecked;
        };
        let Ok(Ok(next)) = self.app.ledger().latest_height().map(|h| h.next()) else {
            return unchecked;
        };
        let sizes: Vec<usize> = messages.iter().map(Vec::len).collect();
        let all: Vec<palisade_types::EthTransaction> = messages.into_iter().flatten().collect();
        let inputs = self
            .app
            .eth_senders()
            .prepare_each(&all, params.evm_chain_id);
        let mut txs = all.into_iter().zip(inputs);
        sizes
            .into_iter()
            .map(|n| {
                // Taken whole first, so that a bad one leaves no part of
                // its message for the next.
                let message: Vec<_> = txs.by_ref().take(n).collect();
                let Ok(message) = message
                    .into_iter()
                    .map(|(tx, input)| input.map(|i| (tx, i)))
                    .collect::<Result<Vec<_>, _>>()
                else {
                    return Verdict::Invalid;
                };
                for (tx, input) in message {
                    // Refusals by the state are expected (already included,
                    // already pooled); they say nothing about the peer.
                    let _ = self.admit_eth_checked(tx, input, next);
                }
                Verdict::Valid
            })
            .collect()
    }

    /// Pools an Ethereum transaction whose sender is known: the pool's
    /// cheap checks, then the runtime's (an EVM trial run) without holding
    /// the pool, so the consensus driver never waits behind them, then the
    /// insertion.
    fn admit_eth_checked(
        &self,
        tx: palisade_types::EthTransaction,
        input: palisade_runtime::EthTxInput,
        next: Height,
    ) -> Result<Hash, AddError> {
        let poisoned = || AddError::Store(StoreError::Backend("mempool lock poisoned".into()));
        self.mempool
            .lock()
            .map_err(|_| poisoned())?
            .eth
            .precheck(&input)?;
        self.app.runtime().check_eth_tx(
            self.app.ledger().as_ref(),
            next,
            &input,
            palisade_runtime::NonceRule::Window,
        )??;
        self.mempool
            .lock()
            .map_err(|_| poisoned())?
            .eth
            .insert_checked(tx, input, next)
    }
}
