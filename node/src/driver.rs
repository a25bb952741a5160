//! The consensus driver: a tokio task that feeds the pure consensus state
//! machine from the network and timers and carries out what it asks —
//! persisting signer state before anything is sent, building and
//! validating blocks through the [`App`], committing decided blocks,
//! pruning the mempool and starting the next height after the block
//! interval.
//!
//! The network is two channels: messages in (already decoded, from peers)
//! and messages out (to broadcast). The libp2p layer, or a test hub,
//! connects them.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_consensus::{
    Config, Consensus, Input, Message, Output, SignerState, Timeout, Verified,
};
use palisade_types::{
    Block, CommitCertificate, Hash, Height, Keypair, PublicKey, Round, SignedTransaction,
};
use tokio::sync::{broadcast, mpsc, Notify};
use tokio::task::JoinHandle;

use crate::app::{now_ms, App, AppError, Executed, Validated};
use crate::deadline::sleep_until;
use crate::late_precommits::LatePrecommits;
use crate::mempool::Mempool;
use crate::metrics::{gauge_value, Metrics};
use palisade_ledger::signer_store::{SignerStore, SignerStoreError};
use palisade_ledger::{Durability, LedgerError};
use palisade_network::wire::CommittedBlock;

/// Why the driver stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Signer(#[from] SignerStoreError),
    #[error("decided block {0} at height {1} could not be executed: {2}")]
    DecidedInvalid(Hash, Height, String),
    #[error("the mempool lock is poisoned: a thread panicked while holding it")]
    MempoolPoisoned,
    #[error("writing pending block {0} did not finish: {1}")]
    PersistTask(Hash, String),
}

/// A block committed by this node.
#[derive(Debug, Clone)]
pub struct Committed {
    pub height: Height,
    pub hash: Hash,
    pub txs: usize,
}

/// Settings of the driver.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub consensus: Config,
    /// Least time from the start of one height to the start of the next.
    pub block_interval: Duration,
    /// `Some(gap)`: no empty blocks. A height whose interval is up waits
    /// until a transaction arrives, a peer starts it, or `gap` has passed
    /// since the last height started (`consensus.create_empty_blocks`).
    pub idle_gap: Option<Duration>,
}

enum Event {
    Net(Verified<Message>),
    Timer(Timeout),
    Synced(Box<CommittedBlock>),
}

/// Sees each message this validator signs, once its signer state is
/// durable and just before it is sent, and may add messages to send after
/// it. The `palisade` binary installs none; the fault tests' separate
/// `palisade-test-node` binary (in `tests/`) uses one to play a Byzantine
/// validator, so no operator's node carries a way to attack its chain.
pub trait OutboundTap: Send + Sync + std::fmt::Debug {
    fn after_signed(&self, message: &Message) -> Vec<Message>;
    /// Changes a block this node built before it is proposed (a Byzantine
    /// proposer); true if it changed it.
    fn tamper_proposal(&self, _block: &mut palisade_types::Block) -> bool {
        false
    }
}

/// How the driver reaches block sync: blocks fetched from peers come in on
/// `blocks` (in height order), `wake` is poked when consensus sees a
/// later height than ours, and a block whose certificate does not verify
/// goes back on `rejected` (so the syncer penalizes the peer that served
/// it and fetches the height elsewhere).
#[derive(Debug)]
pub struct SyncLink {
    pub blocks: mpsc::Receiver<CommittedBlock>,
    pub wake: Arc<Notify>,
    pub rejected: mpsc::Sender<Rejected>,
}

/// A synced block the driver refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub height: Height,
    pub why: String,
}

/// Runs consensus for one node until `shutdown` fires or an error stops it.
pub struct Driver {
    cfg: DriverConfig,
    app: Arc<App>,
    mempool: Arc<Mutex<Mempool>>,
    signer: SignerStore,
    key: Option<Keypair>,
    outbound: mpsc::Sender<Message>,
    committed: broadcast::Sender<Committed>,
    /// Blocks checked for the current height, by hash: the decided one is
    /// executed.
    validated: HashMap<Hash, Validated>,
    sync_blocks: Option<mpsc::Receiver<CommittedBlock>>,
    sync_wake: Option<Arc<Notify>>,
    sync_rejected: Option<mpsc::Sender<Rejected>>,
    metrics: Option<Arc<Metrics>>,
    /// Last committed height, for the rest of the node.
    height: Arc<AtomicU64>,
    /// Whether the current height is being decided from a synced block
    /// (then no block interval is waited after it).
    from_sync: bool,
    /// Whether more synced blocks were queued behind the current one: then
    /// its commit is not synced to disk on its own (the last one's sync
    /// covers it; see [`Durability::Deferred`]).
    sync_more: bool,
    last_commit_at: Option<Instant>,
    /// When to start the next height, once the current one is decided.
    next_start: Option<tokio::time::Instant>,
    /// Set while the next height is held back for want of transactions
    /// ([`DriverConfig::idle_gap`]): when to start it anyway.
    idle_until: Option<tokio::time::Instant>,
    /// Poked when the mempool admits a transaction.
    arrivals: Arc<Notify>,
    /// Empty blocks decided since the last block with transactions
    /// (`None`: none had any since this node started): with no empty
    /// blocks, more follow a block with transactions at doubling gaps
    /// (see [`Driver::hold_for_transactions`]).
    empty_since_txs: Option<u32>,
    /// When the current height started: the block interval is the least
    /// time from one height's start to the next's.
    height_started: Option<tokio::time::Instant>,
    tap: Option<Arc<dyn OutboundTap>>,
    /// Blocks being written as pending in the background, by hash.
    persisting: Vec<(Hash, JoinHandle<Result<(), LedgerError>>)>,
    /// Consensus asked for a block to be kept (`PersistBlock`): the next
    /// message may go out only once every write in `persisting` is durable.
    persist_required: bool,
    /// Precommits for the last decided block that came after the decision:
    /// our next proposal's `last_commit` carries them.
    late: LatePrecommits,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("cfg", &self.cfg).finish()
    }
}

impl Driver {
    pub fn new(
        cfg: DriverConfig,
        app: Arc<App>,
        mempool: Arc<Mutex<Mempool>>,
        signer: SignerStore,
        key: Option<Keypair>,
        outbound: mpsc::Sender<Message>,
        committed: broadcast::Sender<Committed>,
    ) -> Driver {
        let late = LatePrecommits::new();
        let arrivals = match mempool.lock() {
            Ok(pool) => pool.arrivals(),
            Err(poisoned) => poisoned.into_inner().arrivals(),
        };
        Driver {
            cfg,
            app,
            mempool,
            signer,
            key,
            outbound,
            committed,
            validated: HashMap::new(),
            sync_blocks: None,
            sync_wake: None,
            sync_rejected: None,
            metrics: None,
            height: Arc::new(AtomicU64::new(0)),
            from_sync: false,
            sync_more: false,
            last_commit_at: None,
            next_start: None,
            idle_until: None,
            arrivals,
            empty_since_txs: None,
            height_started: None,
            tap: None,
            persisting: Vec::new(),
            persist_required: false,
            late,
        }
    }

    /// Connects block sync.
    pub fn with_sync(mut self, link: SyncLink) -> Driver {
        self.sync_blocks = Some(link.blocks);
        self.sync_wake = Some(link.wake);
        self.sync_rejected = Some(link.rejected);
        self
    }

    /// Exports metrics.
    pub fn with_metrics(mut self, m: Arc<Metrics>) -> Driver {
        self.metrics = Some(m);
        self
    }

    /// Installs an [`OutboundTap`].
    pub fn with_tap(mut self, tap: Option<Arc<dyn OutboundTap>>) -> Driver {
        self.tap = tap;
        self
    }

    /// Shares the last committed height.
    pub fn with_height(mut self, h: Arc<AtomicU64>) -> Driver {
        self.height = h;
        self
    }

    /// Runs until `shutdown` resolves. Messages from peers arrive on `inbound`.
    pub async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Verified<Message>>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), DriverError> {
        let state = self.signer.load()?;
        let mut consensus = Consensus::new(self.cfg.consensus.clone(), self.key.clone(), state);
        let (timer_tx, mut timer_rx) = mpsc::channel::<Timeout>(1024);
        let mut queue = VecDeque::from([self.start_input()?]);
        let mut sync = self.sync_blocks.take();
        loop {
            // Feed everything queued (inputs produced by our own outputs), in order.
            self.feed_queued(&mut consensus, &mut queue, &timer_tx)
                .await?;
            // A peer has started the next height (consensus keeps its
            // verified messages for it): it had a transaction, or its
            // empty-block interval is up; follow it.
            if self.idle_until.is_some() && consensus.buffered().0 > 0 {
                self.idle_until = None;
                queue.push_back(self.start_input()?);
                continue;
            }
            let arrivals = self.arrivals.clone();
            let event = tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                m = inbound.recv() => match m {
                    Some(m) => Event::Net(m),
                    None => return Ok(()),
                },
                t = timer_rx.recv() => match t {
                    Some(t) => Event::Timer(t),
                    None => return Ok(()),
                },
                Some(b) = recv_synced(&mut sync) => Event::Synced(Box::new(b)),
                _ = sleep_until(self.next_start) => {
                    self.block_interval_over(&consensus, &mut queue)?;
                    continue;
                }
                _ = arrivals.notified(), if self.idle_until.is_some() => {
                    self.transactions_arrived(&mut queue)?;
                    continue;
                }
                _ = sleep_until(self.idle_until) => {
                    self.idle_until = None;
                    queue.push_back(self.start_input()?);
                    continue;
                }
            };
            let input = match event {
                Event::Net(m) => self.net_input(m),
                Event::Timer(t) => Input::Timeout(t),
                Event::Synced(b) => match self.synced_input(&consensus, b, &sync, &mut queue)? {
                    Some(input) => input,
                    None => continue,
                },
            };
            queue.push_back(input);
            if let Some(m) = &self.metrics {
                m.round.set(i64::from(consensus.round().get()));
            }
        }
    }

    /// Hands consensus every queued input, in order, carrying out what it
    /// asks; inputs that produces are queued behind.
    async fn feed_queued(
        &mut self,
        consensus: &mut Consensus,
        queue: &mut VecDeque<Input>,
        timer_tx: &mpsc::Sender<Timeout>,
    ) -> Result<(), DriverError> {
        while let Some(input) = queue.pop_front() {
            let outputs = consensus.handle(input);
            log_fired(consensus);
            for o in outputs {
                if let Some(next) = self.carry_out(o, timer_tx).await? {
                    queue.push_back(next);
                }
            }
        }
        Ok(())
    }

    /// The block interval is up: starts the next height, unless it is to
    /// wait for transactions first.
    fn block_interval_over(
        &mut self,
        consensus: &Consensus,
        queue: &mut VecDeque<Input>,
    ) -> Result<(), DriverError> {
        self.next_start = None;
        self.idle_until = match consensus.buffered().0 {
            0 => self.hold_for_transactions(),
            _ => None,
        };
        if self.idle_until.is_none() {
            queue.push_back(self.start_input()?);
        }
        Ok(())
    }

    /// Transactions arrived while the next height waits for some.
    fn transactions_arrived(&mut self, queue: &mut VecDeque<Input>) -> Result<(), DriverError> {
        // A permit left from busier times wakes this too: only
        // a transaction a block could take ends the wait.
        if self.has_proposable() {
            self.idle_until = None;
            queue.push_back(self.start_input()?);
        }
        Ok(())
    }

    /// A peer's message as consensus takes it; a vote is also kept for
    /// the precommits that come after the decision.
    fn net_input(&mut self, m: Verified<Message>) -> Input {
        let input = m.into_input();
        if let Input::Vote(v) = &input {
            self.late.offer(v);
        }
        input
    }

    /// A synced block as consensus takes it: `None` when it is not for
    /// this height or the next one waited for, or its certificate does not
    /// verify (the syncer hears of that).
    fn synced_input(
        &mut self,
        consensus: &Consensus,
        b: Box<CommittedBlock>,
        sync: &Option<mpsc::Receiver<CommittedBlock>>,
        queue: &mut VecDeque<Input>,
    ) -> Result<Option<Input>, DriverError> {
        let h = b.block.header.height;
        let waiting = self.next_start.is_some() || self.idle_until.is_some();
        let next_up = waiting && consensus.height().next().ok() == Some(h);
        if !next_up && h != consensus.height() {
            return Ok(None);
        }
        // Nothing changes until the certificate verifies: a
        // peer's bad one must not stop this node from
        // proposing (`from_sync`) or skip its block interval.
        if let Err(why) = self.check_synced(consensus, &b, next_up) {
            tracing::warn!(height = %h, %why, "synced block refused");
            if let Some(r) = &self.sync_rejected {
                let _ = r.try_send(Rejected { height: h, why });
            }
            return Ok(None);
        }
        if next_up {
            // Waiting out the block interval (or for
            // transactions): the network has moved on, so skip
            // the wait.
            self.next_start = None;
            self.idle_until = None;
            queue.push_back(self.start_input()?);
        }
        self.from_sync = true;
        self.sync_more = sync.as_ref().is_some_and(|r| !r.is_empty());
        Ok(Some(Input::Commit {
            block: Arc::new(b.block),
            commit: b.commit,
        }))
    }

    /// Checks a synced block against the validator set of its height (the
    /// current one's, or the next's when `next_up`): its certificate is for
    /// this block and height and carries +2/3 of the power.
    fn check_synced(
        &self,
        consensus: &Consensus,
        b: &CommittedBlock,
        next_up: bool,
    ) -> Result<(), String> {
        let h = b.block.header.height;
        if b.commit.height != h {
            return Err(format!("certificate is for height {}", b.commit.height));
        }
        if b.block.hash() != b.commit.block_hash {
            return Err("certificate is for another block".into());
        }
        let next_set;
        let validators = match consensus.validators() {
            Some(v) if !next_up => v,
            _ => {
                next_set = self.app.validators(h).map_err(|e| e.to_string())?;
                &next_set
            }
        };
        b.commit
            .verify(&self.cfg.consensus.chain_id, validators)
            .map(|_| ())
            .map_err(|e| format!("certificate does not verify: {e}"))
    }

    fn observe(&self, step: &str, since: Instant) {
        if let Some(m) = &self.metrics {
            m.observe_step(step, since.elapsed().as_secs_f64());
        }
    }

    /// With no empty blocks: when to start the next height if no
    /// transaction comes first; `None` to start it now.
    fn hold_for_transactions(&self) -> Option<tokio::time::Instant> {
        let gap = self.cfg.idle_gap?;
        if self.has_proposable() {
            return None;
        }
        let deadline = self.height_started?
            + follow_up_gap(self.cfg.block_interval, gap, self.empty_since_txs);
        (deadline > tokio::time::Instant::now()).then_some(deadline)
    }

    fn has_proposable(&self) -> bool {
        // A poisoned pool is reported where it is used; here, make blocks.
        self.mempool.lock().map_or(true, |p| p.has_proposable())
    }

    fn start_input(&mut self) -> Result<Input, DriverError> {
        let ledger = self.app.ledger();
        let latest = ledger.latest_height().map_err(AppError::from)?;
        self.height.store(latest.get(), Ordering::Relaxed);
        let next = latest.next().map_err(AppError::from)?;
        let restored_blocks = ledger
            .pending_blocks(next)
            .map_err(AppError::from)?
            .into_iter()
            .map(Arc::new)
            .collect();
        self.validated.clear();
        self.height_started = Some(tokio::time::Instant::now());
        Ok(Input::StartHeight {
            height: next,
            validators: self.app.validators(next)?,
            restored_blocks,
        })
    }

    /// Starts writing `block` as pending for this height, unless it is
    /// already being written. Blocks are written as soon as they are known
    /// good (our proposal, a peer's that validated), not only when
    /// consensus asks (`PersistBlock`, on a polka): by then the write has
    /// usually finished, so its fsync is off the path from polka to
    /// precommit, where it used to add 1–2.5 ms to every height.
    fn persist_in_background(&mut self, block: Arc<palisade_types::Block>) {
        let hash = block.hash();
        if self.persisting.iter().any(|(h, _)| *h == hash) {
            return;
        }
        let ledger = self.app.ledger().clone();
        let task = tokio::task::spawn_blocking(move || ledger.save_pending_block(&block));
        self.persisting.push((hash, task));
    }

    /// Waits until every pending-block write started so far is durable.
    async fn finish_persisting(&mut self) -> Result<(), DriverError> {
        self.persist_required = false;
        for (hash, task) in std::mem::take(&mut self.persisting) {
            match task.await {
                Ok(r) => r.map_err(AppError::from)?,
                Err(e) => return Err(DriverError::PersistTask(hash, e.to_string())),
            }
        }
        Ok(())
    }

    /// Save before send for blocks: once consensus has asked for a block to
    /// be kept, nothing leaves this node until the block is durable.
    async fn persisted_before_send(&mut self) -> Result<(), DriverError> {
        if self.persist_required {
            self.finish_persisting().await?;
        }
        Ok(())
    }

    /// Does what one output asks; may produce the next input.
    async fn carry_out(
        &mut self,
        o: Output,
        timers: &mpsc::Sender<Timeout>,
    ) -> Result<Option<Input>, DriverError> {
        match o {
            Output::PersistAndBroadcast {
                signer_state,
                message,
            } => self.send_signed(&signer_state, message).await?,
            Output::Broadcast(message) => {
                self.persisted_before_send().await?;
                let _ = self.outbound.send(message).await;
            }
            Output::ScheduleTimeout {
                timeout,
                duration_ms,
            } => {
                let tx = timers.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(duration_ms)).await;
                    let _ = tx.send(timeout).await;
                });
            }
            Output::RequestBlock {
                height,
                round,
                proposer,
            } => return self.propose(height, round, proposer),
            Output::ValidateBlock { height, block } => {
                return self.validate(height, block).map(Some)
            }
            Output::PersistBlock { block, .. } => {
                self.persist_in_background(block);
                self.persist_required = true;
            }
            Output::Decided {
                height,
                block,
                commit,
                ..
            } => self.commit_decided(height, block, commit).await?,
            Output::Evidence(ev) => {
                tracing::warn!(offender = %ev.offender(), "equivocation evidence");
                if let Some(m) = &self.metrics {
                    m.evidence.inc();
                }
            }
            Output::Behind { current, seen } => {
                tracing::debug!(%current, %seen, "peers are ahead");
                if let Some(wake) = &self.sync_wake {
                    wake.notify_one();
                }
            }
        }
        Ok(None)
    }

    /// Sends a message this node signed, once its signer state (and any
    /// block it depends on) is durable.
    async fn send_signed(
        &mut self,
        signer_state: &SignerState,
        message: Message,
    ) -> Result<(), DriverError> {
        // Save before send: durable first, or not sent at all. That
        // includes a block this message depends on (a precommit for a
        // block we locked on).
        self.signer.save(signer_state)?;
        self.persisted_before_send().await?;
        if let Some(m) = &self.metrics {
            m.signer_saves.inc();
        }
        let extra = self
            .tap
            .as_ref()
            .map(|t| t.after_signed(&message))
            .unwrap_or_default();
        log_signed(&message);
        let _ = self.outbound.send(message).await;
        for m in extra {
            log_signed(&m);
            let _ = self.outbound.send(m).await;
        }
        Ok(())
    }

    /// Builds this node's proposal for `height` and `round` from the pool.
    fn propose(
        &mut self,
        height: Height,
        round: Round,
        proposer: PublicKey,
    ) -> Result<Option<Input>, DriverError> {
        // This height is being decided by a synced block and its
        // certificate, queued right behind: a proposal of ours
        // would be built, signed and saved for nothing.
        if self.from_sync {
            return Ok(None);
        }
        let t = Instant::now();
        let proposed = {
            let pool = self
                .mempool
                .lock()
                .map_err(|_| DriverError::MempoolPoisoned)?;
            let committed = Height(self.height.load(Ordering::Relaxed));
            let last = self.late.certificate(committed).cloned();
            self.app.propose_with(&pool, proposer, now_ms(), last)?
        };
        self.observe("propose", t);
        let mut block = proposed.block.clone();
        // A tampered block is not the one above: it is checked again if
        // it is ever decided.
        if !self
            .tap
            .as_ref()
            .is_some_and(|tap| tap.tamper_proposal(Arc::make_mut(&mut block)))
        {
            self.validated.insert(block.hash(), proposed);
        }
        self.persist_in_background(block.clone());
        Ok(Some(Input::ProposeBlock {
            height,
            round,
            block,
        }))
    }

    /// Checks a proposed block (kept to execute if it is decided).
    fn validate(&mut self, height: Height, block: Arc<Block>) -> Result<Input, DriverError> {
        let t = Instant::now();
        let hash = block.hash();
        // Signatures this node already checked at mempool admission
        // are not checked again.
        let hashes = block.tx_hashes();
        let known: Vec<bool> = match self.mempool.lock() {
            Ok(pool) => hashes.iter().map(|h| pool.contains(h)).collect(),
            Err(_) => Vec::new(),
        };
        let valid = match self
            .app
            .validate_cached(block, Some(now_ms()), &hashes, &known)
        {
            Ok(validated) => {
                self.persist_in_background(validated.block.clone());
                self.validated.insert(hash, validated);
                true
            }
            Err(AppError::Ledger(e)) => return Err(AppError::Ledger(e).into()),
            Err(e) => {
                tracing::warn!(%height, block = %hash, error = %e, "rejected proposed block");
                if let Some(m) = &self.metrics {
                    m.rejected_blocks.inc();
                }
                false
            }
        };
        self.observe("validate", t);
        Ok(Input::BlockValidated {
            height,
            block_hash: hash,
            valid,
        })
    }

    /// Commits a decided block, announces it, and tidies the pool.
    async fn commit_decided(
        &mut self,
        height: Height,
        block: Arc<Block>,
        commit: CommitCertificate,
    ) -> Result<(), DriverError> {
        let hash = block.hash();
        if let Some(started) = self.height_started {
            if !self.from_sync {
                self.observe("decide", started.into_std());
            }
        }
        // Committing deletes this height's pending blocks: no
        // write of one may still be on its way.
        self.finish_persisting().await?;
        let validated = match self.validated.remove(&hash) {
            Some(v) => v,
            // Decided by a commit certificate (catch-up) without our
            // having validated it: check it now. +2/3 committed it, so
            // failing here means our state is broken.
            None => self
                .app
                .check_decided(block.clone())
                .map_err(|e| DriverError::DecidedInvalid(hash, height, e.to_string()))?,
        };
        let t = Instant::now();
        let executed = self
            .app
            .execute(&validated)
            .map_err(|e| DriverError::DecidedInvalid(hash, height, e.to_string()))?;
        self.observe("execute", t);
        let durability = if self.from_sync && self.sync_more {
            Durability::Deferred
        } else {
            Durability::Synced
        };
        let t = Instant::now();
        self.app.commit(&executed, &commit, durability)?;
        self.observe("commit", t);
        // Late precommits matter to our next proposal; a synced
        // block's height is long past (and sync commits in bulk).
        if !self.from_sync {
            match self.app.ledger().validators(height) {
                Ok(Some(set)) => self.late.decided(commit.clone(), set),
                Ok(None) => {}
                Err(e) => tracing::warn!(%height, error = %e, "validator set unreadable"),
            }
        }
        let txs: &[palisade_types::SignedTransaction] = &block.txs;
        self.empty_since_txs = if block.tx_count() > 0 {
            Some(0)
        } else {
            self.empty_since_txs.map(|n| n.saturating_add(1))
        };
        // Announced as soon as it is durable: clients waiting for
        // the block need not wait for the pool to be tidied.
        let from_sync = std::mem::take(&mut self.from_sync);
        if from_sync {
            tracing::debug!(%height, block = %hash, txs = txs.len(), "committed (synced)");
        } else {
            tracing::info!(%height, block = %hash, txs = txs.len(), "committed");
        }
        self.height.store(height.get(), Ordering::Relaxed);
        let refused = executed.outcome.refused.len();
        self.count_commit(
            height,
            &commit,
            block.tx_count().saturating_sub(refused),
            refused,
            from_sync,
        );
        let _ = self.committed.send(Committed {
            height,
            hash,
            txs: block.tx_count(),
        });
        self.update_mempool(height, &executed)?;
        // The next height starts a block interval after this one
        // started, or at once if deciding took longer (a loaded
        // network then makes blocks back to back instead of idling
        // an interval after each) or the block was synced (decided
        // long ago). It starts from the event loop, so shutdown and
        // peers' messages are served meanwhile.
        let now = tokio::time::Instant::now();
        self.next_start = Some(match self.height_started {
            Some(started) if !from_sync => (started + self.cfg.block_interval).max(now),
            _ => now,
        });
        Ok(())
    }

    /// The metrics of a commit.
    fn count_commit(
        &mut self,
        height: Height,
        commit: &CommitCertificate,
        txs: usize,
        refused: usize,
        from_sync: bool,
    ) {
        if let Some(m) = &self.metrics {
            m.height.set(gauge_value(height.get()));
            m.blocks_committed.inc();
            if commit.round.get() > 0 {
                m.late_rounds.inc();
            }
            if from_sync {
                m.blocks_synced.inc();
            }
            m.txs_committed.inc_by(txs as u64);
            m.txs_refused.inc_by(refused as u64);
            let now = Instant::now();
            if let Some(prev) = self.last_commit_at.replace(now) {
                m.block_interval.observe((now - prev).as_secs_f64());
            }
        }
    }

    /// Drops what `executed` included or made invalid from the pools.
    fn update_mempool(&mut self, height: Height, executed: &Executed) -> Result<(), DriverError> {
        let t = Instant::now();
        {
            let mut pool = self
                .mempool
                .lock()
                .map_err(|_| DriverError::MempoolPoisoned)?;
            let next = height.next().map_err(AppError::from)?;
            let (txs, hashes, eth_hashes) = committed_parts(executed);
            if let Err(e) = pool.update_hashed(
                &txs,
                &hashes,
                executed.outcome.changes.values.keys().map(Vec::as_slice),
                self.app.runtime(),
                self.app.ledger().as_ref(),
                next,
            ) {
                tracing::error!(error = %e, "mempool update failed");
            }
            let (touched, everything) =
                crate::mempool::eth::touched(executed.outcome.changes.values.keys());
            if let Err(e) = pool.eth.update(
                &eth_hashes,
                &touched,
                everything,
                self.app.runtime(),
                self.app.ledger().as_ref(),
                next,
            ) {
                tracing::error!(error = %e, "Ethereum mempool update failed");
            }
            let waits = pool.take_waits();
            if let Some(m) = &self.metrics {
                m.mempool_txs.set(gauge_value(pool.len() as u64));
                m.mempool_bytes.set(gauge_value(pool.bytes() as u64));
                for w in waits {
                    m.tx_latency.observe(w.as_secs_f64());
                }
            }
        }
        self.observe("mempool_update", t);
        Ok(())
    }
}

/// The transactions of `executed` that were committed, not refused: the
/// native ones (copied only when some were refused) with their hashes,
/// and the Ethereum ones' hashes. A refused transaction stays pooled: its
/// nonce is still to come, or the pool's re-check drops it.
fn committed_parts(executed: &Executed) -> (Cow<'_, [SignedTransaction]>, Vec<Hash>, Vec<Hash>) {
    let refused = &executed.outcome.refused;
    let ran = |i: usize| palisade_runtime::ran_at(refused, i);
    let natives = executed.block.txs.len();
    let txs: Cow<'_, [SignedTransaction]> = if refused.is_empty() {
        Cow::Borrowed(&executed.block.txs)
    } else {
        Cow::Owned(
            executed
                .block
                .txs
                .iter()
                .enumerate()
                .filter(|(i, _)| ran(*i))
                .map(|(_, t)| t.clone())
                .collect(),
        )
    };
    let mut hashes = Vec::with_capacity(txs.len());
    let mut eth_hashes = Vec::new();
    for (i, r) in executed.outcome.receipts.iter().enumerate() {
        if ran(i) {
            if i < natives {
                hashes.push(r.tx_hash);
            } else {
                eth_hashes.push(r.tx_hash);
            }
        }
    }
    (txs, hashes, eth_hashes)
}

/// How long after a height starts the next one starts when nothing is
/// waiting, on a chain without empty blocks (idle gap `idle`). After a
/// block with transactions, blocks follow at doubling gaps (one block
/// interval, two, four...) until the idle gap: a client that learns of new
/// blocks by polling the height, and caches answers briefly (ethers'
/// `wait` caches each call for 250 ms), sees its transaction's block
/// followed by another soon after it looks, whenever it looked, instead
/// of waiting out the idle gap. That costs about log2(idle / interval)
/// blocks per burst of transactions.
fn follow_up_gap(interval: Duration, idle: Duration, empty_since_txs: Option<u32>) -> Duration {
    let Some(n) = empty_since_txs else {
        return idle;
    };
    let step = interval.max(Duration::from_millis(10));
    step.checked_mul(1u32 << n.min(20))
        .map_or(idle, |d| d.min(idle))
}

/// One debug line per message this node signs (the end-to-end tests audit
/// them for double signs across restarts).
fn log_signed(message: &Message) {
    match message {
        Message::Proposal { proposal, .. } => {
            let p = &proposal.proposal;
            tracing::debug!(key = %p.proposer, height = %p.height, round = %p.round, step = %"propose", block = %p.block_hash, "signed");
        }
        Message::Vote(v) => {
            let step = match v.vote.vote_type {
                palisade_types::VoteType::Prevote => "prevote",
                palisade_types::VoteType::Precommit => "precommit",
            };
            let block = v
                .vote
                .block_hash
                .map_or_else(|| "nil".to_string(), |h| h.to_string());
            tracing::debug!(key = %v.vote.validator, height = %v.vote.height, round = %v.vote.round, step = %step, block = %block, "signed");
        }
    }
}

async fn recv_synced(link: &mut Option<mpsc::Receiver<CommittedBlock>>) -> Option<CommittedBlock> {
    match link {
        Some(l) => l.recv().await,
        None => std::future::pending().await,
    }
}

/// The rules of Algorithm 1 the last input fired, at debug level: with
/// `--log-level palisade_node::driver=debug` an operator sees why a node
/// voted, locked, moved round or decided.
fn log_fired(consensus: &Consensus) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    for f in consensus.trace() {
        tracing::debug!(
            height = f.height.get(),
            round = f.round.get(),
            line = f.line.0,
            event = ?f.event,
            "consensus rule fired"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_follow_a_transaction_block_at_doubling_gaps_up_to_the_idle_gap() {
        let ms = Duration::from_millis;
        let idle = Duration::from_secs(30);
        // No transactions since the start: the idle gap.
        assert_eq!(follow_up_gap(ms(100), idle, None), idle);
        let gaps: Vec<_> = (0..10)
            .map(|n| follow_up_gap(ms(100), idle, Some(n)))
            .collect();
        assert_eq!(gaps[..4], [ms(100), ms(200), ms(400), ms(800)]);
        assert_eq!(gaps[9], idle, "51.2 s is capped at the idle gap");
        assert_eq!(follow_up_gap(ms(100), idle, Some(u32::MAX)), idle);
        // A zero interval still spaces them.
        assert_eq!(follow_up_gap(ms(0), idle, Some(0)), ms(10));
    }
}
