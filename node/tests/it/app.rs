//! Two nodes' applications: one proposes from its mempool, the other
//! validates by re-executing; both commit and stay identical. Tampered
//! blocks are refused with the reason.

use std::sync::Arc;

use palisade_ledger::{Durability, Ledger};
use palisade_node::app::{App, AppError, Executed, Validated};
use palisade_node::mempool::{Mempool, MempoolConfig};
use palisade_runtime::{initial_state, ChainParams, InitialState, Runtime, ValidatorInfo};
use palisade_types::{
    Action, Block, ChainId, CommitCertificate, Hash, Height, Keypair, Role, Transaction,
};

const NOW: u64 = 1_700_000_000_000;

struct Node {
    app: App,
    pool: Mempool,
    _dir: tempfile::TempDir,
}

fn k(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn chain() -> ChainId {
    ChainId::new("app-test").unwrap()
}

fn validators() -> Vec<Keypair> {
    (100..104).map(k).collect()
}

fn node() -> Node {
    node_with_evm(Vec::new())
}

/// A node whose genesis also funds Ethereum accounts.
fn node_with_evm(evm_accounts: Vec<(palisade_types::EvmAddress, u128, Vec<Role>)>) -> Node {
    let init = InitialState {
        evm_accounts,
        params: ChainParams::default(),
        accounts: vec![
            (k(1).address(), 1_000_000, vec![Role::Admin, Role::Member]),
            (k(2).address(), 1_000, vec![Role::Member]),
            (k(3).address(), 1_000, vec![]),
        ],
        validators: validators()
            .iter()
            .enumerate()
            .map(|(i, v)| ValidatorInfo {
                consensus_key: v.public_key(),
                node_key: k(110 + i as u8).public_key(),
                power: 1,
            })
            .collect(),
    };
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let genesis = initial_state(&init).unwrap();
    let set = palisade_runtime::to_set(&init.validators).unwrap();
    ledger
        .init_genesis(&chain(), Hash([9; 32]), &genesis, &set)
        .unwrap();
    Node {
        app: App::new(Runtime::new(chain()), Arc::new(ledger), Hash([9; 32])),
        pool: Mempool::new(MempoolConfig::default()),
        _dir: dir,
    }
}

fn commit_for(block: &Block) -> CommitCertificate {
    crate::precommitted(&chain(), &validators()[..3], block)
}

fn transfer(from: u8, nonce: u64, amount: u128) -> palisade_types::SignedTransaction {
    Transaction {
        chain_id: chain(),
        nonce,
        signer: k(from).address(),
        action: Action::Transfer {
            to: k(7).address(),
            amount,
        },
    }
    .sign(&k(from))
}

fn add(n: &mut Node, tx: palisade_types::SignedTransaction) {
    let next = n.app.ledger().latest_height().unwrap().next().unwrap();
    n.pool
        .add(tx, n.app.runtime(), n.app.ledger().as_ref(), next)
        .unwrap();
}

/// Executes a decided block and writes it.
fn decide(app: &App, v: &Validated, commit: &CommitCertificate) -> Executed {
    let e = app.execute(v).unwrap();
    app.commit(&e, commit, Durability::Synced).unwrap();
    e
}

#[test]
fn proposer_and_validator_agree_over_several_heights() {
    let mut a = node();
    let b = node();
    for h in 1..=4u64 {
        add(&mut a, transfer(1, h - 1, 10));
        add(&mut a, transfer(2, h - 1, 1));
        let proposed = a
            .app
            .propose(&a.pool, validators()[0].public_key(), NOW + h)
            .unwrap();
        assert_eq!(proposed.block.txs.len(), 2);
        // The header names the results of the block before.
        let (root, receipts) = a.app.ledger().results(Height(h - 1)).unwrap().unwrap();
        assert_eq!(proposed.block.header.state_root, root);
        assert_eq!(proposed.block.header.receipts_root, receipts);
        let checked = b
            .app
            .validate(proposed.block.clone(), Some(NOW + h))
            .unwrap();
        let commit = commit_for(&proposed.block);
        let ea = decide(&a.app, &proposed, &commit);
        let eb = decide(&b.app, &checked, &commit);
        assert_eq!(ea.outcome.changes.root, eb.outcome.changes.root);
        assert_eq!(ea.outcome.receipts_root, eb.outcome.receipts_root);
        assert!(ea.outcome.receipts.iter().all(|r| r.code == 0));
        let included: Vec<_> = proposed.block.txs.to_vec();
        let next = Height(h + 1);
        a.pool
            .update(
                &included,
                ea.outcome.changes.values.keys().map(Vec::as_slice),
                a.app.runtime(),
                a.app.ledger().as_ref(),
                next,
            )
            .unwrap();
        assert!(a.pool.is_empty());
    }
    for h in 1..=4u64 {
        assert_eq!(
            a.app.ledger().block(Height(h)).unwrap().unwrap().hash(),
            b.app.ledger().block(Height(h)).unwrap().unwrap().hash()
        );
    }
    // Block 2 onward carries the previous commit, verified by the validator.
    assert!(b
        .app
        .ledger()
        .block(Height(3))
        .unwrap()
        .unwrap()
        .last_commit
        .is_some());
}

fn proposal(n: &mut Node) -> Validated {
    add(n, transfer(1, 0, 10));
    n.app
        .propose(&n.pool, validators()[0].public_key(), NOW)
        .unwrap()
}

fn tampered(e: &Validated, f: impl FnOnce(&mut Block)) -> Arc<Block> {
    let mut b = (*e.block).clone();
    f(&mut b);
    Arc::new(b)
}

#[test]
fn tampered_blocks_are_refused() {
    let mut a = node();
    let b = node();
    let p = proposal(&mut a);
    assert!(b.app.validate(p.block.clone(), Some(NOW)).is_ok());

    let bad = tampered(&p, |b| b.header.state_root = Hash([1; 32]));
    assert!(matches!(
        b.app.validate(bad, Some(NOW)),
        Err(AppError::Mismatch {
            field: "state_root",
            ..
        })
    ));

    let bad = tampered(&p, |b| b.header.receipts_root = Hash([1; 32]));
    assert!(matches!(
        b.app.validate(bad, Some(NOW)),
        Err(AppError::Mismatch {
            field: "receipts_root",
            ..
        })
    ));

    let bad = tampered(&p, |b| b.header.next_validators_hash = Hash([1; 32]));
    assert!(matches!(
        b.app.validate(bad, Some(NOW)),
        Err(AppError::Mismatch {
            field: "next_validators_hash",
            ..
        })
    ));

    let bad = tampered(&p, |b| b.header.last_block_hash = Hash([1; 32]));
    assert!(matches!(
        b.app.validate(bad, Some(NOW)),
        Err(AppError::Mismatch {
            field: "last_block_hash",
            ..
        })
    ));

    let bad = tampered(&p, |b| b.header.validators_hash = Hash([1; 32]));
    assert!(matches!(
        b.app.validate(bad, Some(NOW)),
        Err(AppError::Mismatch {
            field: "validators_hash",
            ..
        })
    ));

    let bad = tampered(&p, |b| {
        b.header.time = palisade_types::Timestamp(NOW + 60_000)
    });
    assert!(matches!(
        b.app.validate(bad, Some(NOW)),
        Err(AppError::TimeInFuture { .. })
    ));

    let bad = tampered(&p, |b| b.header.height = Height(2));
    assert!(matches!(
        b.app.validate(bad, Some(NOW)),
        Err(AppError::WrongHeight { .. })
    ));

    // A transaction from an account with no role, smuggled in with a
    // correct tx root: validators vote before executing, so the block is
    // valid; execution refuses the transaction, which changes nothing.
    let sneaky = transfer(3, 0, 1);
    let bad = tampered(&p, |b| {
        let mut txs = b.txs.to_vec();
        txs.push(sneaky.clone());
        b.header.tx_root = Block::compute_tx_root(&txs, &[]);
        b.txs = palisade_types::BoundedVec::new(txs).unwrap();
    });
    let v = b.app.validate(bad.clone(), Some(NOW)).unwrap();
    let honest = b
        .app
        .execute(&b.app.validate(p.block.clone(), Some(NOW)).unwrap())
        .unwrap();
    let e = b.app.execute(&v).unwrap();
    let r = e.outcome.receipts.last().unwrap();
    assert_eq!(r.tx_hash, sneaky.hash());
    assert_eq!(r.code, palisade_runtime::TxError::UnknownSigner.code());
    assert!(r.error.contains("no account or no role"), "{}", r.error);
    assert_eq!(e.outcome.changes.root, honest.outcome.changes.root);

    // A block carrying the same transaction twice is refused before any vote.
    let bad = tampered(&p, |b| {
        let mut txs = b.txs.to_vec();
        txs.push(txs[0].clone());
        b.header.tx_root = Block::compute_tx_root(&txs, &[]);
        b.txs = palisade_types::BoundedVec::new(txs).unwrap();
    });
    let e = b.app.validate(bad, Some(NOW)).unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");

    // A tx root that does not match the transactions.
    let bad = tampered(&p, |b| b.header.tx_root = Hash([2; 32]));
    assert!(matches!(
        b.app.validate(bad, Some(NOW)),
        Err(AppError::Malformed(_))
    ));
}

#[test]
fn a_forged_last_commit_is_refused() {
    let mut a = node();
    let b = node();
    let p1 = proposal(&mut a);
    let c1 = commit_for(&p1.block);
    let e1 = decide(&a.app, &p1, &c1);
    decide(
        &b.app,
        &b.app.validate(p1.block.clone(), Some(NOW)).unwrap(),
        &c1,
    );
    a.pool
        .update(
            &p1.block.txs,
            e1.outcome.changes.values.keys().map(Vec::as_slice),
            a.app.runtime(),
            a.app.ledger().as_ref(),
            Height(2),
        )
        .unwrap();
    let p2 = a
        .app
        .propose(&a.pool, validators()[1].public_key(), NOW + 10)
        .unwrap();
    assert!(b.app.validate(p2.block.clone(), Some(NOW + 10)).is_ok());
    // Replace the last commit with one signed by only two validators.
    let weak = {
        let sigs = c1.signatures()[..2].to_vec();
        CommitCertificate::new(c1.height, c1.round, c1.block_hash, sigs).unwrap()
    };
    let bad = tampered(&p2, |b| {
        b.header.last_commit_hash = weak.hash();
        b.last_commit = Some(weak);
    });
    assert!(matches!(
        b.app.validate(bad, Some(NOW + 10)),
        Err(AppError::BadLastCommit(_))
    ));
}

#[test]
fn only_signatures_this_node_verified_are_skipped() {
    let mut a = node();
    let b = node();
    let p = proposal(&mut a);
    let good = p.block.txs[0].hash();
    // A forged signature with a correct tx root: refused whether or not
    // the node's cache knows other transactions of the block.
    let mut forged = p.block.txs[0].clone();
    forged.signature = palisade_types::Signature([9; 64]);
    let bad = tampered(&p, |b| {
        let txs = vec![forged.clone()];
        b.header.tx_root = Block::compute_tx_root(&txs, &[]);
        b.txs = palisade_types::BoundedVec::new(txs).unwrap();
    });
    // What the driver passes: which of the block's transactions this node's
    // mempool holds (here: the genuine transaction, if `cache`).
    let known = |b: &Block, cache: bool| -> Vec<bool> {
        b.txs.iter().map(|t| cache && t.hash() == good).collect()
    };
    for cache in [false, true] {
        let e = b
            .app
            .validate_cached(bad.clone(), Some(NOW), &[], &known(&bad, cache))
            .unwrap_err();
        assert!(e.to_string().contains("signature"), "{e}");
    }
    // The genuine block passes with its signature taken from the cache.
    assert!(b
        .app
        .validate_cached(p.block.clone(), Some(NOW), &[], &known(&p.block, true))
        .is_ok());
}

#[test]
fn validation_remembers_the_signatures_it_verified() {
    let mut a = node();
    let b = node();
    let p = proposal(&mut a);
    let hashes: Vec<Hash> = p.block.txs.iter().map(|t| t.hash()).collect();
    let seen = |n: &Node| {
        n.app
            .recently_verified()
            .contains_each(hashes.iter().copied())
    };
    assert_eq!(seen(&b), vec![false; hashes.len()]);
    // A block whose signature fails teaches nothing.
    let mut forged = p.block.txs[0].clone();
    forged.signature = palisade_types::Signature([9; 64]);
    let bad = tampered(&p, |blk| {
        let txs = vec![forged.clone()];
        blk.header.tx_root = Block::compute_tx_root(&txs, &[]);
        blk.txs = palisade_types::BoundedVec::new(txs).unwrap();
    });
    assert!(b.app.validate(bad, Some(NOW)).is_err());
    assert!(!b
        .app
        .recently_verified()
        .contains_each([forged.hash()])
        .contains(&true));
    // Transactions the mempool vouched for are not verified, so not
    // recorded; the rest are, once their batch verified.
    let pooled = vec![true; hashes.len()];
    b.app
        .validate_cached(p.block.clone(), Some(NOW), &[], &pooled)
        .unwrap();
    assert_eq!(seen(&b), vec![false; hashes.len()]);
    b.app.validate(p.block.clone(), Some(NOW)).unwrap();
    assert_eq!(seen(&b), vec![true; hashes.len()]);
}

#[test]
fn a_role_revoked_in_the_same_block_does_not_break_the_proposal() {
    let mut a = node();
    // The admin revokes account 2's member role; account 2 has a transfer
    // pending. Both are admissible alone; in one block the transfer no
    // longer is: the block is still valid, and execution refuses the
    // transfer without effect (not even its nonce).
    let revoke = Transaction {
        chain_id: chain(),
        nonce: 0,
        signer: k(1).address(),
        action: Action::RevokeRole {
            account: k(2).address(),
            role: Role::Member,
        },
    }
    .sign(&k(1));
    add(&mut a, revoke.clone());
    let victim = transfer(2, 0, 5);
    add(&mut a, victim.clone());
    let p = a
        .app
        .propose(&a.pool, validators()[0].public_key(), NOW)
        .expect("proposal despite the inadmissible transaction");
    let hashes: Vec<_> = p.block.txs.iter().map(|t| t.hash()).collect();
    assert_eq!(hashes, vec![revoke.hash(), victim.hash()]);
    // The block it built is valid for everyone else, and executes alike.
    let b = node();
    let v = b.app.validate(p.block.clone(), Some(NOW)).unwrap();
    let commit = commit_for(&p.block);
    let ea = decide(&a.app, &p, &commit);
    let eb = decide(&b.app, &v, &commit);
    assert_eq!(ea.outcome.changes.root, eb.outcome.changes.root);
    let codes: Vec<u16> = ea.outcome.receipts.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        vec![0, palisade_runtime::TxError::UnknownSigner.code()],
        "{:?}",
        ea.outcome.receipts
    );
    let raw = palisade_runtime::StateStore::get(
        a.app.ledger().as_ref(),
        &palisade_runtime::state::keys::account(&k(2).address()),
    )
    .unwrap()
    .unwrap();
    let acct: palisade_runtime::Account = borsh::from_slice(&raw).unwrap();
    assert_eq!(acct.nonce, 0, "a refused transaction uses no nonce");
    // The block holds it, but it is not committed: no index names it.
    for node in [&a, &b] {
        let ledger = node.app.ledger();
        assert!(ledger.tx_location(&revoke.hash()).unwrap().is_some());
        assert_eq!(ledger.tx_location(&victim.hash()).unwrap(), None);
    }
    assert_eq!(ea.outcome.refused, vec![1]);
    for node in [&a, &b] {
        assert_eq!(node.app.ledger().refused(Height(1)).unwrap(), vec![1]);
    }
}

#[test]
fn a_decided_block_is_checked_without_its_signatures_but_must_name_the_parent_results() {
    let mut a = node();
    let b = node();
    let p = proposal(&mut a);
    // A forged signature is not looked at in a block a quorum decided.
    let unsigned = tampered(&p, |b| {
        let mut txs = b.txs.to_vec();
        txs[0].signature = palisade_types::Signature([9; 64]);
        b.header.tx_root = Block::compute_tx_root(&txs, &[]);
        b.txs = palisade_types::BoundedVec::new(txs).unwrap();
    });
    assert!(b.app.validate(unsigned.clone(), Some(NOW)).is_err());
    assert!(b.app.check_decided(unsigned).is_ok());
    let v = b.app.check_decided(p.block.clone()).unwrap();
    let e = b.app.execute(&v).unwrap();
    assert_eq!(e.outcome.receipts.len(), 1);
    for (field, bad) in [
        (
            "state_root",
            tampered(&p, |b| b.header.state_root = Hash([1; 32])),
        ),
        (
            "receipts_root",
            tampered(&p, |b| b.header.receipts_root = Hash([2; 32])),
        ),
    ] {
        match b.app.check_decided(bad) {
            Err(AppError::Mismatch { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

/// The verdict on a gossiped batch (forward it, or penalize its sender)
/// rests only on what every honest node agrees on: each transaction is for
/// this chain and correctly signed. A node that has committed a nonce and
/// one that has not must give the same verdict, or the one ahead forwards
/// what the one behind punishes it for. Before, a badly signed transaction
/// whose nonce was already used here was dropped unchecked and its batch
/// forwarded as valid.
#[test]
fn a_gossip_verdict_does_not_depend_on_local_state() {
    use std::sync::Mutex;

    use palisade_network::Verdict;
    use palisade_node::admission::admit_gossiped;
    use palisade_node::metrics::Metrics;

    let mut ahead = node();
    let proposed = proposal(&mut ahead);
    decide(&ahead.app, &proposed, &commit_for(&proposed.block));
    let behind = node();

    let mut forged = transfer(1, 0, 99);
    forged.signature.0[5] ^= 1;
    let foreign = Transaction {
        chain_id: ChainId::new("another-chain").unwrap(),
        nonce: 0,
        signer: k(2).address(),
        action: Action::Transfer {
            to: k(7).address(),
            amount: 1,
        },
    }
    .sign(&k(2));
    // Well signed, but not admissible everywhere: nonce used (ahead), a
    // signer without a role, more than the balance.
    let used = transfer(1, 0, 55);
    let roleless = transfer(3, 0, 1);
    let too_much = transfer(2, 0, 1_000_000);
    let table: Vec<(Vec<palisade_types::SignedTransaction>, Verdict)> = vec![
        (vec![forged.clone()], Verdict::Invalid),
        (vec![used.clone(), forged], Verdict::Invalid),
        (vec![foreign], Verdict::Invalid),
        (vec![used, roleless, too_much], Verdict::Valid),
    ];
    for n in [&ahead, &behind] {
        for (i, (batch, want)) in table.iter().enumerate() {
            let pool = Mutex::new(Mempool::new(MempoolConfig::default()));
            let got = admit_gossiped(&n.app, &pool, &Metrics::new(), vec![batch.clone()]);
            assert_eq!(got, vec![*want], "row {i}");
        }
    }
}

/// Issue 26: with every parameter at the lowest value `SetParam` allows,
/// the proposer still includes an admin's transaction, so each can be
/// raised again; every block executes on another node. (The proposer used
/// to keep a fixed 128 KiB of `max_block_bytes` for the header and last
/// commit, so at 1 KiB every block was empty for good.)
#[test]
fn every_parameter_lowered_to_its_minimum_can_be_raised_again() {
    use palisade_types::Param;
    let d = ChainParams::default();
    let lowest = [
        Param::MaxTxBytes(256),
        Param::MaxBlockBytes(1024),
        Param::MaxValueBytes(0),
        Param::ValidatorUpdateDelay(2),
        Param::MaxBlockTxs(1),
        Param::MaxBlockGas(palisade_runtime::MIN_MAX_BLOCK_GAS),
    ];
    let back = [
        Param::MaxBlockTxs(d.max_block_txs),
        Param::MaxBlockBytes(d.max_block_bytes),
        Param::MaxTxBytes(d.max_tx_bytes),
        Param::MaxValueBytes(d.max_value_bytes),
        Param::ValidatorUpdateDelay(d.validator_update_delay),
        Param::MaxBlockGas(d.max_block_gas),
    ];
    let mut a = node();
    let b = node();
    let mut now = d;
    for (i, param) in lowest.into_iter().chain(back).enumerate() {
        let h = i as u64 + 1;
        now = now.with(param).unwrap();
        if h <= 6 {
            // These are the minimums: one less is refused.
            let below = match param {
                Param::MaxTxBytes(v) => Some(Param::MaxTxBytes(v - 1)),
                Param::MaxBlockBytes(v) => Some(Param::MaxBlockBytes(v - 1)),
                Param::ValidatorUpdateDelay(v) => Some(Param::ValidatorUpdateDelay(v - 1)),
                Param::MaxBlockTxs(v) => Some(Param::MaxBlockTxs(v - 1)),
                Param::MaxBlockGas(v) => Some(Param::MaxBlockGas(v - 1)),
                Param::MaxValueBytes(_) | Param::MinGasPrice(_) | Param::FileQuotaBytes(_) => None,
            };
            if let Some(below) = below {
                assert!(now.with(below).is_err(), "{below:?} allowed");
            }
        }
        let set = Transaction {
            chain_id: chain(),
            nonce: h - 1,
            signer: k(1).address(),
            action: Action::SetParam { param },
        }
        .sign(&k(1));
        let proposed = run_block(&mut a, &b, vec![set]);
        assert_eq!(
            proposed.block.txs.len(),
            1,
            "block {h} leaves out SetParam {param:?}"
        );
        assert_eq!(proposed.outcome.receipts[0].code, 0, "{param:?}");
    }
    assert_eq!(now, d);
    let raw = palisade_runtime::StateStore::get(
        a.app.ledger().as_ref(),
        palisade_runtime::state::keys::PARAMS,
    )
    .unwrap()
    .unwrap();
    assert_eq!(borsh::from_slice::<ChainParams>(&raw).unwrap(), d);
}

/// Builds, validates on `b`, and commits on both a block of `txs`;
/// returns the proposal.
fn run_block(a: &mut Node, b: &Node, txs: Vec<palisade_types::SignedTransaction>) -> Executed {
    let h = a.app.ledger().latest_height().unwrap().get() + 1;
    for tx in txs {
        add(a, tx);
    }
    let proposed = a
        .app
        .propose(&a.pool, validators()[0].public_key(), NOW + h)
        .unwrap();
    let checked = b
        .app
        .validate(proposed.block.clone(), Some(NOW + h))
        .unwrap();
    let commit = commit_for(&proposed.block);
    let ea = decide(&a.app, &proposed, &commit);
    let eb = decide(&b.app, &checked, &commit);
    assert!(ea.outcome.receipts.iter().all(|r| r.code == 0));
    assert_eq!(ea.outcome.changes.root, eb.outcome.changes.root);
    a.pool
        .update(
            &proposed.block.txs,
            ea.outcome.changes.values.keys().map(Vec::as_slice),
            a.app.runtime(),
            a.app.ledger().as_ref(),
            Height(h + 1),
        )
        .unwrap();
    ea
}

/// A validator queued to join while the delay was long stays on the
/// allowlist after the delay is shortened (the allowlist used to look only
/// `validator_update_delay` heights ahead).
#[test]
fn a_validator_queued_under_a_longer_delay_is_allowed_to_connect() {
    use palisade_types::Param;
    let admin = |nonce: u64, action: Action| {
        Transaction {
            chain_id: chain(),
            nonce,
            signer: k(1).address(),
            action,
        }
        .sign(&k(1))
    };
    let set_delay = |d| Action::SetParam {
        param: Param::ValidatorUpdateDelay(d),
    };
    let mut a = node();
    let b = node();
    run_block(&mut a, &b, vec![admin(0, set_delay(10))]);
    let newcomer = k(120).public_key();
    run_block(
        &mut a,
        &b,
        vec![admin(
            1,
            Action::AddValidator {
                consensus_key: k(119).public_key(),
                node_key: newcomer,
                power: 1,
            },
        )],
    ); // takes effect at 12
    run_block(&mut a, &b, vec![admin(2, set_delay(2))]);
    let allowed = palisade_node::node::allowed_peers(a.app.ledger(), &[]).unwrap();
    assert!(allowed.contains(&palisade_network::peer_id_of(&newcomer).unwrap()));
    assert_eq!(allowed.len(), 5);
}

/// A chain whose state already holds a validator node key that is not a
/// valid ed25519 key (recorded before the runtime refused such keys) still
/// computes its allowlist, so its nodes can start; that validator alone
/// cannot connect. Before, one such key made every node fail to start.
#[test]
fn an_undecodable_node_key_in_state_does_not_stop_the_allowlist() {
    let bad = palisade_types::PublicKey([0x02; 32]);
    assert!(palisade_network::peer_id_of(&bad).is_err());
    let mut validators: Vec<ValidatorInfo> = validators()
        .iter()
        .enumerate()
        .map(|(i, v)| ValidatorInfo {
            consensus_key: v.public_key(),
            node_key: k(110 + i as u8).public_key(),
            power: 1,
        })
        .collect();
    validators[3].node_key = bad;
    let init = InitialState {
        evm_accounts: Vec::new(),
        params: ChainParams::default(),
        accounts: vec![(k(1).address(), 1, vec![Role::Admin])],
        validators,
    };
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let set = palisade_runtime::to_set(&init.validators).unwrap();
    ledger
        .init_genesis(
            &chain(),
            Hash([9; 32]),
            &initial_state(&init).unwrap(),
            &set,
        )
        .unwrap();
    let allowed = palisade_node::node::allowed_peers(&ledger, &[]).unwrap();
    assert_eq!(allowed.len(), 3);
}

/// Contracts see the block's header time (TIMESTAMP, in seconds), on the
/// proposer and on the validator that re-executes the block alike.
#[test]
fn evm_transactions_see_the_header_time() {
    use palisade_types::BoundedBytes;
    let mut a = node();
    let b = node();
    let sign = |nonce, action| {
        Transaction {
            chain_id: chain(),
            nonce,
            signer: k(1).address(),
            action,
        }
        .sign(&k(1))
    };
    run_block(
        &mut a,
        &b,
        vec![sign(
            0,
            Action::GrantRole {
                account: k(1).address(),
                role: Role::Deployer,
            },
        )],
    );
    // Runtime code TIMESTAMP, MSTORE(0), RETURN(0, 32), behind init code
    // that copies it out.
    let runtime = [0x42, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3];
    let mut init = vec![0x60, 9, 0x80, 0x60, 11, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3];
    init.extend_from_slice(&runtime);
    let created = run_block(
        &mut a,
        &b,
        vec![sign(
            1,
            Action::EvmCreate {
                value: 0,
                code: BoundedBytes::new(init).unwrap(),
                gas_limit: 200_000,
            },
        )],
    );
    let contract = created.outcome.receipts[0]
        .evm
        .as_ref()
        .unwrap()
        .contract_address
        .unwrap();
    let called = run_block(
        &mut a,
        &b,
        vec![sign(
            2,
            Action::EvmCall {
                to: contract,
                value: 0,
                data: BoundedBytes::new(vec![]).unwrap(),
                gas_limit: 100_000,
            },
        )],
    );
    let out = &called.outcome.receipts[0].evm.as_ref().unwrap().output;
    let secs = called.block.header.time.as_millis() / 1000;
    assert_eq!(out[24..], secs.to_be_bytes());
    assert!(out[..24].iter().all(|b| *b == 0));
}

/// Signed by ethers with key 0x11..11 (address 0x19e7..ff2a) for chain
/// 1337, nonce 0, EIP-1559 at zero fees: a contract creation, and a
/// payment of 5 wei to 0xf39f..2266.
const ETH_CREATE: &str = "0x02f851820539808080830186a0808000c001a063922ba5a5f333f9f9ad17e2a3ca3fb7288a5260f579e0cbd7f2159d7e4a34f9a0196de908892b60bcc0d923ee470f80dacd7c2256c3eaa3c6cace39c351ba61d2";
const ETH_PAY: &str = "0x02f86482053980808082520894f39fd6e51aad88f6f4ce6ab8827279cfffb922660580c001a04845b972c1c96ef7b3051e18c28166a1fc054e895e1098d54d1761d59033c87aa04927361906fdea3b4c8f5a72d8969ec4ff7413deee4380ecf9a942eb1d88fbb0";

fn eth(raw: &str) -> palisade_types::EthTransaction {
    palisade_types::EthTransaction(
        palisade_types::BoundedBytes::new(palisade_types::parse_hex(raw).unwrap()).unwrap(),
    )
}

/// An Ethereum transaction goes from the proposer's pool into its block
/// and the validator, which never saw it, decodes it, recovers its sender
/// and reaches the same roots; a creation by a sender without `deployer`
/// smuggled into a block (what a Byzantine proposer would do) is refused
/// when the block executes, on every node alike, and changes nothing.
#[test]
fn ethereum_transactions_in_proposals_and_a_forbidden_creation_refused() {
    let sender: palisade_types::EvmAddress = "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a"
        .parse()
        .unwrap();
    let genesis = || node_with_evm(vec![(sender, 1_000, vec![Role::Member])]);
    let mut a = genesis();
    let b = genesis();

    let pay = eth(ETH_PAY);
    let next = Height(1);
    let input = a
        .app
        .eth_senders()
        .prepare(
            std::slice::from_ref(&pay),
            palisade_runtime::DEFAULT_EVM_CHAIN_ID,
        )
        .unwrap()
        .remove(0);
    assert_eq!(input.sender, sender);
    a.pool
        .eth
        .add(
            pay.clone(),
            input,
            a.app.runtime(),
            a.app.ledger().as_ref(),
            next,
        )
        .unwrap();
    let proposed = a
        .app
        .propose(&a.pool, validators()[0].public_key(), NOW + 1)
        .unwrap();
    assert_eq!(proposed.block.eth_txs.len(), 1);
    let checked = b
        .app
        .validate(proposed.block.clone(), Some(NOW + 1))
        .unwrap();
    let mine = a.app.execute(&proposed).unwrap();
    let theirs = b.app.execute(&checked).unwrap();
    assert_eq!(mine.outcome.receipts[0].tx_hash, pay.hash());
    assert_eq!(mine.outcome.receipts[0].code, 0);
    assert_eq!(theirs.outcome.changes.root, mine.outcome.changes.root);

    // The same proposal with the forbidden creation added.
    let create = eth(ETH_CREATE);
    let bad = tampered(&proposed, |blk| {
        let mut txs = blk.eth_txs.to_vec();
        txs.push(create.clone());
        blk.header.tx_root = Block::compute_tx_root(&blk.txs, &txs);
        blk.eth_txs = palisade_types::BoundedVec::new(txs).unwrap();
    });
    // Valid to vote on; execution refuses the creation (status 0, no gas,
    // no contract) and the state is as if it were not there.
    let v = b.app.validate(bad, Some(NOW + 1)).unwrap();
    let e = b.app.execute(&v).unwrap();
    let r = &e.outcome.receipts[1];
    assert_eq!(
        r.code,
        palisade_runtime::TxError::Unauthorized("deployer").code()
    );
    let evm = r.evm.as_ref().unwrap();
    assert_eq!((evm.gas_used, evm.contract_address), (0, None));
    assert_eq!(e.outcome.changes.root, mine.outcome.changes.root);
    // And bytes that are no transaction at all.
    let junk = tampered(&proposed, |blk| {
        let txs = vec![eth("0x02c0")];
        blk.header.tx_root = Block::compute_tx_root(&blk.txs, &txs);
        blk.eth_txs = palisade_types::BoundedVec::new(txs).unwrap();
    });
    let e = b.app.validate(junk, Some(NOW + 1)).unwrap_err();
    assert!(
        e.to_string()
            .contains("not an admissible Ethereum transaction"),
        "{e}"
    );
}

/// A transaction waiting behind a nonce gap leaves the Ethereum pool after
/// `gap_ttl_blocks`; one that can run next stays, however old.
#[test]
fn ethereum_transactions_behind_a_gap_expire() {
    let signer = palisade_ethtx::EthSigner::from_secret([0x21; 32]).unwrap();
    let sender = palisade_types::EvmAddress(signer.address().0 .0);
    let mut a = node_with_evm(vec![(sender, 0, vec![Role::Member])]);
    let signed = |nonce: u64| {
        eth(&format!(
            "0x{}",
            hex::encode(signer.sign_eip1559(&palisade_ethtx::Eip1559::transfer(
                palisade_runtime::DEFAULT_EVM_CHAIN_ID,
                nonce,
                palisade_ethtx::Address::repeat_byte(7),
                0,
            )))
        ))
    };
    let added = Height(1);
    for nonce in [0, 3] {
        let raw = signed(nonce);
        let input = a
            .app
            .eth_senders()
            .prepare(
                std::slice::from_ref(&raw),
                palisade_runtime::DEFAULT_EVM_CHAIN_ID,
            )
            .unwrap()
            .remove(0);
        a.pool
            .eth
            .add(raw, input, a.app.runtime(), a.app.ledger().as_ref(), added)
            .unwrap();
    }
    let ttl = MempoolConfig::default().gap_ttl_blocks;
    let update = |a: &mut Node, next: u64| {
        a.pool
            .eth
            .update(
                &[],
                &[],
                false,
                a.app.runtime(),
                a.app.ledger().as_ref(),
                Height(next),
            )
            .unwrap()
    };
    // Within the time-to-live nothing goes.
    assert_eq!(update(&mut a, 1 + ttl), 0);
    assert_eq!(a.pool.eth.len(), 2);
    // Past it, nonce 3 (1 and 2 missing) goes; nonce 0, next to run, stays.
    assert_eq!(update(&mut a, 2 + ttl), 1);
    assert_eq!(a.pool.eth.len(), 1);
    assert!(a.pool.eth.contains(&signed(0).hash()));
}
