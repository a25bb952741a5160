//! The application side of consensus: building a proposal from the
//! mempool, checking a proposed block before a vote (without executing it:
//! its header names its parent's results), and executing and committing a
//! decided one. The consensus driver calls these; they hold no consensus
//! state themselves.

use std::sync::Arc;

use palisade_runtime::evm::evm_address;
use palisade_runtime::{
    BlockContext, BlockError as RuntimeBlockError, BlockOutcome, EthTxInput, Runtime, Signatures,
};
use palisade_types::{
    Action, Block, BlockHeader, BoundedVec, CommitCertificate, EvmAddress, Hash, Height, PublicKey,
    SignedTransaction, Timestamp, ValidatorSet,
};

use crate::eth_txs::EthSenders;

use crate::mempool::Mempool;
use crate::proposal::Candidate;
use crate::verified::RecentlyVerified;
use palisade_ledger::{BlockWrite, Durability, Ledger, LedgerError};

/// This node's clock, in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// How far ahead of this node's clock a proposed block's time may be.
pub const MAX_CLOCK_DRIFT_MS: u64 = 5_000;

/// Why a proposed block is refused (or could not be built).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("block is malformed: {0}")]
    Malformed(#[from] palisade_types::BlockError),
    #[error("block is invalid: {0}")]
    Execution(#[from] RuntimeBlockError),
    #[error("block is for height {got}, the next height is {expected}")]
    WrongHeight { expected: Height, got: Height },
    #[error("block is for chain {0}")]
    WrongChain(String),
    #[error("block's {field} is {got}, expected {expected}")]
    Mismatch {
        field: &'static str,
        expected: Hash,
        got: Hash,
    },
    #[error("block time {got} is not after the previous block's {prev}")]
    TimeNotMonotonic { prev: u64, got: u64 },
    #[error(
        "block time {got} is more than {MAX_CLOCK_DRIFT_MS} ms ahead of this node's clock {now}"
    )]
    TimeInFuture { now: u64, got: u64 },
    #[error("last commit does not prove the previous block: {0}")]
    BadLastCommit(String),
    #[error("ledger has no {0}")]
    Missing(String),
    #[error("reading the state failed: {0}")]
    State(#[from] palisade_runtime::StoreError),
    #[error("the stored chain parameters do not decode: {0}")]
    CorruptParams(String),
    #[error("no height can follow the latest: {0}")]
    HeightOverflow(#[from] palisade_types::ArithmeticError),
    #[error("a block cannot hold {count} {kind}")]
    TooManyTxs { kind: &'static str, count: usize },
}

/// A block checked for the next height, ready to execute once decided:
/// its transactions' hashes (native, then Ethereum) and its Ethereum
/// transactions with their senders.
#[derive(Debug, Clone)]
pub struct Validated {
    pub block: Arc<Block>,
    pub tx_hashes: Vec<Hash>,
    pub eth_inputs: Vec<EthTxInput>,
}

/// What a block's header names of the block before it.
#[derive(Debug, Clone, Copy)]
struct ParentResults {
    state_root: Hash,
    receipts_root: Hash,
    next_validators_hash: Hash,
}

/// A decided block with the result of executing it, ready to commit.
#[derive(Debug, Clone)]
pub struct Executed {
    pub block: Arc<Block>,
    pub outcome: BlockOutcome,
    /// The accounts each transaction touched, by index in the block, for
    /// the ledger's account index ([`tx_parties`]).
    pub parties: Vec<(EvmAddress, u32)>,
}

/// The accounts a block's transactions touched, under their EVM
/// addresses: each native transaction's signer and the account its action
/// names, each Ethereum transaction's sender and recipient, and each
/// contract a transaction created. Value moved inside the EVM (a token's
/// own balances) is the contract's business, not listed here.
pub fn tx_parties(
    block: &Block,
    eth_inputs: &[EthTxInput],
    receipts: &[palisade_runtime::Receipt],
) -> Vec<(EvmAddress, u32)> {
    let mut out = Vec::with_capacity(2 * block.tx_count());
    let mut index = 0u32;
    for t in block.txs.iter() {
        out.push((evm_address(&t.tx.signer), index));
        let named = match &t.tx.action {
            Action::Transfer { to, .. } | Action::Mint { to, .. } => Some(evm_address(to)),
            Action::GrantRole { account, .. } | Action::RevokeRole { account, .. } => {
                Some(evm_address(account))
            }
            Action::EvmCall { to, .. } => Some(*to),
            Action::GrantEvmRole { address, .. } | Action::RevokeEvmRole { address, .. } => {
                Some(*address)
            }
            _ => None,
        };
        out.extend(named.map(|a| (a, index)));
        index = index.saturating_add(1);
    }
    for t in eth_inputs {
        out.push((t.sender, index));
        out.extend(t.to.map(|a| (a, index)));
        index = index.saturating_add(1);
    }
    for (i, r) in receipts.iter().enumerate() {
        if let Some(c) = r.evm.as_ref().and_then(|e| e.contract_address) {
            out.push((c, u32::try_from(i).unwrap_or(u32::MAX)));
        }
    }
    out
}

/// Builds, checks and commits blocks against the ledger.
#[derive(Debug)]
pub struct App {
    rt: Runtime,
    ledger: Arc<Ledger>,
    genesis_hash: Hash,
    verified: RecentlyVerified,
    /// Ethereum transactions decoded and their senders recovered.
    eth_senders: EthSenders,
    /// Whether blocks record who their transactions touched
    /// (`ledger.account_index`).
    account_index: bool,
}

impl App {
    /// An app over `ledger`, recording who each transaction touched if the
    /// ledger keeps the account index ([`Ledger::keep_account_index`]).
    pub fn new(rt: Runtime, ledger: Arc<Ledger>, genesis_hash: Hash) -> App {
        let account_index = matches!(ledger.account_index_from(), Ok(Some(_)));
        App {
            rt,
            ledger,
            genesis_hash,
            verified: RecentlyVerified::new(),
            eth_senders: EthSenders::new(),
            account_index,
        }
    }

    /// [`tx_parties`], or nothing when the ledger keeps no account index.
    fn parties(
        &self,
        block: &Block,
        eth_inputs: &[EthTxInput],
        receipts: &[palisade_runtime::Receipt],
    ) -> Vec<(EvmAddress, u32)> {
        if self.account_index {
            tx_parties(block, eth_inputs, receipts)
        } else {
            Vec::new()
        }
    }

    /// Ethereum transactions this node decoded, with their senders.
    pub fn eth_senders(&self) -> &EthSenders {
        &self.eth_senders
    }

    /// The chain parameters in the latest committed state.
    pub fn params(&self) -> Result<palisade_runtime::ChainParams, AppError> {
        let raw = palisade_runtime::StateStore::get(
            self.ledger.as_ref(),
            palisade_runtime::state::keys::PARAMS,
        )?
        .ok_or_else(|| AppError::Missing("chain parameters".into()))?;
        borsh::from_slice::<palisade_runtime::ChainParams>(&raw)
            .map_err(|e| AppError::CorruptParams(e.to_string()))
    }

    /// Transactions whose signatures this node verified while validating
    /// blocks (see [`RecentlyVerified`]).
    pub fn recently_verified(&self) -> &RecentlyVerified {
        &self.verified
    }

    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    fn next_height(&self) -> Result<Height, AppError> {
        Ok(self.ledger.latest_height()?.next()?)
    }

    /// The validator set that decides `h`.
    pub fn validators(&self, h: Height) -> Result<ValidatorSet, AppError> {
        self.ledger
            .validators(h)?
            .ok_or_else(|| AppError::Missing(format!("validator set for height {h}")))
    }

    /// (hash, time, commit) of the block before `h`; genesis for h = 1.
    /// The previous block's hash and time, and the certificate to carry as
    /// `last_commit`: `fuller` when it certifies that block (it may hold
    /// precommits that came after we decided), else the stored one.
    fn previous(
        &self,
        h: Height,
        fuller: Option<CommitCertificate>,
    ) -> Result<(Hash, u64, Option<CommitCertificate>), AppError> {
        match h.prev() {
            Some(Height::GENESIS) | None => Ok((self.genesis_hash, 0, None)),
            Some(p) => {
                let header = self
                    .ledger
                    .block_header(p)?
                    .ok_or_else(|| AppError::Missing(format!("block {p}")))?;
                let hash = header.hash();
                let commit = match fuller.filter(|c| c.height == p && c.block_hash == hash) {
                    Some(c) => c,
                    None => self
                        .ledger
                        .commit(p)?
                        .ok_or_else(|| AppError::Missing(format!("commit {p}")))?,
                };
                Ok((hash, header.time.as_millis(), Some(commit)))
            }
        }
    }

    /// A proposal for the next height from the mempool's transactions.
    /// Signatures were verified at mempool admission and are not checked
    /// again.
    pub fn propose(
        &self,
        mempool: &Mempool,
        proposer: PublicKey,
        now_ms: u64,
    ) -> Result<Validated, AppError> {
        self.propose_with(mempool, proposer, now_ms, None)
    }

    /// [`App::propose`], carrying `last_commit` as the previous block's
    /// certificate when it is one (see [`crate::late_precommits`]). The
    /// block is not executed: its header names the results of the block
    /// before it (docs/spec.md, "Deferred execution"), and a transaction
    /// an earlier one of the block makes inadmissible is refused when the
    /// block runs (no effect, not committed).
    pub fn propose_with(
        &self,
        mempool: &Mempool,
        proposer: PublicKey,
        now_ms: u64,
        last_commit: Option<CommitCertificate>,
    ) -> Result<Validated, AppError> {
        let h = self.next_height()?;
        let params = self.params()?;
        let (mut header, last_commit) = self.header_for(h, proposer, now_ms, last_commit)?;
        let c = Candidate::reap(
            mempool,
            self.ledger.as_ref(),
            &params,
            &header,
            last_commit.as_ref(),
        )?;
        let parent = self.parent_results(h)?;
        header.tx_root = c.tx_root();
        header.state_root = parent.state_root;
        header.receipts_root = parent.receipts_root;
        header.validators_hash = self.validators(h)?.hash();
        header.next_validators_hash = parent.next_validators_hash;
        let mut tx_hashes = c.hashes;
        tx_hashes.extend(c.eth_inputs.iter().map(|t| t.hash));
        let block = Block {
            eth_txs: BoundedVec::new(c.eth).map_err(|count| AppError::TooManyTxs {
                kind: "Ethereum transactions",
                count,
            })?,
            header,
            txs: BoundedVec::new(c.txs).map_err(|count| AppError::TooManyTxs {
                kind: "native transactions",
                count,
            })?,
            last_commit,
        };
        Ok(Validated {
            block: Arc::new(block),
            tx_hashes,
            eth_inputs: c.eth_inputs,
        })
    }

    /// What the header of block `h` must name: the results of executing
    /// block `h - 1` (the genesis state for `h` = 1), and the validator set
    /// of `h + 1`, which that state fixes.
    fn parent_results(&self, h: Height) -> Result<ParentResults, AppError> {
        let parent = h.prev().unwrap_or(Height::GENESIS);
        let (state_root, receipts_root) = self
            .ledger
            .results(parent)?
            .ok_or_else(|| AppError::Missing(format!("results of height {parent}")))?;
        let next_validators_hash = self
            .rt
            .validators_due(self.ledger.as_ref(), h.next()?)?
            .hash();
        Ok(ParentResults {
            state_root,
            receipts_root,
            next_validators_hash,
        })
    }

    /// The header of a block this node proposes at `h`, its hashes still
    /// zero (they do not change its length), with the certificate it
    /// carries as `last_commit`.
    fn header_for(
        &self,
        h: Height,
        proposer: PublicKey,
        now_ms: u64,
        last_commit: Option<CommitCertificate>,
    ) -> Result<(BlockHeader, Option<CommitCertificate>), AppError> {
        let (prev_hash, prev_time, last_commit) = self.previous(h, last_commit)?;
        let header = BlockHeader {
            chain_id: self.rt.chain_id().clone(),
            height: h,
            time: Timestamp(now_ms.max(prev_time.saturating_add(1))),
            last_block_hash: prev_hash,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            receipts_root: Hash::ZERO,
            validators_hash: Hash::ZERO,
            next_validators_hash: Hash::ZERO,
            proposer,
            last_commit_hash: last_commit
                .as_ref()
                .map_or(Hash::ZERO, CommitCertificate::hash),
        };
        Ok((header, last_commit))
    }

    /// Checks a proposed block for the next height: its shape, its link
    /// to the previous block and that block's commit, its time (against
    /// `now_ms`, this node's clock; `None` for a block already committed by
    /// a quorum, which is executed whatever our clock says), that its
    /// header names the results of the previous block as this node got
    /// them, and its transactions' signatures. It is not executed: that
    /// happens once it is decided ([`App::execute`]).
    pub fn validate(&self, block: Arc<Block>, now_ms: Option<u64>) -> Result<Validated, AppError> {
        self.validate_cached(block, now_ms, &[], &[])
    }

    /// Checks a block that consensus decided on a commit certificate
    /// carrying more than two thirds of the voting power (block sync, or a
    /// commit seen before this node validated the proposal), ready to
    /// execute. Everything is checked as in [`App::validate`] except the
    /// transactions' signatures and the clock: a quorum validated them
    /// before signing the certificate, and under the protocol's assumption
    /// (less than a third Byzantine) no committed block holds a bad
    /// signature; the header must still name the results this node got
    /// for the block before. Skipping the check is what lets a node replay
    /// the chain faster than it was made.
    pub fn check_decided(&self, block: Arc<Block>) -> Result<Validated, AppError> {
        let all = vec![true; block.txs.len()];
        self.validate_cached(block, None, &[], &all)
    }

    /// [`App::validate`], not re-checking the signature of transaction `i`
    /// when `verified[i]` holds (this node verified those exact bytes at
    /// mempool admission; the hash covers the signature). The rest are
    /// verified in one batch. `tx_hashes` is [`Block::tx_hashes`] if the
    /// caller has it, or empty.
    pub fn validate_cached(
        &self,
        block: Arc<Block>,
        now_ms: Option<u64>,
        tx_hashes: &[Hash],
        verified: &[bool],
    ) -> Result<Validated, AppError> {
        let tx_hashes = if tx_hashes.len() == block.tx_count() {
            tx_hashes.to_vec()
        } else {
            block.tx_hashes()
        };
        let h = self.next_height()?;
        self.check_header(&block, h, now_ms, &tx_hashes)?;
        let parent = self.parent_results(h)?;
        let hd = &block.header;
        eq("state_root", parent.state_root, hd.state_root)?;
        eq("receipts_root", parent.receipts_root, hd.receipts_root)?;
        eq(
            "next_validators_hash",
            parent.next_validators_hash,
            hd.next_validators_hash,
        )?;
        // Counted exactly as execution counts them (an Ethereum
        // transaction by its raw bytes), before any signature or sender is
        // checked: a block past its bounds costs no more than this.
        let params = self.params()?;
        let lens = block
            .txs
            .iter()
            .map(SignedTransaction::encoded_len)
            .chain(block.eth_txs.iter().map(|t| t.bytes().len()));
        palisade_runtime::check_block_bounds(
            &params,
            block.tx_count(),
            tx_hashes.iter().copied().zip(lens),
        )?;
        self.verify_unverified(&block, &tx_hashes, verified)?;
        let eth_inputs = self.eth_inputs(&block, &tx_hashes, params.evm_chain_id)?;
        Ok(Validated {
            block,
            tx_hashes,
            eth_inputs,
        })
    }

    /// Executes a decided block on the state after the block before it.
    /// Every transaction gets a receipt: one the state does not admit is
    /// refused without effect (its receipt says why).
    pub fn execute(&self, v: &Validated) -> Result<Executed, AppError> {
        let block = &v.block;
        let h = block.height();
        let parent = h.prev().unwrap_or(Height::GENESIS);
        let root = self
            .ledger
            .state_root(parent)?
            .ok_or_else(|| AppError::Missing(format!("state root of height {parent}")))?;
        let hd = &block.header;
        let outcome = self.rt.execute_block_full(
            self.ledger.as_ref(),
            root,
            BlockContext {
                height: h,
                time_ms: hd.time.as_millis(),
                parent_hash: hd.last_block_hash,
            },
            &block.txs,
            v.tx_hashes.get(..block.txs.len()).unwrap_or_default(),
            Signatures::Verified,
            &v.eth_inputs,
        )?;
        // The header named this set before the block ran; with changes
        // waiting at least two heights nothing in the block can move it.
        // If it ever did, the certified header and the ledger would
        // disagree on who decides the next height: stop instead.
        eq(
            "next_validators_hash",
            outcome.next_validator_set.hash(),
            hd.next_validators_hash,
        )?;
        let parties = self.parties(block, &v.eth_inputs, &outcome.receipts);
        Ok(Executed {
            block: block.clone(),
            outcome,
            parties,
        })
    }

    /// What a block for height `h` must be before it is executed: of this
    /// chain and height, well formed, after its parent in hash and time,
    /// not from the future (when `now_ms` is given), with a valid last
    /// commit, decided by this height's validators.
    fn check_header(
        &self,
        block: &Block,
        h: Height,
        now_ms: Option<u64>,
        tx_hashes: &[Hash],
    ) -> Result<(), AppError> {
        let hd = &block.header;
        if hd.height != h {
            return Err(AppError::WrongHeight {
                expected: h,
                got: hd.height,
            });
        }
        if hd.chain_id != *self.rt.chain_id() {
            return Err(AppError::WrongChain(hd.chain_id.to_string()));
        }
        block.validate_basic_hashed(tx_hashes)?;
        let (prev_hash, prev_time, _) = self.previous(h, None)?;
        eq("last_block_hash", prev_hash, hd.last_block_hash)?;
        if hd.time.as_millis() <= prev_time && h > Height(1) {
            return Err(AppError::TimeNotMonotonic {
                prev: prev_time,
                got: hd.time.as_millis(),
            });
        }
        if let Some(now) = now_ms {
            if hd.time.as_millis() > now.saturating_add(MAX_CLOCK_DRIFT_MS) {
                return Err(AppError::TimeInFuture {
                    now,
                    got: hd.time.as_millis(),
                });
            }
        }
        if let (Some(c), Some(p)) = (&block.last_commit, h.prev()) {
            let set = self.validators(p)?;
            c.verify(self.rt.chain_id(), &set)
                .map_err(|e| AppError::BadLastCommit(e.to_string()))?;
        }
        let validators = self.validators(h)?;
        eq("validators_hash", validators.hash(), hd.validators_hash)
    }

    /// Verifies, as one batch, the signatures of the native transactions
    /// not marked in `verified`, and remembers them as verified.
    fn verify_unverified(
        &self,
        block: &Block,
        tx_hashes: &[Hash],
        verified: &[bool],
    ) -> Result<(), AppError> {
        let unverified: Vec<(usize, &SignedTransaction)> = block
            .txs
            .iter()
            .enumerate()
            .filter(|(i, _)| !verified.get(*i).copied().unwrap_or(false))
            .collect();
        let batch: Vec<&SignedTransaction> = unverified.iter().map(|(_, t)| *t).collect();
        if let Err(k) = palisade_types::batch::verify_transaction_refs(&batch) {
            let (index, tx) = &unverified[k];
            return Err(AppError::Execution(RuntimeBlockError::InadmissibleTx {
                index: *index,
                hash: tx_hashes.get(*index).copied().unwrap_or_else(|| tx.hash()),
                error: palisade_runtime::TxError::BadSignature,
            }));
        }
        self.verified
            .extend(unverified.iter().filter_map(|(i, _)| tx_hashes.get(*i)));
        Ok(())
    }

    /// The block's Ethereum transactions with their senders recovered (from
    /// the cache where this node recovered them before).
    fn eth_inputs(
        &self,
        block: &Block,
        tx_hashes: &[Hash],
        chain_id: u64,
    ) -> Result<Vec<EthTxInput>, AppError> {
        if block.eth_txs.is_empty() {
            return Ok(Vec::new());
        }
        self.eth_senders
            .prepare(&block.eth_txs, chain_id)
            .map_err(|(k, error)| {
                let index = block.txs.len() + k;
                AppError::Execution(RuntimeBlockError::InadmissibleTx {
                    index,
                    hash: tx_hashes.get(index).copied().unwrap_or_default(),
                    error,
                })
            })
    }

    /// Writes a decided block with its certificate and execution result,
    /// synced to disk or not ([`Durability`]).
    pub fn commit(
        &self,
        executed: &Executed,
        commit: &CommitCertificate,
        durability: Durability,
    ) -> Result<(), AppError> {
        self.ledger.commit_block(
            BlockWrite {
                block: &executed.block,
                commit,
                receipts: &executed.outcome.receipts,
                receipts_root: executed.outcome.receipts_root,
                refused: &executed.outcome.refused,
                state: &executed.outcome.changes,
                next_validators: &executed.outcome.next_validator_set,
                accounts: &executed.parties,
            },
            durability,
        )?;
        // Every committed transaction is well signed (its block had +2/3
        // behind it): a late gossip copy of one needs no signature check,
        // whether this node had it pooled or not.
        self.verified
            .extend(executed.outcome.receipts.iter().map(|r| &r.tx_hash));
        Ok(())
    }
}

fn eq(field: &'static str, expected: Hash, got: Hash) -> Result<(), AppError> {
    if expected != got {
        return Err(AppError::Mismatch {
            field,
            expected,
            got,
        });
    }
    Ok(())
}
