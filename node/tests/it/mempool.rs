use palisade_node::mempool::{AddError, Mempool, MempoolConfig};
use palisade_runtime::{
    initial_state, ChainParams, InitialState, MemStore, Runtime, Signatures, TxError, ValidatorInfo,
};
use palisade_types::{Action, ChainId, Height, Keypair, Role, SignedTransaction, Transaction};

struct Env {
    rt: Runtime,
    store: MemStore,
    root: palisade_types::Hash,
    height: Height,
    chain: ChainId,
}

fn k(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn env() -> Env {
    let chain = ChainId::new("mempool-test").unwrap();
    let init = InitialState {
        evm_accounts: Vec::new(),
        params: ChainParams::default(),
        accounts: vec![
            (k(1).address(), 1_000, vec![Role::Admin, Role::Member]),
            (k(2).address(), 1_000, vec![Role::Member]),
            (k(3).address(), 1_000, vec![]),
        ],
        validators: vec![ValidatorInfo {
            consensus_key: k(50).public_key(),
            node_key: k(51).public_key(),
            power: 1,
        }],
    };
    let changes = initial_state(&init).unwrap();
    let mut store = MemStore::default();
    store.apply(&changes);
    Env {
        rt: Runtime::new(chain.clone()),
        store,
        root: changes.root,
        height: Height(0),
        chain,
    }
}

impl Env {
    fn tx(&self, signer: u8, nonce: u64, amount: u128) -> SignedTransaction {
        Transaction {
            chain_id: self.chain.clone(),
            nonce,
            signer: k(signer).address(),
            action: Action::Transfer {
                to: k(9).address(),
                amount,
            },
        }
        .sign(&k(signer))
    }

    fn add(&self, pool: &mut Mempool, tx: SignedTransaction) -> Result<(), AddError> {
        pool.add(tx, &self.rt, &self.store, Height(self.height.get() + 1))
            .map(|_| ())
    }

    fn commit(&mut self, pool: &mut Mempool, txs: &[SignedTransaction]) -> usize {
        let h = Height(self.height.get() + 1);
        let out = self
            .rt
            .execute_block(&self.store, self.root, h, txs, Signatures::Verify)
            .unwrap();
        self.store.apply(&out.changes);
        self.root = out.changes.root;
        self.height = h;
        pool.update(
            txs,
            out.changes.values.keys().map(Vec::as_slice),
            &self.rt,
            &self.store,
            Height(h.get() + 1),
        )
        .unwrap()
    }
}

#[test]
fn admission_rules() {
    let e = env();
    let mut pool = Mempool::new(MempoolConfig::default());
    let t = e.tx(2, 0, 5);
    e.add(&mut pool, t.clone()).unwrap();
    assert!(pool.contains(&t.hash()));
    assert_eq!(e.add(&mut pool, t), Err(AddError::Duplicate));
    assert_eq!(e.add(&mut pool, e.tx(2, 0, 6)), Err(AddError::NonceTaken));
    let mut bad = e.tx(2, 1, 5);
    bad.signature.0[9] ^= 1;
    assert_eq!(
        e.add(&mut pool, bad),
        Err(AddError::Rejected(TxError::BadSignature))
    );
    assert_eq!(
        e.add(&mut pool, e.tx(3, 0, 5)),
        Err(AddError::Rejected(TxError::UnknownSigner))
    );
    assert!(matches!(
        e.add(&mut pool, e.tx(2, 0, 5_000)),
        Err(AddError::NonceTaken)
    ));
    // A tx that would fail (insufficient funds) is refused up front.
    assert!(matches!(
        e.add(&mut pool, e.tx(1, 0, 5_000)),
        Err(AddError::Rejected(TxError::InsufficientFunds { .. }))
    ));
    assert_eq!(pool.len(), 1);
}

#[test]
fn bounded_by_count_bytes_and_sender() {
    let e = env();
    let mut pool = Mempool::new(MempoolConfig {
        max_txs: 3,
        max_bytes: 1 << 20,
        max_per_sender: 2,
        gap_ttl_blocks: 20,
    });
    e.add(&mut pool, e.tx(2, 0, 1)).unwrap();
    e.add(&mut pool, e.tx(2, 1, 1)).unwrap();
    assert!(matches!(
        e.add(&mut pool, e.tx(2, 2, 1)),
        Err(AddError::Full(_))
    ));
    e.add(&mut pool, e.tx(1, 0, 1)).unwrap();
    assert!(matches!(
        e.add(&mut pool, e.tx(1, 1, 1)),
        Err(AddError::Full(_))
    ));

    let one = e.tx(2, 0, 1).encoded_len();
    let mut small = Mempool::new(MempoolConfig {
        max_txs: 100,
        max_bytes: one * 2,
        max_per_sender: 100,
        gap_ttl_blocks: 20,
    });
    e.add(&mut small, e.tx(2, 0, 1)).unwrap();
    e.add(&mut small, e.tx(2, 1, 1)).unwrap();
    assert!(matches!(
        e.add(&mut small, e.tx(2, 2, 1)),
        Err(AddError::Full("byte limit"))
    ));
    assert_eq!(small.bytes(), one * 2);
}

#[test]
fn reap_takes_consecutive_nonces_in_arrival_order() {
    let e = env();
    let mut pool = Mempool::new(MempoolConfig::default());
    let a0 = e.tx(2, 0, 1);
    let b0 = e.tx(1, 0, 1);
    let a1 = e.tx(2, 1, 1);
    let a3 = e.tx(2, 3, 1); // gap at 2
    for t in [a0.clone(), b0.clone(), a3, a1.clone()] {
        e.add(&mut pool, t).unwrap();
    }
    let got: Vec<_> = pool
        .reap(&e.store, 100, usize::MAX)
        .unwrap()
        .iter()
        .map(|t| t.hash())
        .collect();
    assert_eq!(got, vec![a0.hash(), b0.hash(), a1.hash()]);
    let got = pool.reap(&e.store, 2, usize::MAX).unwrap();
    assert_eq!(got.len(), 2);
    let got = pool.reap(&e.store, 100, a0.encoded_len()).unwrap();
    assert_eq!(got.len(), 1);
    // The reaped set executes as a valid block.
    let txs: Vec<SignedTransaction> = pool
        .reap(&e.store, 100, usize::MAX)
        .unwrap()
        .iter()
        .map(|t| (**t).clone())
        .collect();
    assert!(e
        .rt
        .execute_block(&e.store, e.root, Height(1), &txs, Signatures::Verify)
        .is_ok());
}

#[test]
fn update_drops_included_and_invalidated() {
    let mut e = env();
    let mut pool = Mempool::new(MempoolConfig::default());
    let a0 = e.tx(2, 0, 600);
    let a1 = e.tx(2, 1, 600); // will lack funds once a0 is in
    let revoke = Transaction {
        chain_id: e.chain.clone(),
        nonce: 0,
        signer: k(1).address(),
        action: Action::RevokeRole {
            account: k(2).address(),
            role: Role::Member,
        },
    }
    .sign(&k(1));
    e.add(&mut pool, a0.clone()).unwrap();
    e.add(&mut pool, a1.clone()).unwrap();
    // Block 1 includes a0 only: a1 now fails (funds) and is dropped.
    let dropped = e.commit(&mut pool, std::slice::from_ref(&a0));
    assert_eq!(dropped, 1);
    assert!(pool.is_empty());

    let b1 = e.tx(2, 1, 10);
    e.add(&mut pool, b1.clone()).unwrap();
    // Block 2: the admin revokes member from account 2: its pending tx goes.
    let dropped = e.commit(&mut pool, &[revoke]);
    assert_eq!(dropped, 1);
    assert!(!pool.contains(&b1.hash()));
}

#[test]
fn transactions_behind_a_nonce_gap_make_room_and_expire() {
    let mut e = env();
    let mut pool = Mempool::new(MempoolConfig {
        max_txs: 2,
        max_bytes: 1 << 20,
        max_per_sender: 100,
        gap_ttl_blocks: 3,
    });
    // Nonces 1 and 2 of account 2, whose nonce 0 never arrived: they can
    // never be proposed.
    e.add(&mut pool, e.tx(2, 1, 1)).unwrap();
    e.add(&mut pool, e.tx(2, 2, 1)).unwrap();
    // Before a block has looked at them the pool is simply full.
    assert!(matches!(
        e.add(&mut pool, e.tx(1, 0, 1)),
        Err(AddError::Full(_))
    ));
    // After a block they are known to be gapped: an executable transaction
    // takes the place of the newest of them...
    e.commit(&mut pool, &[]);
    let ready = e.tx(1, 0, 1);
    e.add(&mut pool, ready.clone()).unwrap();
    assert!(pool.contains(&ready.hash()));
    assert!(!pool.contains(&e.tx(2, 2, 1).hash()));
    assert_eq!(pool.len(), 2);
    // ...but another gapped one may not.
    assert!(matches!(
        e.add(&mut pool, e.tx(1, 5, 1)),
        Err(AddError::Full(_))
    ));
    // And what stays gapped expires after gap_ttl_blocks blocks.
    for _ in 0..4 {
        e.commit(&mut pool, &[]);
    }
    assert!(!pool.contains(&e.tx(2, 1, 1).hash()));
    assert!(pool.contains(&ready.hash()));
}

#[test]
fn update_rechecks_only_what_the_block_touched_and_keeps_gaps_right() {
    let mut e = env();
    let mut pool = Mempool::new(MempoolConfig::default());
    // Account 2 has a run 0, 1 and a gapped 3; account 1 has 0.
    let a0 = e.tx(2, 0, 10);
    let a1 = e.tx(2, 1, 10);
    let a3 = e.tx(2, 3, 10);
    let b0 = e.tx(1, 0, 10);
    for t in [&a0, &a1, &a3, &b0] {
        e.add(&mut pool, t.clone()).unwrap();
    }
    // A block with b0 only: account 2 is untouched and keeps everything.
    assert_eq!(e.commit(&mut pool, std::slice::from_ref(&b0)), 0);
    assert_eq!(pool.len(), 3);
    // The proposal still takes 2's run and leaves the gapped one.
    let reaped = pool.reap(&e.store, 100, 1 << 20).unwrap();
    let hashes: Vec<_> = reaped.iter().map(|t| t.hash()).collect();
    assert_eq!(hashes, vec![a0.hash(), a1.hash()]);
    // Filling the gap: 2 is touched by the admission, so after the next
    // block the whole run 0..=3 is proposable.
    let a2 = e.tx(2, 2, 10);
    e.add(&mut pool, a2.clone()).unwrap();
    assert_eq!(e.commit(&mut pool, &[]), 0);
    let reaped = pool.reap(&e.store, 100, 1 << 20).unwrap();
    assert_eq!(reaped.len(), 4);
    // A block in which the admin revokes account 2's role touches 2's
    // account: every pending transaction of 2 goes, although 2 signed
    // nothing in that block.
    let revoke = Transaction {
        chain_id: e.chain.clone(),
        nonce: 1,
        signer: k(1).address(),
        action: Action::RevokeRole {
            account: k(2).address(),
            role: Role::Member,
        },
    }
    .sign(&k(1));
    assert_eq!(e.commit(&mut pool, &[revoke]), 4);
    assert!(pool.is_empty());
}

/// A store as seen by a reader while a commit runs: the state before it,
/// with the version saying a write is under way (odd) or not (even).
struct Stale<'a> {
    state: &'a MemStore,
    version: u64,
}

impl palisade_runtime::StateStore for Stale<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, palisade_runtime::StoreError> {
        self.state.get(key)
    }
    fn page(
        &self,
        hash: &palisade_types::Hash,
    ) -> Result<Option<std::sync::Arc<palisade_runtime::page::Page>>, palisade_runtime::StoreError>
    {
        self.state.page(hash)
    }
    fn value_by_hash(
        &self,
        hash: &palisade_types::Hash,
    ) -> Result<Option<Vec<u8>>, palisade_runtime::StoreError> {
        self.state.value_by_hash(hash)
    }
    fn version(&self) -> u64 {
        self.version
    }
}

#[test]
fn admission_that_overlapped_a_commit_is_checked_again() {
    use palisade_runtime::StateStore;
    // Each pool sees block 1 (account 2 spends nonce 0) committed and
    // updated before a transaction of 2 with nonce 0, checked against the
    // state before block 1, is admitted: the race of an admission with a
    // commit. The next block touches nothing of 2's.
    let run = |version: u64| {
        let mut e = env();
        let mut pool = Mempool::new(MempoolConfig::default());
        let before = e.store.clone();
        assert_eq!(e.commit(&mut pool, &[e.tx(2, 0, 10)]), 0);
        let late = e.tx(2, 0, 20);
        let stale = Stale {
            state: &before,
            version,
        };
        assert_eq!(stale.version(), version);
        pool.add(late.clone(), &e.rt, &stale, Height(2)).unwrap();
        let dropped = e.commit(&mut pool, &[]);
        (dropped, pool.contains(&late.hash()))
    };
    // A commit was being written while it was checked: checked again, and
    // its nonce is used by now.
    assert_eq!(run(7), (1, false));
    // Control: a store claiming it stood still is taken at its word, and
    // the transaction stays (so the test above depends on the version).
    assert_eq!(run(8), (0, true));
}

#[test]
fn a_commit_between_check_and_insert_means_checking_again() {
    // The node checks a transaction before it locks the pool and inserts
    // it after: block 1 (account 2 spends nonce 0) can commit in between.
    // The check read one steady state (version 8); what the insert sees
    // decides whether the pool may trust it.
    let run = |version_at_insert: u64| {
        let mut e = env();
        let mut pool = Mempool::new(MempoolConfig::default());
        let before = e.store.clone();
        let late = e.tx(2, 0, 20);
        let checked = Mempool::check(
            late.clone(),
            &e.rt,
            &Stale {
                state: &before,
                version: 8,
            },
            Height(1),
            Signatures::Verify,
        )
        .unwrap();
        assert_eq!(e.commit(&mut pool, &[e.tx(2, 0, 10)]), 0);
        let now = Stale {
            state: &e.store,
            version: version_at_insert,
        };
        pool.insert_checked(checked, &now).unwrap();
        let dropped = e.commit(&mut pool, &[]);
        (dropped, pool.contains(&late.hash()))
    };
    // The version moved: a commit ran since the check, so the next update
    // checks it again and drops it (nonce 0 is used).
    assert_eq!(run(10), (1, false));
    // Control: the same version means no commit ran, and it is kept.
    assert_eq!(run(8), (0, true));
}

/// A proposal's native EVM actions keep within the block's gas: one that
/// would not fit what is left waits, with its sender's later nonces (the
/// block would refuse them all), while others' that fit still come.
#[test]
fn reap_bounds_the_gas_of_evm_actions() {
    let e = env();
    let mut pool = Mempool::new(MempoolConfig::default());
    let call = |signer: u8, nonce: u64, gas_limit: u64| {
        Transaction {
            chain_id: e.chain.clone(),
            nonce,
            signer: k(signer).address(),
            action: Action::EvmCall {
                to: palisade_types::EvmAddress([7; 20]),
                value: 0,
                data: palisade_types::BoundedBytes::new(Vec::new()).unwrap(),
                gas_limit,
            },
        }
        .sign(&k(signer))
    };
    let a0 = call(1, 0, 600_000);
    let b0 = call(2, 0, 500_000);
    let b1 = call(2, 1, 21_000);
    let a1 = e.tx(1, 1, 1);
    for t in [a0.clone(), b0.clone(), b1.clone(), a1.clone()] {
        e.add(&mut pool, t).unwrap();
    }
    let reaped = |max_gas: u64| -> Vec<palisade_types::Hash> {
        pool.reap_hashed(&e.store, 100, usize::MAX, max_gas)
            .unwrap()
            .into_iter()
            .map(|(h, _)| h)
            .collect()
    };
    assert_eq!(
        reaped(u64::MAX),
        vec![a0.hash(), b0.hash(), b1.hash(), a1.hash()]
    );
    // 1,000,000 gas: a0 fits, b0 does not, so neither does b1; a1 moves
    // no gas and comes.
    assert_eq!(reaped(1_000_000), vec![a0.hash(), a1.hash()]);
    assert_eq!(reaped(0), Vec::<palisade_types::Hash>::new());
}
