//! Admission of transactions gossiped by peers, and the verdict on each
//! gossip batch that decides whether it is forwarded and whether its
//! sender is penalized.

use std::sync::Mutex;

use palisade_runtime::Signatures;
use palisade_types::{Hash, Height, SignedTransaction};

use crate::app::App;
use crate::mempool::Mempool;
use crate::metrics::{gauge_value, Metrics};
use palisade_network::Verdict;

/// A gossiped transaction on its way into the pool.
struct Incoming {
    tx: SignedTransaction,
    hash: Hash,
    /// Known to be well signed already: pooled, or verified here recently
    /// (see [`crate::app::App::recently_verified`]).
    known: bool,
}

/// The transactions of `batch` whose signatures are still to be checked.
fn unverified(batch: &[Incoming]) -> Vec<&SignedTransaction> {
    batch.iter().filter(|t| !t.known).map(|t| &t.tx).collect()
}

/// Adds gossip batches of transactions to the mempool and returns each
/// batch's [`Verdict`].
///
/// The verdict decides whether the batch is forwarded and whether its
/// sender is penalized, so it rests only on what every honest node agrees
/// on: each transaction is for this chain and correctly signed. Nothing
/// local counts (nonces used, the pool's contents, a full pool): an honest
/// node that forwarded a batch must never be penalized by a peer that is
/// a block ahead or behind it. A transaction known by its hash (which
/// covers the signature) to be well signed is not checked again.
pub fn admit_gossiped(
    app: &App,
    mempool: &Mutex<Mempool>,
    metrics: &Metrics,
    batches: Vec<Vec<SignedTransaction>>,
) -> Vec<Verdict> {
    let ledger = app.ledger();
    let n = batches.len();
    let Ok(next) = ledger
        .latest_height()
        .map(|h| Height(h.get().saturating_add(1)))
    else {
        return vec![Verdict::Unchecked; n];
    };
    let received: usize = batches.iter().map(Vec::len).sum();
    let mut batches = incoming(batches);
    // Pooled ones are done with (a normal race); recently verified ones
    // (a proposal often carries a client's transactions to the other
    // validators before the gossip does) skip the signature check.
    if !drop_pooled(mempool, &mut batches) {
        return vec![Verdict::Unchecked; n];
    }
    mark_known(app, &mut batches);
    count_known(metrics, received, &batches);
    let verdicts = verdicts_of(app, &batches);
    if admit_valid(app, mempool, batches, &verdicts, next) {
        if let Ok(pool) = mempool.lock() {
            metrics.mempool_txs.set(gauge_value(pool.len() as u64));
            metrics.mempool_bytes.set(gauge_value(pool.bytes() as u64));
        }
    }
    verdicts
}

/// Gossip batches with each transaction's hash, none known yet.
fn incoming(batches: Vec<Vec<SignedTransaction>>) -> Vec<Vec<Incoming>> {
    batches
        .into_iter()
        .map(|b| {
            b.into_iter()
                .map(|tx| Incoming {
                    hash: tx.hash(),
                    tx,
                    known: false,
                })
                .collect()
        })
        .collect()
}

/// Drops the transactions already pooled; false when the pool's lock is
/// poisoned.
fn drop_pooled(mempool: &Mutex<Mempool>, batches: &mut [Vec<Incoming>]) -> bool {
    let Ok(pool) = mempool.lock() else {
        return false;
    };
    for b in batches {
        b.retain(|t| !pool.contains(&t.hash));
    }
    true
}

/// Marks the transactions verified here recently as known.
fn mark_known(app: &App, batches: &mut [Vec<Incoming>]) {
    let seen = app
        .recently_verified()
        .contains_each(batches.iter().flatten().map(|t| t.hash));
    for (t, seen) in batches.iter_mut().flatten().zip(seen) {
        t.known = seen;
    }
}

/// Counts, of `received` transactions, those already pooled and those
/// whose signature check is skipped.
fn count_known(metrics: &Metrics, received: usize, batches: &[Vec<Incoming>]) {
    let pooled = received.saturating_sub(batches.iter().map(Vec::len).sum::<usize>());
    metrics
        .gossip_txs_known
        .inc_by(u64::try_from(pooled).unwrap_or(0));
    let skipped = batches.iter().flatten().filter(|t| t.known).count();
    metrics
        .gossip_sigs_skipped
        .inc_by(u64::try_from(skipped).unwrap_or(0));
}

/// Each gossip batch's verdict.
fn verdicts_of(app: &App, batches: &[Vec<Incoming>]) -> Vec<Verdict> {
    // The verdict: chain id, then one batch signature check for all that
    // are left (a batch of hundreds costs about a third of checking one by
    // one), before the pool is locked so the consensus driver never waits
    // behind it; if that fails, each gossip batch is checked on its own.
    let chain_id = app.runtime().chain_id();
    let all: Vec<&SignedTransaction> = batches.iter().flat_map(|b| unverified(b)).collect();
    let all_ok = palisade_types::batch::verify_transaction_refs(&all).is_ok();
    drop(all);
    batches
        .iter()
        .map(|b| {
            let foreign = b.iter().any(|t| !t.known && t.tx.tx.chain_id != *chain_id);
            let signed =
                all_ok || palisade_types::batch::verify_transaction_refs(&unverified(b)).is_ok();
            if signed && !foreign {
                Verdict::Valid
            } else {
                Verdict::Invalid
            }
        })
        .collect()
}

/// Pools what it can of the valid batches' transactions, for block
/// `next`; false when the pool's lock is poisoned.
fn admit_valid(
    app: &App,
    mempool: &Mutex<Mempool>,
    batches: Vec<Vec<Incoming>>,
    verdicts: &[Verdict],
    next: Height,
) -> bool {
    let ledger = app.ledger();
    // Admission: only a valid batch's transactions (an invalid one's
    // sender is penalized and the batch dropped whole).
    for (txs, verdict) in batches.into_iter().zip(verdicts) {
        if *verdict != Verdict::Valid {
            continue;
        }
        for Incoming { tx, hash, .. } in txs {
            // Checked before the pool is locked, and locked per
            // transaction: this thread runs at a lower priority, and the
            // driver (proposals, post-block updates) must not wait behind
            // it while it is preempted holding the lock. Refusals here
            // (unknown signer, a nonce already used, funds, a full pool)
            // are local state, not the sender's fault.
            let checked = Mempool::check_hashed(
                tx,
                hash,
                app.runtime(),
                ledger.as_ref(),
                next,
                Signatures::Verified,
            );
            if let Ok(c) = checked {
                let Ok(mut pool) = mempool.lock() else {
                    return false;
                };
                let _ = pool.insert_checked(c, ledger.as_ref());
            }
        }
    }
    true
}
